"""The live lobby: rooms with messages, most recent first, with who is in them and the last message;
unread counts per reader; at most a frame every GAP per lobby socket."""

import asyncio
import re
import time
from uuid import uuid4

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from chat import selectors, services
from chat.models import ReadMark, Room
from chat.realtime import lobby, lobby_notices, presence_store, unread
from tests.support.in_process import message_frame, post_message, session_cookie
from tests.support.lobby_page import LobbyPage


@pytest.fixture
async def lobby_socket(transactional_db):
    from project.asgi import application

    opened = []

    async def _open(user=None) -> WebsocketCommunicator:
        headers = [(b"origin", b"http://localhost"), (b"host", b"localhost")]
        if user is not None:
            headers.append((b"cookie", await database_sync_to_async(session_cookie)(user)))
        communicator = WebsocketCommunicator(application, "/ws/lobby/", headers=headers)
        connected, _ = await communicator.connect()
        assert connected
        opened.append(communicator)
        return communicator

    yield _open
    for communicator in opened:
        await communicator.disconnect()


def rooms_in(items: list[str]) -> list[dict]:
    """Each listed room (the items of a LobbyPage's list): name, unread, here, author, preview."""
    listed = []
    for item in items:
        unread = re.search(r'class="unread">(\d+) new', item)
        here = re.search(r'class="here">(\d+) here', item)
        preview = re.search(r'<p class="preview"><span class="author">(.*?)</span>: (.*?)</p>', item, re.S)
        listed.append(
            {
                "name": re.search(r'<a href="/chat/[^"]+/">(.*?)</a>', item).group(1),
                "unread": int(unread.group(1)) if unread else 0,
                "here": int(here.group(1)) if here else 0,
                "author": preview.group(1),
                "preview": preview.group(2),
            }
        )
    return listed


NEXT = lobby.GAP + 2 * lobby.TICK + 0.5  # s: the longest a change waits for a socket's next frame, and a margin


async def lobby_frames(communicator, seconds: float, until=None) -> list[list[dict]]:
    """The rooms the page lists after each lobby frame that arrives within `seconds` (or up to one after which
    `until` is true), each frame applied to what the page shows as htmx applies it."""
    page = communicator.page = getattr(communicator, "page", None) or LobbyPage()
    lists = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if await communicator.receive_nothing(timeout=min(left, 0.1)):
            continue
        frame = await communicator.receive_from()
        assert page.apply(frame), frame
        lists.append(rooms_in(page.lists["rooms"]))
        if until is not None and until(lists[-1]):
            break
    return lists


async def post(room: Room, author, body: str) -> None:
    """A message posted as both paths post one: saved, then broadcast (which tells the lobbies)."""
    posted = await database_sync_to_async(services.message_post)(
        room=room, author=author, data={"message": body, "token": str(uuid4())}
    )
    await services.message_broadcast(posted=posted)


def test_the_lobby_lists_rooms_with_messages_most_recent_first_with_a_preview(alice, bob):
    quiet, busy = Room.objects.create(name="quiet"), Room.objects.create(name="busy")
    Room.objects.create(name="visited-only")
    post_message(quiet, alice, "first")
    post_message(busy, alice, "hello")
    post_message(busy, bob, "a very long line " * 10)

    rooms = selectors.lobby_rooms()

    assert [room.name for room in rooms] == ["busy", "quiet"]
    assert rooms[0].last_author == "bob"
    assert len(rooms[0].preview) == 80 and rooms[0].preview.endswith("…")


async def test_a_lobby_socket_gets_the_list_then_a_new_room_and_a_post_moving_its_room_up(lobby_socket, alice, bob):
    older = await database_sync_to_async(Room.objects.create)(name="older")
    await post(older, alice, "long ago")
    lobby = await lobby_socket()
    [first] = await lobby_frames(lobby, NEXT, until=lambda rooms: True)
    assert [room["name"] for room in first] == ["older"]

    newer = await database_sync_to_async(Room.objects.create)(name="newer")
    await post(newer, bob, "a new room")
    assert (await lobby_frames(lobby, NEXT, until=lambda rooms: len(rooms) == 2))[-1][0] == {
        "name": "newer",
        "unread": 0,
        "here": 0,
        "author": "bob",
        "preview": "a new room",
    }

    await post(older, alice, "back on top")
    latest = (await lobby_frames(lobby, NEXT, until=lambda rooms: rooms[0]["name"] == "older"))[-1]
    assert [(room["name"], room["preview"]) for room in latest] == [("older", "back on top"), ("newer", "a new room")]


