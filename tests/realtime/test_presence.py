"""Who is here: signed-in users once however many tabs, anonymous readers counted, coalesced frames,
and entries of a dead process expiring in Redis."""

import asyncio
import re
import time

import pytest
from asgiref.sync import sync_to_async
from django.test import Client

from chat.realtime import presence, presence_store, process
from chat.realtime.presence_store import View
from chat.realtime.registry import sockets
from tests.support.in_process import post_message

pytestmark = pytest.mark.presence


def names_in(frame: str) -> list[str]:
    section = re.search(r'<section id="presence".*?</section>', frame, re.S).group(0)
    return re.findall(r"<li>([^<]+)</li>", section)


def anonymous_in(frame: str) -> int:
    found = re.search(r'class="anonymous">(\d+) reader', frame)
    return int(found.group(1)) if found else 0


async def presence_frames(communicator, seconds: float) -> list[str]:
    """Every presence frame that arrives within `seconds` (other frames are skipped)."""
    frames = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if await communicator.receive_nothing(timeout=min(left, 0.1)):
            continue
        frame = await communicator.receive_from()
        if 'id="presence"' in frame:
            frames.append(frame)
    return frames


async def latest_presence(communicator, seconds: float = 3.0, names: list[str] | None = None) -> str:
    """The newest presence frame within `seconds`; with `names`, the first that lists exactly them."""
    frames = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if await communicator.receive_nothing(timeout=min(left, 0.1)):
            if frames and names is None:
                return frames[-1]
            continue
        frame = await communicator.receive_from()
        if 'id="presence"' in frame:
            frames.append(frame)
            if names is not None and names_in(frame) == names:
                return frame
    assert frames and names is None, f"no presence frame listing {names} arrived: {[names_in(f) for f in frames]}"
    return frames[-1]


def test_a_user_with_several_tabs_is_listed_once_and_anonymous_readers_are_counted():
    view = View.of(["specific.a!1 bob", "specific.a!2 alice", "specific.b!3 bob", "specific.a!4 ", "specific.a!5 "])
    assert view.names == ("alice", "bob")
    assert view.anonymous == 2
    assert view.count == 4


async def test_in_memory_members_stay_until_they_leave_with_nothing_to_refresh():
    store = presence_store.MemoryPresence()
    await store.add("r", {"c1 alice", "c2 bob"})
    await store.remove("r", "c2 bob")
    assert await store.read(["r", "other"]) == {"r": ["c1 alice"], "other": []}
    await store.remove("r", "c1 alice")
    assert store.rooms == {}


async def test_members_see_each_other_arrive_and_leave(connect, alice, bob):
    ada = await connect("general", alice)
    assert names_in(await latest_presence(ada)) == ["alice"]

    bobs = await connect("general", bob)
    await latest_presence(ada, names=["alice", "bob"])
    await latest_presence(bobs, names=["alice", "bob"])

    await bobs.disconnect()
    # Gone from the list within 2 s of a clean close (with a margin for a busy machine).
    await latest_presence(ada, 3.0, names=["alice"])


async def test_a_lost_connection_that_comes_back_changes_nobodys_list(connect, alice, bob, monkeypatch):
    monkeypatch.setattr(presence, "LOST_GRACE", 2.0)
    ada = await connect("general", alice)
    bobs = await connect("general", bob)
    await latest_presence(ada, names=["alice", "bob"])

    await bobs.disconnect(code=presence.LOST)  # no close frame: a phone changing networks
    await asyncio.sleep(1.0)  # two ticks: without the grace, the leave would be written and read
    await connect("general", bob)  # htmx reconnects

    assert await presence_frames(ada, 3.0) == []


async def test_a_lost_connection_that_does_not_come_back_leaves_after_the_grace(connect, alice, bob, monkeypatch):
    monkeypatch.setattr(presence, "LOST_GRACE", 1.0)
    ada = await connect("general", alice)
    bobs = await connect("general", bob)
    await latest_presence(ada, names=["alice", "bob"])

    started = time.monotonic()
    await bobs.disconnect(code=presence.LOST)

    await latest_presence(ada, 4.0, names=["alice"])
    assert time.monotonic() - started >= 1.0


