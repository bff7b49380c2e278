"""The room socket: live fan-out of server-rendered fragments, and refusing bad frames."""

import asyncio
import json
import re
from uuid import uuid4
from zoneinfo import ZoneInfo

from channels.db import database_sync_to_async
from django.test import Client

from chat.models import Message
from chat.realtime.registry import sockets
from tests.support.in_process import frames_until, message_frame, post_message, receive_all, sync_frame

count_messages = database_sync_to_async(lambda: Message.objects.count())


async def test_both_members_receive_the_senders_message_as_an_oob_fragment(connect, alice, bob):
    sender = await connect("general", alice)
    reader = await connect("general", bob)

    await sender.send_to(text_data=message_frame("hello, bob"))

    reader_frames = await receive_all(reader)
    sender_frames = await receive_all(sender)
    assert len(reader_frames) == 1
    assert 'hx-swap-oob="beforeend:#messages"' in reader_frames[0]
    assert "hello, bob" in reader_frames[0]
    assert reader_frames[0] in sender_frames
    assert await count_messages() == 1


async def test_the_sender_gets_an_empty_input_and_a_fresh_token(connect, alice):
    sender = await connect("general", alice)
    token = str(uuid4())

    await sender.send_to(text_data=message_frame("clear me", token))

    frames = await receive_all(sender)
    reset = next(frame for frame in frames if 'id="compose-message"' in frame)
    assert 'value=""' in reset
    assert 'hx-swap-oob="true"' in reset
    assert 'id="compose-token"' in reset and token not in reset


async def test_a_member_of_another_room_receives_nothing(connect, alice, bob):
    sender = await connect("general", alice)
    elsewhere = await connect("random", bob)

    await sender.send_to(text_data=message_frame("only for general"))

    assert await elsewhere.receive_nothing(timeout=0.3)


async def test_every_message_moves_the_pages_cursor(connect, alice, bob):
    sender = await connect("general", alice)
    reader = await connect("general", bob)

    await sender.send_to(text_data=message_frame("cursor"))

    [frame] = await receive_all(reader)
    message = await database_sync_to_async(Message.objects.get)()
    assert f'id="sync-after" name="after" value="{message.seq}" hx-swap-oob="true"' in frame


BAD_FRAMES = {
    "empty": message_frame(""),
    "blank": message_frame("    "),
    "oversized": message_frame("x" * 2001),
    "huge frame": message_frame("x" * 100_000),
    "not JSON": "this is not json {",
    "JSON list": "[1, 2, 3]",
    "wrong type": json.dumps({"message": 42, "token": str(uuid4())}),
    "null message": json.dumps({"message": None, "token": str(uuid4())}),
    "no token": json.dumps({"message": "hi"}),
}


async def test_bad_frames_get_an_error_fragment_store_nothing_and_keep_the_socket_usable(
    connect, alice, bob, monkeypatch
):
    monkeypatch.setattr("chat.realtime.consumers.FRAME_BURST", 100)  # this test is not about flooding
    sender = await connect("general", alice)
    reader = await connect("general", bob)

    for name, frame in BAD_FRAMES.items():
        await sender.send_to(text_data=frame)
        reply = await sender.receive_from()
        assert 'id="compose-errors"' in reply, name
        assert 'hx-swap-oob="true"' in reply, name
        assert "<p>" in reply, name
        assert await reader.receive_nothing(timeout=0.05), name
    await sender.send_to(bytes_data=b"\x00\x01")
    assert "Send text frames." in await sender.receive_from()

    assert await count_messages() == 0
    await sender.send_to(text_data=message_frame("still works"))
    assert "still works" in (await receive_all(reader))[0]


async def test_an_anonymous_socket_reads_live_but_cannot_post(connect, alice):
    anonymous = await connect("general")
    member = await connect("general", alice)

    await anonymous.send_to(text_data=message_frame("let me in"))
    reply = await anonymous.receive_from()
    assert "Log in to chat." in reply
    assert await member.receive_nothing(timeout=0.1)
    assert await count_messages() == 0

    await member.send_to(text_data=message_frame("anyone can read this"))
    assert "anyone can read this" in (await receive_all(anonymous))[0]


