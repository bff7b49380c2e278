"""The process's registry of sockets (chat/realtime/registry.py) and its scheduler (chat/realtime/scheduler.py):
one owner of what a process knows about its sockets, which the concerns follow."""

import asyncio
from types import SimpleNamespace

import pytest
from channels.testing import WebsocketCommunicator

from chat.realtime import catch_up, presence, session_notices
from chat.realtime.registry import Registry, sockets
from chat.realtime.scheduler import Scheduler, scheduler
from tests.support.in_process import open_socket, sync_frame


class Recorder:
    def __init__(self) -> None:
        self.heard: list[tuple[str, str]] = []

    def joined(self, entry) -> None:
        self.heard.append(("joined", entry.channel))

    def left(self, entry) -> None:
        self.heard.append(("left", entry.channel))


class Broken:
    def joined(self, entry) -> None:
        raise RuntimeError("a concern's bug")

    def left(self, entry) -> None:
        raise RuntimeError("a concern's bug")


def socket(channel: str, user=None) -> SimpleNamespace:
    return SimpleNamespace(channel_name=channel, scope={"user": user} if user else {})


def signed_in(pk: int, name: str) -> SimpleNamespace:
    return SimpleNamespace(pk=pk, is_authenticated=True, get_username=lambda: name)


def test_sockets_are_found_by_channel_room_and_user():
    registry = Registry()
    a = registry.add(socket("c1", signed_in(1, "alice")), room="design")
    b = registry.add(socket("c2", signed_in(1, "alice")), room="ops")
    c = registry.add(socket("c3"), room="design")

    assert registry.entry("c2") is b
    assert registry.in_room("design") == [a, c]
    assert registry.of_user(1) == [a, b] == registry.of_user("1")
    assert registry.of_user(None) == [] == registry.of_user(2)
    assert (a.username, a.user_id, c.username, c.user_id) == ("alice", 1, "", None)
    assert a.member == "c1 alice" and c.member == "c3 "
    assert sorted(registry.rooms()) == ["design", "ops"] and len(registry) == 3

    registry.remove(b.socket)
    registry.remove(c.socket)
    assert registry.rooms() == ["design"] and registry.of_user(1) == [a] and registry.room_size("ops") == 0


def test_followers_hear_each_join_and_leave_once_even_beside_a_broken_one():
    registry, recorder = Registry(), Recorder()
    registry.follow(Broken())
    registry.follow(recorder)
    registry.follow(recorder)  # following twice changes nothing
    page = socket("c1")

    registry.add(page, room="design")
    assert registry.remove(page) is not None
    assert registry.remove(page) is None  # a second way out (a crash after a close) releases nothing twice

    assert recorder.heard == [("joined", "c1"), ("left", "c1")]
    assert len(registry) == 0


def test_lobby_sockets_are_kept_apart_from_room_sockets():
    registry, woken = Registry(), []
    registry.on_add(lambda: woken.append(True))
    lobby = socket("l1")
    registry.add_lobby(lobby)
    assert registry.lobby() == [lobby] and len(registry) == 0 and woken == [True]
    registry.remove_lobby(lobby)
    assert registry.lobby() == []


async def test_a_consumer_registers_once_and_every_concern_follows_it(connect, alice, room):
    page = await connect(room.name, alice)
    [entry] = sockets.in_room(room.name)
    assert entry.username == "alice" and sockets.of_user(alice.pk) == [entry]
    assert room.name in presence.tracker.rooms
    assert session_notices.listener().sockets == 1
    catch_up.rooms.advance(room.name, 5)
    assert catch_up.rooms.known(room.name) == 5

    await page.disconnect()

    assert len(sockets) == 0
    assert room.name not in presence.tracker.rooms
    assert session_notices.listener().sockets == 0
    assert catch_up.rooms.known(room.name) is None  # no socket of the room here: its seq is not followed


