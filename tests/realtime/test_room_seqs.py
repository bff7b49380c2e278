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


async def test_a_gap_is_caught_up_by_a_read_made_after_the_change_that_revealed_it(connect, alice, room, monkeypatch):
    """A page that sees seq 2 arrive after seq 0 reads what it missed. Another page's catch-up from the same
    cursor may be under way, but if that read began before seq 1 and 2 were saved it holds neither: sharing
    it left the page without both changes (and skipped seq 2 itself) until the room's next change or the
    liveness tick. Found while building the soak (docs/benchmark.md, Reliability)."""
    from channels.db import database_sync_to_async

    from chat import services
    from tests.support.in_process import post_message, receive_all

    page = await connect(room.name, alice)  # synced at 0: an empty room
    assert await page.receive_nothing(timeout=0.2)
    read_early, release = threading.Event(), threading.Event()
    real = catch_up.catch_up

    def another_pages_read(**kwargs):
        found = real(**kwargs)  # read now, before the messages below are saved
        read_early.set()
        release.wait(5)
        return found

    monkeypatch.setattr(catch_up, "catch_up", another_pages_read)
    other = asyncio.ensure_future(
        catch_up.rooms.catch_up(room.name, cursor=0, zone_name="UTC", joined_at=time.monotonic())
    )
    await asyncio.to_thread(read_early.wait, 5)
    monkeypatch.setattr(catch_up, "catch_up", real)
    await database_sync_to_async(post_message)(room, alice, "the first")  # its broadcast is lost
    second = await database_sync_to_async(post_message)(room, alice, "the second")
    await services.change_broadcast(room_name=room.name, event=services.change_event(message=second, kind="post"))
    await asyncio.sleep(0.2)
    release.set()
    await other

    shown = "".join(await receive_all(page, first=1.0))
    assert "the first" in shown and "the second" in shown
    assert shown.index("the first") < shown.index("the second")