async def test_html_in_a_message_arrives_escaped(connect, alice, bob):
    sender = await connect("general", alice)
    reader = await connect("general", bob)

    await sender.send_to(text_data=message_frame("<script>alert(1)</script>"))

    [frame] = await receive_all(reader)
    assert "<script>" not in frame
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in frame


async def test_a_resent_message_is_stored_and_shown_once(connect, alice, bob):
    sender = await connect("general", alice)
    reader = await connect("general", bob)
    frame = message_frame("sent twice", str(uuid4()))

    await sender.send_to(text_data=frame)
    await sender.send_to(text_data=frame)

    assert len([f for f in await receive_all(reader) if "sent twice" in f]) == 1
    sender_frames = await receive_all(sender)
    assert len([f for f in sender_frames if 'id="compose-message"' in f]) == 2  # both answered as success
    assert await count_messages() == 1


async def test_a_post_without_javascript_reaches_live_members(connect, alice, bob):
    reader = await connect("general", bob)
    client = Client()
    await database_sync_to_async(client.force_login)(alice)

    response = await database_sync_to_async(client.post)(
        "/chat/general/", {"message": "from a form", "token": str(uuid4())}
    )

    assert response.status_code == 302
    [frame] = await receive_all(reader)
    assert "from a form" in frame


async def test_a_bad_room_name_is_closed_with_a_code_htmx_does_not_retry(connect):
    from channels.testing import WebsocketCommunicator

    from project.asgi import application

    communicator = WebsocketCommunicator(
        application, "/ws/chat/bad%20name/", headers=[(b"origin", b"http://localhost"), (b"host", b"localhost")]
    )
    connected, _ = await communicator.connect()
    assert connected
    closed = await communicator.receive_output()
    assert closed == {"type": "websocket.close", "code": 4404}
    await communicator.wait()


async def test_a_foreign_origin_is_refused(connect):
    from channels.testing import WebsocketCommunicator

    from project.asgi import application

    communicator = WebsocketCommunicator(
        application, "/ws/chat/general/", headers=[(b"origin", b"http://evil.example"), (b"host", b"localhost")]
    )
    connected, _ = await communicator.connect()
    assert not connected


create_messages = database_sync_to_async(
    lambda room, author, n, prefix="missed": [post_message(room, author, f"{prefix} {i}") for i in range(n)]
)


def shown_ids(frames: list[str]) -> list[int]:
    """The message ids appended by these frames, in the order the page shows them."""
    return [int(pk) for frame in frames for pk in re.findall(r'<li id="message-(\d+)"', frame)]


async def test_a_page_that_is_up_to_date_gets_nothing_on_connect(connect, room, alice):
    [last] = await create_messages(room, alice, 1)

    page = await connect(room.name, cursor=last.seq)

    assert await page.receive_nothing(timeout=0.2)


async def test_a_page_that_missed_messages_gets_exactly_those_appended_in_order(connect, room, alice):
    missed = await create_messages(room, alice, 3)

    page = await connect(room.name, cursor=missed[0].seq)

    frames = await receive_all(page)
    assert shown_ids(frames) == [missed[1].pk, missed[2].pk]
    assert all('hx-swap-oob="beforeend:#messages"' in frame for frame in frames)
    assert "innerHTML" not in "".join(frames)  # appended, never a replacement of what the page has
    assert f'value="{missed[2].seq}" hx-swap-oob="true"' in frames[-1]