async def test_a_busy_room_costs_a_lobby_socket_at_most_a_frame_every_gap(lobby_socket, alice):
    room = await database_sync_to_async(Room.objects.create)(name="busy")
    await post(room, alice, "start")
    reader = await lobby_socket()
    await lobby_frames(reader, NEXT, until=lambda rooms: True)

    await asyncio.sleep(lobby.GAP)  # a quiet spell: the next change goes at once
    started = time.monotonic()
    await post(room, alice, "after a quiet spell")
    frames = await lobby_frames(reader, NEXT, until=lambda rooms: rooms[0]["preview"] == "after a quiet spell")
    assert time.monotonic() - started < lobby.GAP - 0.5  # within a tick, not a gap
    for n in range(15):
        await post(room, alice, f"post {n}")
        frames += await lobby_frames(reader, 0.2)
    frames += await lobby_frames(reader, NEXT, until=lambda rooms: rooms[0]["preview"] == "post 14")
    elapsed = time.monotonic() - started

    assert frames[-1][0]["preview"] == "post 14"
    assert len(frames) <= elapsed / lobby.GAP + 1
    assert len(frames) >= 2  # a busy room still shows, every GAP


@pytest.mark.presence
async def test_counts_follow_people_coming_and_going(lobby_socket, connect, alice, bob):
    room = await database_sync_to_async(Room.objects.create)(name="general")
    await post(room, alice, "hi")
    lobby = await lobby_socket()
    await lobby_frames(lobby, NEXT, until=lambda rooms: True)

    await connect("general", alice)
    bobs = await connect("general", bob)
    await connect("general")
    assert (await lobby_frames(lobby, NEXT, until=lambda rooms: rooms[0]["here"] == 3))[-1][0]["here"] == 3

    await bobs.disconnect()
    assert (await lobby_frames(lobby, NEXT, until=lambda rooms: rooms[0]["here"] == 2))[-1][0]["here"] == 2


async def test_unread_counts_appear_for_a_reader_and_clear_when_the_room_is_open(
    lobby_socket, connect, alice, bob, client
):
    room = await database_sync_to_async(Room.objects.create)(name="general")
    await post(room, alice, "before alices visit")
    await database_sync_to_async(ReadMark.objects.create)(user=alice, room=room, seq=1)
    alices_lobby = await lobby_socket(alice)
    bobs_lobby = await lobby_socket(bob)
    await lobby_frames(alices_lobby, NEXT, until=lambda rooms: True)

    await post(room, bob, "one")
    await post(room, bob, "two")
    await post(room, alice, "alice's own, from another device")
    latest = (await lobby_frames(alices_lobby, NEXT, until=lambda rooms: rooms[0]["unread"] == 2))[-1]
    assert latest[0]["unread"] == 2
    # Bob never opened the room: no count for him; anonymous readers get none either.
    # Every frame up to the one that shows the last of those posts (nothing changes after it).
    bobs = await lobby_frames(bobs_lobby, NEXT, until=lambda rooms: rooms[0]["preview"].endswith("from another device"))
    assert bobs[-1][0]["preview"].endswith("from another device")
    assert all(room["unread"] == 0 for rooms in bobs for room in rooms)

    # Alice opens the room in a tab: the socket's sync shows her everything, her lobby clears.
    await connect("general", alice, cursor=0)
    assert (await lobby_frames(alices_lobby, NEXT, until=lambda rooms: rooms[0]["unread"] == 0))[-1][0]["unread"] == 0


async def test_messages_arriving_in_an_open_room_never_count_as_new(lobby_socket, connect, alice, bob):
    room = await database_sync_to_async(Room.objects.create)(name="general")
    await post(room, bob, "hi")
    reader = await connect("general", alice)
    alices_lobby = await lobby_socket(alice)
    await lobby_frames(alices_lobby, NEXT, until=lambda rooms: True)

    sender = await connect("general", bob)
    await sender.send_to(text_data=message_frame("while alice has it open"))
    await reader.receive_from(timeout=2)

    assert all(r["unread"] == 0 for rooms in await lobby_frames(alices_lobby, 3) for r in rooms)
    mark = await database_sync_to_async(ReadMark.objects.get)(user=alice, room=room)
    assert mark.seq == 2


