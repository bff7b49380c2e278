"""Hostile frames: whatever a client sends gets a compose error; the socket stays open and nothing crashes."""

import logging

import pytest
from channels.db import database_sync_to_async

from chat.models import Message
from tests.support.in_process import frames_until, message_frame, receive_all

HOSTILE = {
    "deeply nested list": "[" * 8000,
    "deeply nested object": '{"a":' * 8000,
    "nested inside a field": '{"message": ' + "[" * 8000,
    "lone surrogate in the text": message_frame("x").replace('"x"', '"\\ud800"'),
    "lone low surrogate": message_frame("x").replace('"x"', '"a\\udfff b"'),
    "surrogate in the token": message_frame("x").replace('"token": "', '"token": "\\ud83d'),
    "NUL in the text": message_frame("a\x00b"),
    "huge number": '{"message": 1' + "0" * 5000 + "}",
    "cursor of 5,000 digits": '{"after": "' + "9" * 5000 + '"}',
    "cursor of unicode digits": '{"after": "\u0661\u0662"}',
}


@pytest.mark.parametrize("name", HOSTILE)
async def test_a_hostile_frame_gets_a_compose_error_and_the_socket_stays_usable(
    connect, alice, bob, name, caplog, monkeypatch
):
    monkeypatch.setattr("chat.realtime.consumers.FRAME_BURST", 100)
    sender = await connect("general", alice)
    reader = await connect("general", bob)

    with caplog.at_level(logging.WARNING):
        await sender.send_to(text_data=HOSTILE[name])
        frames = await receive_all(sender, first=1.0)

    if not name.startswith("cursor"):  # a cursor nobody can read means "shows nothing": no error needed
        assert any('id="compose-errors"' in frame and "<p>" in frame for frame in frames), frames
    assert not [r for r in caplog.records if r.exc_info], "no traceback is logged"
    assert await database_sync_to_async(Message.objects.count)() == 0
    await sender.send_to(text_data=message_frame("still here"))
    assert any("still here" in frame for frame in await frames_until(reader, "still here"))


async def test_a_binary_frame_gets_a_compose_error(connect, alice):
    sender = await connect("general", alice)

    await sender.send_to(bytes_data=b"\xff\xfe\x00")

    assert "Send text frames." in await sender.receive_from()
    await sender.send_to(text_data=message_frame("text now"))
    assert any("text now" in frame for frame in await frames_until(sender, "text now"))