async def test_a_sync_that_asks_for_nothing_new_costs_no_query(connect, room, alice, bob, monkeypatch):
    from chat import selectors
    from chat.realtime import catch_up

    [last] = await create_messages(room, alice, 1)
    first = await connect(room.name, bob, cursor=0)
    assert len(shown_ids(await receive_all(first))) == 1  # this process now knows the room's newest seq
    queries = []
    for name in ("room_changes_since", "room_seq", "room_latest"):
        real = getattr(selectors, name)
        monkeypatch.setattr(selectors, name, lambda real=real, **kw: queries.append(kw) or real(**kw))

    page = await connect(room.name, cursor=last.seq)
    assert await page.receive_nothing(timeout=0.2)
    assert queries == []
    assert catch_up.rooms.known(room.name) == last.seq

    behind = await connect(room.name, cursor=0)  # a page that is behind does read the database
    assert len(shown_ids(await receive_all(behind))) == 1
    assert len(queries) == 1


async def test_pages_syncing_at_once_share_one_read_of_the_rooms_seq(connect, room, alice, monkeypatch):
    """A reconnect storm: every page of a room opens its socket before this process knows the room's
    newest seq. One read answers them all; only a page that is behind reads what it missed."""
    from chat import selectors
    from chat.realtime import catch_up

    missed = await create_messages(room, alice, 2)
    pages = [await connect(room.name, cursor=None) for _ in range(12)]
    calls = {"room_seq": 0, "room_changes_since": 0}
    for name in calls:
        real = getattr(selectors, name)

        def counted(real=real, name=name, **kw):
            calls[name] += 1
            return real(**kw)

        monkeypatch.setattr(selectors, name, counted)
    assert catch_up.rooms.known(room.name) is None

    await asyncio.gather(*(page.send_to(text_data=sync_frame(missed[-1].seq)) for page in pages[1:]))
    await pages[0].send_to(text_data=sync_frame(missed[0].seq))  # this one is behind

    assert shown_ids(await receive_all(pages[0])) == [missed[1].pk]
    for page in pages[1:]:
        assert await page.receive_nothing(timeout=0.05)
    assert calls == {"room_seq": 1, "room_changes_since": 1}
    assert catch_up.rooms.known(room.name) == missed[-1].seq


async def test_pages_behind_by_the_same_changes_share_one_catch_up(connect, room, alice, monkeypatch):
    """A lost broadcast or a layer outage leaves every page of a room behind by the same changes: the
    resync that follows reads and renders them once for all of them, not once per socket."""
    from channels.layers import get_channel_layer

    from chat.models import room_group_name
    from chat.realtime import catch_up

    [seen] = await create_messages(room, alice, 1)
    pages = [await connect(room.name, cursor=seen.seq) for _ in range(10)]
    for page in pages:
        assert await page.receive_nothing(timeout=0.05)
    missed = await create_messages(room, alice, 2)  # saved, never broadcast
    reads = []
    real = catch_up.catch_up
    monkeypatch.setattr(catch_up, "catch_up", lambda **kw: reads.append(kw) or real(**kw))

    await get_channel_layer().group_send(room_group_name(room.name), {"type": "chat.resync", "seq": missed[-1].seq})

    for frames in await asyncio.gather(*(receive_all(page) for page in pages)):
        assert shown_ids(frames) == [message.pk for message in missed]
    assert len(reads) == 1


async def test_a_socket_never_renders_the_same_history_twice(connect, room, alice):
    await create_messages(room, alice, 5)
    page = await connect(room.name, cursor=0)
    assert len(shown_ids(await receive_all(page))) == 5

    for _ in range(3):  # a hostile page asking again and again
        await page.send_to(text_data=sync_frame(0))
    assert await page.receive_nothing(timeout=0.3)


async def test_a_page_far_behind_gets_the_latest_page_and_a_marker_for_the_rest(connect, room, alice):
    messages = await create_messages(room, alice, 260)

    page = await connect(room.name, cursor=messages[4].seq)

    [frame] = await receive_all(page)
    assert shown_ids([frame]) == [m.pk for m in messages[-50:]]
    assert "205 messages you missed are above" in frame
    # The marker loads the missing ones between what the page shows and the latest page, newest first.
    assert f"?before={messages[-50].pk}&amp;after={messages[4].pk}" in frame
    assert f'value="{messages[-1].seq}" hx-swap-oob="true"' in frame