async def test_an_idle_lobby_reads_nothing_until_something_changes(lobby_socket, alice, monkeypatch):
    room = await database_sync_to_async(Room.objects.create)(name="general")
    await post(room, alice, "hi")
    reads = []
    real = selectors.lobby_rooms
    monkeypatch.setattr(selectors, "lobby_rooms", lambda **kwargs: reads.append(1) or real(**kwargs))
    lobby_socket_ = await lobby_socket()
    await lobby_frames(lobby_socket_, NEXT, until=lambda rooms: True)
    reads.clear()

    await asyncio.sleep(3 * lobby.TICK)
    assert reads == []  # no timer re-reads an unchanged lobby

    await post(room, alice, "news")
    assert (await lobby_frames(lobby_socket_, NEXT, until=lambda rooms: rooms[0]["preview"] == "news"))[-1]
    assert len(reads) == 1


async def test_a_message_saved_without_its_broadcast_shows_with_the_next_change(lobby_socket, alice):
    room = await database_sync_to_async(Room.objects.create)(name="general")
    await post(room, alice, "hi")
    lobby_socket_ = await lobby_socket()
    await lobby_frames(lobby_socket_, NEXT, until=lambda rooms: True)

    # A write that told nobody (a script, the shell): nothing is re-read on a timer, so nothing shows...
    await database_sync_to_async(post_message)(room, alice, "untold")
    assert await lobby_frames(lobby_socket_, 2 * lobby.TICK) == []
    # ... until the next change anywhere, which reads it too.
    await lobby_notices.send()
    assert (await lobby_frames(lobby_socket_, NEXT, until=lambda rooms: True))[-1][0]["preview"] == "untold"


@pytest.mark.redis
async def test_with_redis_another_processs_change_reaches_this_processs_lobby(redis_layer, lobby_socket, alice):
    from channels.layers import get_channel_layer

    room = await database_sync_to_async(Room.objects.create)(name="general")
    await post(room, alice, "hi")
    lobby_socket_ = await lobby_socket()
    await lobby_frames(lobby_socket_, NEXT, until=lambda rooms: True)

    # What another process does for a post there: save it, then tell the lobby group.
    await database_sync_to_async(post_message)(room, alice, "from the other process")
    event = {"type": "lobby.changed", "origin": "another process"}
    await get_channel_layer().group_send(lobby_notices.LOBBY_GROUP, event)

    latest = await lobby_frames(
        lobby_socket_, NEXT, until=lambda rooms: rooms[0]["preview"] == "from the other process"
    )
    assert latest[-1][0]["preview"] == "from the other process"


@pytest.mark.presence
async def test_the_lobby_reads_presence_only_for_rooms_this_process_does_not_follow(
    lobby_socket, connect, alice, monkeypatch
):
    followed = await database_sync_to_async(Room.objects.create)(name="followed")
    other = await database_sync_to_async(Room.objects.create)(name="other")
    await post(other, alice, "elsewhere")
    await post(followed, alice, "here")
    await connect("followed", alice)
    asked = []
    real = presence_store.views

    async def views(names):
        asked.append(sorted(names))
        return await real(names)

    monkeypatch.setattr(presence_store, "views", views)
    lobby_socket_ = await lobby_socket()
    latest = (await lobby_frames(lobby_socket_, NEXT, until=lambda rooms: rooms[0]["here"] == 1))[-1]

    assert [(room["name"], room["here"]) for room in latest] == [("followed", 1), ("other", 0)]
    assert asked and asked[-1] == ["other"]


@pytest.mark.presence
async def test_a_room_open_in_a_tab_on_another_process_never_shows_as_new_meanwhile(
    lobby_socket, connect, alice, bob, monkeypatch
):
    room = await database_sync_to_async(Room.objects.create)(name="general")
    await post(room, bob, "hi")
    await connect("general", alice, cursor=0)
    alices_lobby = await lobby_socket(alice)
    assert (await lobby_frames(alices_lobby, NEXT, until=lambda rooms: rooms[0]["here"] == 1))[-1][0]["here"] == 1
    # Her tab's process writes her read mark a moment later than this one reads the lobby: here, never.
    monkeypatch.setattr(unread.positions, "advanced", lambda socket: None)

    await post(room, bob, "while alice reads it elsewhere")

    latest = await lobby_frames(alices_lobby, NEXT, until=lambda rooms: "elsewhere" in rooms[0]["preview"])
    assert latest[-1][0]["preview"] == "while alice reads it elsewhere"
    assert all(rooms[0]["unread"] == 0 for rooms in latest)
