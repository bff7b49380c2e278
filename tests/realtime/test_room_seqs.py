"""What a process knows of its rooms' newest seq (chat/realtime/catch_up.py RoomSeqs): shared reads and their limit."""

import asyncio
import threading
import time
from types import SimpleNamespace

import pytest

from chat import selectors
from chat.realtime import catch_up
from chat.realtime.registry import sockets


def a_socket_in(room: str) -> None:
    """This process has a socket in the room (seqs are kept only for such rooms)."""
    sockets.add(SimpleNamespace(channel_name=f"test.{room}!1", scope={}), room=room)


@pytest.fixture
def slow_reads(monkeypatch):
    """selectors.room_seq answers 7 once `release` is set; `calls` counts the reads."""
    release = threading.Event()
    calls = []

    def room_seq(*, room_name):
        calls.append(room_name)
        release.wait(5)
        return 7

    monkeypatch.setattr(selectors, "room_seq", room_seq)
    return release, calls


async def test_sockets_that_joined_before_a_read_started_share_it(slow_reads):
    release, calls = slow_reads
    seqs = catch_up.RoomSeqs()
    a_socket_in("lobby")
    joined = time.monotonic()
    waiting = [asyncio.ensure_future(seqs.latest("lobby", joined_at=joined)) for _ in range(5)]
    await asyncio.sleep(0.05)
    release.set()

    assert await asyncio.gather(*waiting) == [7] * 5
    assert calls == ["lobby"]
    assert seqs.known("lobby") == 7
    assert await seqs.latest("lobby", joined_at=time.monotonic()) == 7  # known now: no read at all
    assert calls == ["lobby"]


async def test_a_socket_that_joined_after_a_read_started_does_not_trust_it(slow_reads):
    """A message broadcast between that read and the join would be in neither: it reads again."""
    release, calls = slow_reads
    seqs = catch_up.RoomSeqs()
    a_socket_in("lobby")
    early = asyncio.ensure_future(seqs.latest("lobby", joined_at=time.monotonic()))
    await asyncio.sleep(0.05)
    late = asyncio.ensure_future(seqs.latest("lobby", joined_at=time.monotonic()))
    await asyncio.sleep(0.05)
    release.set()

    assert await asyncio.gather(early, late) == [7, 7]
    assert calls == ["lobby", "lobby"]


async def test_a_failed_read_fails_its_waiters_and_the_next_sync_reads_again(monkeypatch):
    answers = iter([RuntimeError("database gone"), 3])

    def room_seq(*, room_name):
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(selectors, "room_seq", room_seq)
    seqs = catch_up.RoomSeqs()
    a_socket_in("lobby")
    with pytest.raises(RuntimeError):
        await seqs.latest("lobby", joined_at=time.monotonic())
    assert seqs.known("lobby") is None
    assert await seqs.latest("lobby", joined_at=time.monotonic()) == 3