async def test_a_second_tab_of_the_same_user_changes_nobodys_list(connect, alice, bob):
    bobs = await connect("general", bob)
    await connect("general", alice)
    await latest_presence(bobs, names=["alice", "bob"])

    second = await connect("general", alice)
    await latest_presence(second, names=["alice", "bob"])
    assert await presence_frames(bobs, 1.5) == []

    await second.disconnect()
    assert await presence_frames(bobs, 1.5) == [], "alice still has a tab open"


async def test_anonymous_readers_are_counted_not_named(connect, alice):
    ada = await connect("general", alice)
    await connect("general")
    await connect("general")

    frame = await latest_presence(ada)
    while anonymous_in(frame) < 2:
        frame = await latest_presence(ada)
    assert names_in(frame) == ["alice"]
    assert anonymous_in(frame) == 2


async def test_rooms_do_not_share_lists(connect, alice, bob):
    ada = await connect("general", alice)
    await connect("random", bob)
    assert names_in(await latest_presence(ada)) == ["alice"]


async def test_many_joins_at_once_cost_each_socket_about_one_presence_frame_a_second(connect, alice):
    watcher = await connect("busy", alice)
    await latest_presence(watcher)
    await asyncio.gather(*(connect("busy") for _ in range(40)))

    frames = await presence_frames(watcher, 3.0)

    assert anonymous_in(frames[-1]) == 40
    assert len(frames) <= 4  # 3 s at one frame a second, plus the one in flight


async def test_in_a_big_room_presence_frames_are_spaced_by_the_rooms_size(connect, alice, monkeypatch):
    """A reconnect storm into one room: every join changes the count, but each socket's frames are
    spaced by sockets / ROOM_FRAMES_PER_SECOND (here 41 / 10: about 4 s), and the last one is right."""
    monkeypatch.setattr(presence, "ROOM_FRAMES_PER_SECOND", 10)
    watcher = await connect("crowded", alice)
    await latest_presence(watcher)
    await asyncio.gather(*(connect("crowded") for _ in range(40)))

    early = await presence_frames(watcher, 2.5)
    later = await presence_frames(watcher, 4.0)

    assert early == []
    assert len(later) == 1
    assert anonymous_in(later[0]) == 40


def test_the_presence_frame_gap_grows_only_beyond_the_rooms_frame_budget():
    assert presence.frame_gap(1) == presence.frame_gap(presence.ROOM_FRAMES_PER_SECOND) == presence.MIN_FRAME_GAP
    assert presence.frame_gap(5 * presence.ROOM_FRAMES_PER_SECOND) == 5.0


async def test_the_room_page_shows_who_is_here_as_of_loading(connect, alice, bob, room):
    await connect(room.name, alice)
    await asyncio.sleep(presence.TICK * 2)

    client = Client()
    await sync_to_async(client.force_login)(bob)
    page = (await sync_to_async(client.get)(f"/chat/{room.name}/")).content.decode()

    assert names_in(page) == ["alice", "bob"]  # and bob, who reads it (his socket is not open yet)


def test_the_room_page_counts_its_own_reader_never_nobody(client, room, alice):
    page = client.get(f"/chat/{room.name}/").content.decode()
    assert "Nobody is here right now." not in page
    assert "1 reader not signed in" in page

    client.force_login(alice)
    page = client.get(f"/chat/{room.name}/").content.decode()
    assert names_in(page) == ["alice"]
    assert "Nobody is here right now." not in page


# Redis: presence shared by every process, expiring by itself.


@pytest.fixture
def private_redis(settings, redis_server):
    settings.REDIS_URL = redis_server.url
    process.reset()
    yield redis_server
    process.reset()