async def test_a_broadcast_already_shown_by_a_catch_up_is_skipped(connect, room, alice, bob):
    from chat import services

    [saved] = await create_messages(room, alice, 1)
    page = await connect(room.name, cursor=0)
    assert shown_ids(await receive_all(page)) == [saved.pk]

    # The broadcast of that message was still queued for this socket: appending it would show it twice.
    posted = services.Posted(message=saved, created=True, previous=None)
    await services.message_broadcast(posted=posted)
    assert await page.receive_nothing(timeout=0.2)
    [newer] = await create_messages(room, alice, 1, prefix="newer")
    await services.message_broadcast(posted=services.Posted(message=newer, created=True, previous=saved.created))
    assert shown_ids(await receive_all(page)) == [newer.pk]


async def test_a_lost_broadcast_is_noticed_at_the_next_one_and_only_the_missing_are_sent(connect, room, alice, bob):
    sender = await connect(room.name, alice)
    reader = await connect(room.name, bob)
    await sender.send_to(text_data=message_frame("first"))
    assert "first" in (await receive_all(reader))[0]
    # "second" is saved but its broadcast never arrives (as when Redis drops it).
    await database_sync_to_async(post_message)(room, alice, "second")
    await sender.send_to(text_data=message_frame("third"))

    frames = await receive_all(reader)

    joined = "".join(frames)
    assert "first" not in joined
    assert joined.index("second") < joined.index("third")
    assert len(shown_ids(frames)) == 2


async def test_a_garbled_cursor_counts_as_showing_nothing(connect, room, alice):
    await create_messages(room, alice, 1)

    page = await connect(room.name, cursor="garbage")

    assert "missed 0" in (await receive_all(page))[0]


async def test_after_a_layer_outage_only_sockets_behind_their_room_catch_up(connect, room, alice, bob):
    from channels.layers import get_channel_layer

    from chat import services

    await create_messages(room, alice, 1)
    current = await connect(room.name, alice)
    behind = await connect(room.name, bob)
    current_channel, behind_channel = [entry.channel for entry in sockets.entries()][-2:]
    assert await current.receive_nothing(timeout=0.2)
    # A second message: only `current` got its broadcast before the outage.
    [second] = await create_messages(room, alice, 1, prefix="second")
    layer = get_channel_layer()
    await layer.send(current_channel, services.change_event(message=second, kind="post"))
    assert "second 0" in await current.receive_from()

    # What the watcher sends each socket once the layer is back: its room's newest seq.
    for channel in (current_channel, behind_channel):
        await layer.send(channel, {"type": "chat.resync", "seq": 2})

    assert shown_ids(await receive_all(behind)) == [second.pk]
    assert await current.receive_nothing(timeout=0.3)


async def test_times_are_rendered_in_the_readers_time_zone(connect, room, alice, bob):
    from chat import services

    await database_sync_to_async(services.time_zone_set)(user=bob, time_zone="Asia/Tokyo")
    client = Client()
    await database_sync_to_async(client.force_login)(bob)
    await database_sync_to_async(client.get)(f"/chat/{room.name}/")  # the page puts the zone in the session
    sender = await connect(room.name, alice)
    tokyo = await communicator_for(room.name, client)

    await sender.send_to(text_data=message_frame("what time is it?"))

    utc_frames, tokyo_frames = await receive_all(sender), await receive_all(tokyo)
    message = await database_sync_to_async(Message.objects.get)()
    utc_time = message.created.strftime("%H:%M")
    tokyo_time = message.created.astimezone(ZoneInfo("Asia/Tokyo")).strftime("%H:%M")
    assert any(f">{utc_time}</time>" in frame and "UTC" in frame for frame in utc_frames)
    assert any(f">{tokyo_time}</time>" in frame and "JST" in frame for frame in tokyo_frames)


