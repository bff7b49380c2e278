"""Connection status and stragglers: what each process's liveness task sends its room sockets."""

import re
import time

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from chat import services
from chat.realtime import liveness
from chat.realtime.registry import sockets
from chat.realtime.scheduler import scheduler
from tests.support.in_process import message_frame, post_message, receive_all


@pytest.fixture
def fast_ticks(monkeypatch):
    monkeypatch.setattr(scheduler.job("liveness"), "interval", 0.1)
    monkeypatch.setattr(liveness, "IDLE_REFRESH", 0.5)


async def test_every_socket_gets_a_live_status_on_connect(transactional_db):
    from channels.testing import WebsocketCommunicator

    from project.asgi import application

    communicator = WebsocketCommunicator(
        application, "/ws/chat/status/", headers=[(b"origin", b"http://localhost"), (b"host", b"localhost")]
    )
    assert (await communicator.connect())[0]
    frame = await communicator.receive_from()
    await communicator.disconnect()

    assert 'id="connection-status"' in frame and 'hx-swap-oob="true"' in frame
    assert 'class="reconnecting"' in frame  # revealed by CSS if no fresh copy follows in time


async def frames_for(communicator, seconds: float) -> list[str]:
    """Every frame the socket gets during `seconds`."""
    frames, deadline = [], time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if not await communicator.receive_nothing(timeout=min(left, 0.05)):
            frames.append(await communicator.receive_from())
    return frames


async def test_an_idle_socket_gets_a_fresh_status_about_once_per_refresh_interval(connect, fast_ticks):
    page = await connect("quiet")

    frames = await frames_for(page, 2.0)

    assert frames and all('id="connection-status"' in frame for frame in frames)
    assert 2 <= len(frames) <= 4  # 0.5 s apart, checked every 0.1 s, over ~2 s


async def test_while_messages_flow_no_extra_status_frames_are_sent(connect, alice, bob, fast_ticks, monkeypatch):
    monkeypatch.setattr("chat.realtime.consumers.FRAME_BURST", 100)
    # Messages flow when they come closer together than the idle refresh: each gap here is well under
    # 2 s even on a loaded machine (at 0.5 s, a stalled worker's gap made a status frame due).
    monkeypatch.setattr(liveness, "IDLE_REFRESH", 2.0)
    sender = await connect("busy", alice)
    reader = await connect("busy", bob)

    for i in range(6):
        await sender.send_to(text_data=message_frame(f"flowing {i}"))
        frames = await receive_all(reader, timeout=0.05, first=1.0)
        assert len(frames) == 1 and f"flowing {i}" in frames[0]
        assert 'id="connection-status"' in frames[0]  # each message frame refreshes the status itself
        await receive_all(sender, timeout=0.05, first=0.3)


async def test_a_socket_left_behind_by_a_lost_last_broadcast_catches_up_within_two_ticks(
    connect, room, alice, bob, fast_ticks
):
    got_it = await connect(room.name, alice)
    left_behind = await connect(room.name, bob)
    await receive_all(got_it, first=0.3)
    await receive_all(left_behind, first=0.3)
    message = await database_sync_to_async(post_message)(room, alice, "the last word")
    # Only one socket's copy arrives (a layer at capacity dropped the other), and nothing follows.
    event = services.message_event(posted=services.Posted(message=message, created=True, previous=None))
    got_it_channel = sockets.in_room(room.name)[0].channel
    await get_channel_layer().send(got_it_channel, event)

    frames = await receive_all(left_behind, timeout=0.3, first=2.0)

    shown = [pk for frame in frames for pk in re.findall(r'<li id="message-(\d+)"', frame)]
    assert shown == [str(message.pk)]
