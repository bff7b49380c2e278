"""Mention notices reach every page of the people mentioned (room and lobby sockets), on every process, through
the session listener's fan-out; never a page of the room itself, never someone who cannot read the room."""

import json
import re
import time
from contextlib import ExitStack
from uuid import uuid4

import pytest
from channels.db import database_sync_to_async
from websockets.sync.client import connect as ws_connect

from chat import services
from chat.models import Membership, Room
from tests.support.in_process import frames_until, message_frame, open_socket
from tests.support.live import cookie_for, unique

NOTICE = 'hx-swap-oob="afterbegin:#notices"'


def notice_in(frames: list[str]) -> str | None:
    return next((frame for frame in frames if NOTICE in frame), None)


async def test_a_mention_reaches_every_other_page_of_the_person_but_not_the_room_itself(connect, alice, bob):
    await database_sync_to_async(Room.objects.create)(name="design")
    elsewhere = await connect("random", bob)
    same_room = await connect("design", bob)
    lobby = await open_socket("/ws/lobby/", bob)
    bystander = await connect("random", alice)
    author = await connect("design", alice)

    await author.send_to(text_data=message_frame("@bob, a question"))

    assert any("a question" in frame for frame in await frames_until(author, "a question", seconds=2))
    pk = await database_sync_to_async(lambda: Room.objects.get(name="design").messages.get().pk)()
    for page in (elsewhere, lobby):
        notice = notice_in(await frames_until(page, NOTICE, seconds=2))
        assert notice is not None
        assert f'<div id="notice-{pk}" class="notice">' in notice
        assert f'<a href="/chat/design/?around={pk}#message-{pk}">alice mentioned you in #design</a>' in notice
        assert f'hx-post="/mentions/{pk}/seen/"' in notice
    # The room's own page gets the message (with the mention marked), and no notice.
    in_room = await frames_until(same_room, "a question", seconds=2)
    assert any('<a class="mention" href="/dm/bob/">@bob</a>' in frame for frame in in_room)
    assert notice_in(in_room) is None and await same_room.receive_nothing(timeout=0.5)
    assert notice_in(await frames_until(bystander, NOTICE, seconds=0.5)) is None
    await lobby.disconnect()


async def test_a_non_member_mentioned_in_a_private_room_hears_nothing(connect, alice, bob):
    def private() -> None:
        room = Room.objects.create(name="hush", kind=Room.PRIVATE)
        Membership.objects.create(room=room, user=alice, is_owner=True)

    await database_sync_to_async(private)()
    outsider = await open_socket("/ws/lobby/", bob)
    author = await connect("hush", alice)

    await author.send_to(text_data=message_frame("@bob should not know"))

    assert "should not know" in "".join(await frames_until(author, "should not know", seconds=2))
    frames = await frames_until(outsider, NOTICE, seconds=1.5)
    assert notice_in(frames) is None and not any("hush" in frame for frame in frames)
    await outsider.disconnect()


async def test_an_edit_that_adds_a_mention_tells_the_new_person_once(connect, alice, bob):
    room = await database_sync_to_async(Room.objects.create)(name="design")
    message = await database_sync_to_async(services.message_post)(
        room=room, author=alice, data={"message": "hello", "token": str(uuid4())}
    )
    page = await connect("random", bob)

    def edit(text: str) -> None:
        change = services.message_edit(room=room, message_id=message.message.pk, editor=alice, data={"message": text})
        services.changes_broadcast_on_commit(changes=[change])

    await database_sync_to_async(edit)("hello @bob")
    assert notice_in(await frames_until(page, NOTICE, seconds=2)) is not None
    await database_sync_to_async(edit)("hello again @bob")
    assert notice_in(await frames_until(page, NOTICE, seconds=1)) is None


async def test_an_edit_that_takes_the_mention_out_or_a_delete_removes_the_notice_from_open_pages(connect, alice, bob):
    room = await database_sync_to_async(Room.objects.create)(name="design")
    page = await connect("random", bob)
    bystander = await connect("random", alice)

    def post(text: str) -> int:
        posted = services.message_post(room=room, author=alice, data={"message": text, "token": str(uuid4())})
        services.message_broadcast_on_commit(posted=posted)
        return posted.message.pk

    def change(pk: int, text: str | None) -> None:
        if text is None:
            done = services.message_delete(room=room, message_id=pk, actor=alice)
        else:
            done = services.message_edit(room=room, message_id=pk, editor=alice, data={"message": text})
        services.changes_broadcast_on_commit(changes=[done])

    for body, text in [("@bob one", "one"), ("@bob two", None)]:  # an edit that takes it out, then a delete
        pk = await database_sync_to_async(post)(body)
        assert notice_in(await frames_until(page, NOTICE, seconds=2)) is not None
        await database_sync_to_async(change)(pk, text)
        gone = f'<div id="notice-{pk}" hx-swap-oob="delete"></div>'
        assert gone in "".join(await frames_until(page, gone, seconds=2))
    assert not any("notice-" in frame for frame in await frames_until(bystander, "notice-", seconds=0.5))


# Two daphne processes on one database, linked only through a Redis of this module's own.


@pytest.fixture(scope="module")
def two_processes(live_server_factory, module_redis_server):
    first = live_server_factory(REDIS_URL=module_redis_server.url)
    return first, live_server_factory(REDIS_URL=module_redis_server.url, DATABASE_URL=first.env["DATABASE_URL"])


def socket(server, path: str, cookie: str):
    return ws_connect(
        f"ws://127.0.0.1:{server.port}{path}",
        origin=server.url,
        additional_headers={"Cookie": cookie},
        proxy=None,
        open_timeout=10,
    )


def received_within(ws, seconds: float) -> list[str]:
    frames, deadline = [], time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            frames.append(ws.recv(timeout=left))
        except TimeoutError:
            break
    return frames


@pytest.mark.redis
@pytest.mark.slow
def test_a_mention_on_one_process_reaches_the_persons_pages_on_the_other_within_two_seconds(two_processes):
    first, second = two_processes
    author, reader, room = unique("ann"), unique("ben"), unique("design")
    first.create_users(author, reader)
    author_cookie, csrf = cookie_for(first, author)
    reader_cookie, _ = cookie_for(first, reader)

    with ExitStack() as pages:
        lobby = pages.enter_context(socket(second, "/ws/lobby/", reader_cookie))
        elsewhere = pages.enter_context(socket(second, f"/ws/chat/{unique('other')}/", reader_cookie))
        same_room = pages.enter_context(socket(second, f"/ws/chat/{room}/", reader_cookie))
        writer = pages.enter_context(socket(first, f"/ws/chat/{room}/", author_cookie))
        for ws in (elsewhere, same_room, writer):
            assert "connection-status" in ws.recv(timeout=5)
            ws.send(json.dumps({"after": "0"}))
        received_within(lobby, 1.5)  # the lobby's first list; the listener has joined its group by now

        sent = time.monotonic()
        writer.send(json.dumps({"message": f"@{reader} over here", "token": str(uuid4()), "csrfmiddlewaretoken": csrf}))

        for page in (lobby, elsewhere):
            frames = []
            while notice_in(frames) is None and time.monotonic() - sent < 2:
                frames += received_within(page, 0.1)
            notice = notice_in(frames)
            assert notice is not None, f"no notice within 2 s: {frames}"
            assert re.search(
                rf'<a href="/chat/{room}/\?around=(\d+)#message-\1">{author} mentioned you in #{room}</a>', notice
            )
        in_room = received_within(same_room, 1.0)
        assert any("over here" in frame for frame in in_room) and notice_in(in_room) is None