async def communicator_for(room_name: str, client: Client):
    """A socket with the session of a test client (as the browser that loaded the page)."""
    from channels.testing import WebsocketCommunicator

    from project.asgi import application

    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    communicator = WebsocketCommunicator(
        application,
        f"/ws/chat/{room_name}/",
        headers=[(b"origin", b"http://localhost"), (b"host", b"localhost"), (b"cookie", cookie)],
    )
    assert (await communicator.connect())[0]
    await communicator.receive_from()  # connection status
    await communicator.send_to(text_data=sync_frame(0))
    await communicator.receive_nothing(timeout=0.2)
    return communicator


async def test_a_save_that_fails_is_never_broadcast_and_the_socket_stays_usable(connect, alice, bob, monkeypatch):
    from django.db import OperationalError

    sender = await connect("general", alice)
    reader = await connect("general", bob)
    create = Message.objects.create

    def locked(**fields):
        raise OperationalError("database is locked")

    monkeypatch.setattr(Message.objects, "create", locked)
    await sender.send_to(text_data=message_frame("not saved"))
    reset, error = await receive_all(sender)
    # The input was emptied as soon as the text was valid; the failed save puts the text back.
    assert 'id="compose-message" name="message" value=""' in reset
    assert "could not be saved" in error
    assert 'id="compose-message" name="message" value="not saved"' in error
    assert await reader.receive_nothing(timeout=0.3)

    monkeypatch.setattr(Message.objects, "create", create)
    await sender.send_to(text_data=message_frame("saved now"))
    assert "saved now" in (await receive_all(reader))[0]


async def test_a_flooding_socket_is_told_to_slow_down_and_others_are_unaffected(connect, alice, bob):
    from chat.realtime.consumers import FRAME_BURST

    flooder = await connect("general", alice)
    reader = await connect("general", bob)

    # The page's sync frame on connect took one of the burst.
    for i in range(FRAME_BURST + 4):
        await flooder.send_to(text_data=message_frame(f"flood {i}"))
    frames = await receive_all(flooder)

    # 5 over the burst are refused (fewer if the bucket refilled meanwhile, on a slow machine); each frame
    # is either stored and shown to the other reader, or refused: none both, none lost.
    refused = sum("too fast" in frame for frame in frames)
    assert 1 <= refused <= 5
    assert await count_messages() == FRAME_BURST + 4 - refused
    assert len([f for f in await receive_all(reader) if "flood" in f]) == FRAME_BURST + 4 - refused
    # After a pause the socket works again.
    await asyncio.sleep(1.1)
    await flooder.send_to(text_data=message_frame("calm again"))
    assert "calm again" in (await receive_all(reader))[0]


def resend_frame(text: str, token: str) -> str:
    """What the "Send again" form of a refused text sends."""
    return json.dumps({**json.loads(message_frame(text, token)), "resend": "1"})


async def test_a_text_refused_for_speed_comes_back_beside_an_empty_input_and_is_never_glued_to_the_next(
    connect, alice, bob
):
    from chat.realtime.consumers import FRAME_BURST

    sender = await connect("general", alice)
    reader = await connect("general", bob)
    for i in range(FRAME_BURST - 1):  # the page's sync frame took one of the burst
        await sender.send_to(text_data=message_frame(f"quick {i}"))
    await receive_all(sender)
    token = str(uuid4())

    await sender.send_to(text_data=message_frame("one too many", token))
    (refused,) = await receive_all(sender)

    # The input is emptied (the next text is a message of its own) and the text is handed back with
    # the reason and a form that sends it again under the same token.
    assert 'id="compose-message" name="message" value=""' in refused
    assert f'<div id="unsent-{token}" class="unsent-item">' in refused
    assert '<blockquote class="unsent-text">one too many</blockquote>' in refused
    assert f'name="token" value="{token}"' in refused and 'name="resend" value="1"' in refused
    assert "too fast" in refused
    assert not any("one too many" in frame for frame in await receive_all(reader))

    await asyncio.sleep(1.1)
    await sender.send_to(text_data=message_frame("typed meanwhile"))  # a new text, not glued on
    await sender.send_to(text_data=resend_frame("one too many", token))
    sent = await receive_all(sender)

    assert [f for f in sent if f'id="unsent-{token}" hx-swap-oob="delete"' in f]
    # The resend leaves the input alone: only the new text's send emptied it.
    assert sum('id="compose-message"' in frame for frame in sent) == 1
    bodies = await database_sync_to_async(lambda: list(Message.objects.order_by("id").values_list("body", flat=True)))()
    assert bodies[-2:] == ["typed meanwhile", "one too many"]