async def test_a_job_runs_while_it_has_work_and_wakes_up_again():
    work, ticks = [1], []

    async def tick() -> None:
        ticks.append(work.pop() if work else None)

    jobs = Scheduler()
    job = jobs.every(0.01, "test", tick, active=lambda: bool(work))
    jobs.wake()
    await asyncio.sleep(0.1)
    assert ticks == [1] and job.task.done()  # stopped by itself once it had nothing to do

    work.append(2)
    jobs.wake("test")
    await asyncio.sleep(0.1)
    assert ticks == [1, 2]
    jobs.reset()


async def test_a_failing_tick_does_not_end_its_job():
    ticks = []

    async def tick() -> None:
        ticks.append(1)
        raise RuntimeError("a Redis outage")

    jobs = Scheduler()
    jobs.every(0.01, "flaky", tick, active=lambda: True)
    jobs.wake()
    await asyncio.sleep(0.1)
    assert len(ticks) >= 3
    jobs.reset()
    assert jobs.job("flaky").task is None


@pytest.mark.parametrize("name", ["presence", "typing", "read marks", "lobby", "liveness", "layer watch"])
def test_every_periodic_concern_is_one_job_of_the_processs_scheduler(name):
    assert scheduler.job(name).interval > 0


async def open_page(room_name: str, user) -> WebsocketCommunicator:
    """A room socket the test ends itself (the connect fixture would close it again afterwards)."""
    page = await open_socket(f"/ws/chat/{room_name}/", user)
    assert 'id="connection-status"' in await page.receive_from()
    return page


@pytest.fixture
def one_socket_each(settings):
    """A user may hold one socket: a count left behind would refuse their next one (4429)."""
    settings.CHAT_LIMITS = {**settings.CHAT_LIMITS, "sockets_per_user": "1"}


async def assert_released_and_usable_again(connect, alice, room) -> None:
    assert len(sockets) == 0
    assert room.name not in presence.tracker.rooms
    assert session_notices.listener().sockets == 0
    again = await connect(room.name, alice)  # accepted: the user's socket count went back down
    assert sockets.of_user(alice.pk) and await again.receive_nothing(timeout=0.2)


async def test_a_socket_whose_handler_crashes_releases_everything_it_held(
    connect, alice, room, monkeypatch, one_socket_each
):
    from chat.realtime.consumers import ChatConsumer

    page = await open_page(room.name, alice)
    assert len(sockets) == 1

    async def broken_sync(self, *, cursor):
        raise RuntimeError("a bug in a handler")

    monkeypatch.setattr(ChatConsumer, "sync", broken_sync)
    await page.send_to(text_data=sync_frame(0))
    with pytest.raises(RuntimeError):
        await page.receive_output(timeout=2)
    monkeypatch.undo()

    await assert_released_and_usable_again(connect, alice, room)


async def test_a_socket_cancelled_by_the_server_releases_everything_it_held(connect, alice, room, one_socket_each):
    page = await open_page(room.name, alice)
    assert len(sockets) == 1

    page.future.cancel()  # what daphne does to an application that outlives its close
    with pytest.raises(asyncio.CancelledError):
        await page.future
    await asyncio.sleep(0.05)  # the shared part (count, group) runs in a task of its own

    await assert_released_and_usable_again(connect, alice, room)


async def test_a_closed_room_or_lobby_socket_tells_the_layer_to_drop_its_channel(connect, alice, room):
    """The pub/sub layer unsubscribes a channel only inside a receive that ran; a socket whose receive was
    cancelled before it started left its channel subscribed (tests/backends/test_channel_layers.py)."""
    from channels.layers import get_channel_layer

    from tests.support.in_process import open_socket

    forgotten = []
    get_channel_layer().forget = forgotten.append  # the in-memory layer has nothing to drop: a recorder
    page = await connect(room.name, alice)
    lobby = await open_socket("/ws/lobby/", alice)
    await asyncio.sleep(0.05)
    channels = {entry.channel for entry in sockets} | {socket.channel_name for socket in sockets.lobby()}

    await page.disconnect()
    await lobby.disconnect()
    await asyncio.sleep(0.05)

    assert len(channels) == 2 and set(forgotten) == channels
