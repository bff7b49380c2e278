"""A catch-up's frames stay far below daphne's 1 MiB frame limit, whatever the messages hold."""

import re
from uuid import uuid4

from chat import services
from chat.models import Message, Room
from chat.realtime import catch_up
from tests.support.in_process import post_message

DAPHNE_MAX_FRAME = 1024 * 1024
QUOTES = "'" * 2000  # HTML-escaping makes each quote 5 bytes


def edited_to_quotes(room: Room, author, count: int) -> None:
    """`count` short messages (seqs 1 to count), then each edited to 2,000 quotes."""
    messages = [post_message(room, author, f"short {n}") for n in range(count)]
    for message in messages:
        services.message_edit(room=room, message_id=message.pk, editor=author, data={"message": QUOTES})


def shown_ids(frames: list[str]) -> list[str]:
    return [pk for frame in frames for pk in re.findall(r'<li id="message-(\d+)"', frame)]


def test_edits_of_long_escaped_texts_come_in_frames_each_far_below_the_limit(alice):
    room = Room.objects.create(name="quotes")
    edited_to_quotes(room, alice, 90)

    # A page that shows the 90 short ones: it gets the 90 edits.
    result = catch_up.catch_up(room_name=room.name, cursor=90, zone_name="UTC")

    assert len(result.frames) > 1
    assert max(len(frame.encode()) for frame in result.frames) <= catch_up.FRAME_BYTES + 16 * 1024
    assert sum(len(frame.encode()) for frame in result.frames) > DAPHNE_MAX_FRAME  # one frame would not do
    assert len(shown_ids(result.frames)) == 90  # every edit replaced, once
    assert result.seq == 180


def test_new_long_messages_are_appended_in_order_across_frames(alice):
    room = Room.objects.create(name="quotes")
    posted = [
        services.message_post(room=room, author=alice, data={"message": QUOTES[:1995] + str(n), "token": str(uuid4())})
        for n in range(60)
    ]

    result = catch_up.catch_up(room_name=room.name, cursor=0, zone_name="UTC")

    assert max(len(frame.encode()) for frame in result.frames) <= catch_up.FRAME_BYTES + 16 * 1024
    assert shown_ids(result.frames) == [str(p.message.pk) for p in posted]


def test_a_page_far_behind_gets_the_newest_that_fit_one_frame(alice, settings):
    room = Room.objects.create(name="quotes")
    for n in range(catch_up.MAX_CATCH_UP + 1):
        services.message_post(room=room, author=alice, data={"message": QUOTES[:1995] + str(n), "token": str(uuid4())})

    result = catch_up.catch_up(room_name=room.name, cursor=0, zone_name="UTC")

    [frame] = result.frames
    assert len(frame.encode()) <= catch_up.FRAME_BYTES + 16 * 1024
    newest = list(Message.objects.filter(room=room).order_by("-pk").values_list("pk", flat=True))
    shown = shown_ids(result.frames)
    assert shown and shown == [str(pk) for pk in reversed(newest[: len(shown)])]  # the newest, in order


def test_a_catch_up_after_a_rename_shows_the_new_name(alice, bob):
    room = Room.objects.create(name="renames")
    post_message(room, alice, "hello")
    post_message(room, bob, "hi alice")
    assert ">alice<" in "".join(catch_up.catch_up(room_name=room.name, cursor=0, zone_name="UTC").frames)

    alice.username = "alicia"
    alice.save()

    frames = "".join(catch_up.catch_up(room_name=room.name, cursor=0, zone_name="UTC").frames)
    assert ">alicia<" in frames and ">alice<" not in frames


def test_more_edits_than_a_catch_up_carries_ask_the_page_to_reload(alice):
    """One sync frame must not make the server build megabytes of frames: past MAX_REPLACED edits of messages
    the page may show, or their text's worth, it gets the reload note instead."""
    room = Room.objects.create(name="edits")
    messages = [post_message(room, alice, f"short {n}") for n in range(catch_up.MAX_REPLACED + 1)]
    for message in messages:
        services.message_edit(room=room, message_id=message.pk, editor=alice, data={"message": "changed"})

    result = catch_up.catch_up(room_name=room.name, cursor=len(messages), zone_name="UTC")

    [frame] = result.frames
    assert shown_ids(result.frames) == [] and "reload" in frame.lower()
    assert result.seq == 2 * len(messages)


def test_fewer_edits_with_a_lot_of_text_ask_the_page_to_reload_too(alice):
    room = Room.objects.create(name="quotes")
    edited_to_quotes(room, alice, 160)  # 160 x 2,000 quotes: about 2 MiB of escaped text

    [frame] = catch_up.catch_up(room_name=room.name, cursor=160, zone_name="UTC").frames

    assert shown_ids([frame]) == [] and "reload" in frame.lower()


def test_a_catch_up_cut_off_after_any_frame_resumes_from_it_and_appends_nothing_twice(alice):
    room = Room.objects.create(name="quotes")
    early = post_message(room, alice, "shown already")
    for n in range(60):
        services.message_post(room=room, author=alice, data={"message": QUOTES[:1995] + str(n), "token": str(uuid4())})
    services.message_edit(room=room, message_id=early.pk, editor=alice, data={"message": "edited since"})

    full = catch_up.catch_up(room_name=room.name, cursor=1, zone_name="UTC")
    assert len(full.frames) > 2

    def appended(frames: list[str]) -> list[str]:  # the new messages (the early one is replaced, not appended)
        return [pk for pk in shown_ids(frames) if pk != str(early.pk)]

    for cut in range(1, len(full.frames)):
        sent = full.frames[:cut]
        cursors = [int(c) for frame in sent for c in re.findall(r'id="sync-after" name="after" value="(\d+)"', frame)]
        resumed = catch_up.catch_up(room_name=room.name, cursor=cursors[-1] if cursors else 1, zone_name="UTC")
        assert not set(appended(sent)) & set(appended(resumed.frames)), f"appended twice after frame {cut}"
        assert appended(sent) + appended(resumed.frames) == appended(full.frames), f"lost after frame {cut}"
