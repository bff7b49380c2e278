"""Typing notices: relayed to the others in the room within a second, throttled, never to the typist,
never from anonymous readers, cleared when the typist stops or their message arrives, never stored."""

import asyncio
import json
import re
import time

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from chat.models import Message
from chat.realtime import typing_notices
from tests.support.in_process import frames_until, message_frame

TYPING = json.dumps({"HEADERS": {"HX-Request": "true", "HX-Trigger": "compose-message", "Chat-Typing": "1"}})


def typing_text(frame: str) -> str:
    return re.search(r'<div id="typing"[^>]*><span>(.*?)</span></div>', frame, re.S).group(1)


async def typing_frames(communicator, seconds: float, until: str | None = None) -> list[str]:
    """The texts of the typing frames that arrive within `seconds` (or up to one reading `until`)."""
    texts = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if await communicator.receive_nothing(timeout=min(left, 0.1)):
            continue
        frame = await communicator.receive_from()
        if 'id="typing"' in frame:
            texts.append(typing_text(frame))
            if until is not None and texts[-1] == until:
                break
    return texts


async def test_the_others_see_who_is_typing_within_a_second_and_the_typist_does_not(connect, alice, bob):
    ada = await connect("general", alice)
    bobs = await connect("general", bob)

    await ada.send_to(text_data=TYPING)

    assert (await typing_frames(bobs, 1.0, until="alice is typing…"))[-1:] == ["alice is typing…"]
    assert await typing_frames(ada, 1.0) == []


async def test_a_notice_clears_within_six_seconds_of_the_last_keystroke(connect, alice, bob):
    ada = await connect("general", alice)
    bobs = await connect("general", bob)
    await ada.send_to(text_data=TYPING)
    await typing_frames(bobs, 1.0, until="alice is typing…")

    assert await typing_frames(bobs, 6.0, until="") == [""]


async def test_the_typists_message_clears_the_notice_at_once(connect, alice, bob):
    ada = await connect("general", alice)
    bobs = await connect("general", bob)
    await ada.send_to(text_data=TYPING)
    await typing_frames(bobs, 1.0, until="alice is typing…")

    await ada.send_to(text_data=message_frame("done typing"))

    # The notice clears at once (it would otherwise show for 4.5 s more), in the message's own frame: one
    # frame to each reader, not two.
    frames = await frames_until(bobs, "done typing", seconds=1.5)
    assert 'id="typing"' in frames[-1] and typing_text(frames[-1]) == ""
    assert not any('id="typing"' in frame for frame in frames[:-1])


async def test_several_typists_are_listed_together(connect, alice, bob, django_user_model):
    carol, dora = await database_sync_to_async(
        lambda: [django_user_model.objects.create_user(name, password="x-y-z-w-1") for name in ("carol", "dora")]
    )()
    reader = await connect("general", carol)
    typists = [await connect("general", user) for user in (alice, bob)]

    for typist in typists:
        await typist.send_to(text_data=TYPING)
    assert (await typing_frames(reader, 2.0, until="alice and bob are typing…"))[-1] == "alice and bob are typing…"
    # The typists see each other, never themselves.
    assert (await typing_frames(typists[0], 1.0, until="bob is typing…"))[-1] == "bob is typing…"

    third = await connect("general", dora)
    await third.send_to(text_data=TYPING)
    assert (await typing_frames(reader, 2.0, until="Several people are typing…"))[-1] == "Several people are typing…"


async def test_at_most_one_notice_per_user_every_two_seconds_is_relayed(connect, alice):
    layer = get_channel_layer()
    listener = await layer.new_channel()
    await layer.group_add("chat.general", listener)
    ada = await connect("general", alice)

    for _ in range(6):
        await ada.send_to(text_data=TYPING)
    relayed = []
    try:
        while True:
            relayed.append(await asyncio.wait_for(layer.receive(listener), 1.5))
    except TimeoutError:
        pass

    assert [event for event in relayed if event["type"] == "chat.typing"] == [{"type": "chat.typing", "user": "alice"}]


async def test_anonymous_readers_cannot_send_notices(connect, bob):
    bobs = await connect("general", bob)
    anonymous = await connect("general")

    await anonymous.send_to(text_data=TYPING)

    assert await typing_frames(bobs, 1.0) == []
    assert await anonymous.receive_nothing(timeout=0.2), "a typing frame gets no answer, not even an error"


async def test_notices_are_never_stored(connect, alice, bob):
    ada = await connect("general", alice)
    await connect("general", bob)
    await ada.send_to(text_data=TYPING)
    await ada.receive_nothing(timeout=0.5)

    assert await database_sync_to_async(Message.objects.count)() == 0
    assert typing_notices.is_notice(json.loads(TYPING))


async def test_typing_markers_never_spend_the_allowance_of_posts(connect, alice):
    """A quick typist's page sends a marker with (nearly) every message: seven messages in a row (with the page's
    sync frame, the whole burst allowance), each after its markers, all go through; it is for floods."""
    ada = await connect("general", alice)
    for n in range(7):
        for _ in range(3):
            await ada.send_to(text_data=TYPING)
        await ada.send_to(text_data=message_frame(f"burst{n}"))

    frames = await frames_until(ada, "burst6", seconds=5)

    assert not any("too fast" in frame for frame in frames)
    assert await database_sync_to_async(lambda: list(Message.objects.values_list("body", flat=True)))() == [
        f"burst{n}" for n in range(7)
    ]


async def test_a_flood_of_typing_markers_is_dropped_quietly_and_still_relayed_at_most_every_two_seconds(
    connect, alice, bob
):
    ada = await connect("general", alice)
    bobs = await connect("general", bob)
    for _ in range(200):
        await ada.send_to(text_data=TYPING)

    assert await typing_frames(bobs, 1.0, until="alice is typing…") == ["alice is typing…"]
    assert await ada.receive_nothing(timeout=0.3)  # no error frames for the typist
    await ada.send_to(text_data=message_frame("still here"))
    assert any("still here" in frame for frame in await frames_until(ada, "still here"))


@pytest.mark.presence
async def test_nobody_s_typing_is_relayed_in_a_room_of_more_than_max_people(connect, alice, bob, monkeypatch):
    monkeypatch.setattr(typing_notices, "MAX_PEOPLE", 2)
    ada = await connect("general", alice)
    bobs = await connect("general", bob)
    await ada.send_to(text_data=TYPING)
    assert (await typing_frames(bobs, 1.0, until="alice is typing…"))[-1:] == ["alice is typing…"]
    await typing_frames(bobs, 6.0, until="")  # cleared

    await connect("general")  # a third person: the room is now a crowd
    assert "1 reader not signed in" in (await frames_until(bobs, "reader not signed in", 3.0))[-1]
    await ada.send_to(text_data=TYPING)

    assert await typing_frames(bobs, 1.5) == []
