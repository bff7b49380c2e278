"""A server process's garbage collector (chat/realtime/collector.py): what start-up loaded is frozen out of its
sight, and the young generation is large."""

import gc

import pytest

from chat.realtime import collector


@pytest.fixture
def restored_collector():
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_install_freezes_what_is_loaded_and_enlarges_the_young_generation(restored_collector):
    gc.unfreeze()
    assert gc.get_freeze_count() == 0

    collector.install()

    assert gc.get_freeze_count() > 10_000  # Django, the project, the test run: never walked again
    assert gc.get_threshold()[:2] == (collector.GEN0, collector.GEN1)
    # Cycles made after start-up are still collected.
    cycle = []
    cycle.append(cycle)
    del cycle
    assert gc.collect() >= 1