async def test_refused_texts_handed_back_are_bounded_the_oldest_making_way(connect, alice, monkeypatch):
    from chat.realtime import consumers
    from chat.realtime.consumers import FRAME_BURST, MAX_UNSENT

    monkeypatch.setattr(consumers, "FRAME_RATE", 0.001)  # no refill while the test runs, however slowly
    sender = await connect("general", alice)
    for i in range(FRAME_BURST - 1):
        await sender.send_to(text_data=message_frame(f"quick {i}"))
    await receive_all(sender)
    tokens = [str(uuid4()) for _ in range(MAX_UNSENT + 2)]
    for i, token in enumerate(tokens):
        await sender.send_to(text_data=message_frame(f"flood {i}", token))
    frames = "".join(await receive_all(sender))

    assert all(f'<div id="unsent-{token}" class="unsent-item">' in frames for token in tokens)
    dropped = re.findall(r'id="unsent-([0-9a-f-]+)" hx-swap-oob="delete"', frames)
    assert dropped == tokens[:2]


async def test_a_text_over_the_posting_limit_is_handed_back_too(connect, alice, settings):
    settings.CHAT_LIMITS = {**settings.CHAT_LIMITS, "posts_per_user": "1/3600"}
    sender = await connect("general", alice)
    await sender.send_to(text_data=message_frame("the one allowed"))
    await receive_all(sender)
    token = str(uuid4())

    await sender.send_to(text_data=message_frame("over the limit", token))
    frames = await receive_all(sender)

    assert 'id="compose-message" name="message" value=""' in frames[0]  # emptied once the text was valid
    assert "over the limit" not in frames[0]
    assert f'<div id="unsent-{token}" class="unsent-item">' in frames[-1]
    assert "You are posting too fast" in frames[-1]
    assert 'id="compose-message"' not in frames[-1]  # not emptied twice: the next text may be under way
    assert await count_messages() == 1


async def test_a_run_of_one_authors_messages_is_marked_alike_live_and_on_the_page(connect, alice, bob):
    reader = await connect("general", bob)
    alices = await connect("general", alice)
    bobs = await connect("general", bob)
    live = []
    for socket, text in ((alices, "first of a run"), (alices, "second of the run"), (bobs, "bob breaks the run")):
        await socket.send_to(text_data=message_frame(text))
        live += await frames_until(reader, text)

    def item_classes(html: str) -> list[str]:
        return re.findall(r'<li id="message-\d+" class="(message [^"]*)"', html)

    page = (await database_sync_to_async(Client().get)("/chat/general/")).content.decode()
    expected = [f"message by-{alice.pk}", f"message by-{alice.pk} cont", f"message by-{bob.pk}"]
    assert item_classes(page) == expected
    assert item_classes("".join(live)) == expected


async def test_a_socket_at_another_spelling_of_a_room_joins_the_room_and_gets_its_own_echo(connect, alice, bob):
    from chat.models import Room

    room = await database_sync_to_async(Room.objects.create)(name="general")
    reader = await connect("general", bob)
    shouting = await connect("General", alice)  # room names are case-insensitive: this is `general`

    await shouting.send_to(text_data=message_frame("hello from the caps"))

    assert any("hello from the caps" in frame for frame in await receive_all(shouting))  # its own echo
    assert any("hello from the caps" in frame for frame in await receive_all(reader))
    stored = await database_sync_to_async(lambda: list(Message.objects.values_list("room_id", flat=True)))()
    assert stored == [room.pk]
    assert not await database_sync_to_async(Room.objects.filter(name="General").exists)()