@pytest.mark.redis
async def test_with_redis_a_dead_processs_users_expire_from_every_list(private_redis, connect, bob, monkeypatch):
    monkeypatch.setattr(presence, "REFRESH", 0.5)
    # Another process's socket, written as that process would, which then dies: its heartbeat ends.
    await presence.backend().beat(time.time(), ttl=2.0, process="dead")
    await presence.backend().add("general", {"specific.dead!1 carol"}, process="dead")
    bobs = await connect("general", bob)
    await latest_presence(bobs, names=["bob", "carol"])

    await latest_presence(bobs, 5.0, names=["bob"])
    assert await presence.backend().read(["general"]) == {"general": [f"{bobs_channel()} bob"]}
    # The read deleted the dead process's member.
    assert await presence.backend().client().zrange(presence_store.KEY.format("general"), 0, -1) == [
        f"{presence.backend().process} {bobs_channel()} bob".encode()
    ]


@pytest.mark.redis
async def test_with_redis_an_idle_room_costs_only_the_heartbeat(private_redis, connect, bob, monkeypatch):
    monkeypatch.setattr(presence, "REFRESH", 0.5)
    bobs = await connect("general", bob)
    assert names_in(await latest_presence(bobs)) == ["bob"]
    client = presence.backend().client()
    before = {name: stats["calls"] for name, stats in (await client.info("commandstats")).items()}

    await asyncio.sleep(2.0)  # four heartbeats, nothing else changes

    after = {name: stats["calls"] for name, stats in (await client.info("commandstats")).items()}
    used = {name: calls - before.get(name, 0) for name, calls in after.items() if calls != before.get(name, 0)}
    used.pop("cmdstat_info", None)
    assert set(used) <= {"cmdstat_zadd", "cmdstat_zrangebyscore", "cmdstat_zremrangebyscore"}, used
    assert 3 <= used.get("cmdstat_zadd", 0) <= 5


def bobs_channel() -> str:
    [entry] = sockets.entries()
    return entry.channel


@pytest.mark.redis
async def test_with_redis_live_sockets_stay_past_the_heartbeats_ttl(private_redis, connect, bob, monkeypatch):
    monkeypatch.setattr(presence_store, "TTL", 1.5)
    monkeypatch.setattr(presence, "REFRESH", 0.5)
    bobs = await connect("general", bob)
    assert names_in(await latest_presence(bobs)) == ["bob"]

    assert await presence_frames(bobs, 4.0) == []
    assert [m.split(" ")[1] for m in (await presence.backend().read(["general"]))["general"]] == ["bob"]


@pytest.mark.redis
async def test_with_redis_a_lost_store_is_written_again_by_the_next_heartbeat(private_redis, connect, bob, monkeypatch):
    monkeypatch.setattr(presence, "REFRESH", 0.5)
    bobs = await connect("general", bob)
    assert names_in(await latest_presence(bobs)) == ["bob"]

    await presence.backend().client().flushdb()  # a Redis restarted without its data

    await asyncio.sleep(1.5)
    assert [m.split(" ")[1] for m in (await presence.backend().read(["general"]))["general"]] == ["bob"]


@pytest.mark.redis
async def test_with_redis_another_processs_join_shows_without_waiting_for_the_recheck(private_redis, connect, bob):
    from channels.layers import get_channel_layer

    bobs = await connect("general", bob)
    assert names_in(await latest_presence(bobs)) == ["bob"]

    # What another process does on a join: store the member, announce it to the room's processes.
    await presence.backend().beat(time.time(), ttl=30.0, process="other")
    await presence.backend().add("general", {"specific.other!1 dora"}, process="other")
    await get_channel_layer().group_send("chat.general", {"type": "presence.changed", "origin": "other"})

    # Nothing is re-read on a timer: the announcement alone brings it.
    await latest_presence(bobs, 2.5, names=["bob", "dora"])


@pytest.mark.redis
async def test_with_redis_a_clean_close_removes_the_member(private_redis, connect, alice):
    ada = await connect("general", alice)
    await latest_presence(ada)
    await ada.disconnect()
    await asyncio.sleep(presence.TICK * 3)  # written on the next tick
    assert await presence.backend().read(["general"]) == {"general": []}


def test_posting_is_unaffected_by_presence(room, alice):
    assert post_message(room, alice, "still works").seq == 1
