"""A burst bigger than the layer's queues: every listener still gets every message, once, in order.

The in-memory layer drops events for a socket whose queue is full (capacity 100) without an
error; Redis pub/sub delivers at most once. Either way a socket that sees a gap in `seq` (or is
left behind by the last messages, with nothing after them) catches up from the database.
"""

import asyncio
import re
import time
from uuid import uuid4

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from chat import services
from chat.models import Room
from tests.support.in_process import post_message, sync_frame

LISTENERS = 200
POSTS = 400


async def open_listeners(room_name: str, count: int) -> list[WebsocketCommunicator]:
    from project.asgi import application

    listeners = []
    for _ in range(count):
        communicator = WebsocketCommunicator(
            application, f"/ws/chat/{room_name}/", headers=[(b"origin", b"http://localhost"), (b"host", b"localhost")]
        )
        assert (await communicator.connect())[0]
        await communicator.receive_from(timeout=10)  # connection status (slow to come on a busy machine)
        await communicator.send_to(text_data=sync_frame(0))
        listeners.append(communicator)
    return listeners


async def collect(listener: WebsocketCommunicator, expected: int, seconds: float) -> list[int]:
    """The message ids the listener's page shows, in order, once it has `expected` (or time is up)."""
    shown: list[int] = []
    deadline = time.monotonic() + seconds
    while len(shown) < expected and time.monotonic() < deadline:
        try:
            frame = await listener.receive_from(timeout=max(deadline - time.monotonic(), 0.01))
        except TimeoutError:
            break
        shown += [int(pk) for pk in re.findall(r'<li id="message-(\d+)" class="message\b', frame)]
    return shown


async def burst_reaches_everyone() -> None:
    from django.contrib.auth.models import User

    room = await database_sync_to_async(Room.objects.create)(name=f"burst-{uuid4().hex[:8]}")
    author = await database_sync_to_async(User.objects.create_user)(f"poster-{uuid4().hex[:6]}")
    listeners = await open_listeners(room.name, LISTENERS)
    await asyncio.sleep(0.5)  # every sync answered (an empty room: nothing to send)

    post = database_sync_to_async(post_message)
    ids = []
    previous = None
    for i in range(POSTS):
        message = await post(room, author, f"burst {i}")
        ids.append(message.pk)
        await services.message_broadcast(posted=services.Posted(message=message, created=True, previous=previous))
        previous = message.created

    results = await asyncio.gather(*(collect(listener, POSTS, 60) for listener in listeners))
    for listener in listeners:
        await listener.disconnect()
    complete = sum(shown == ids for shown in results)
    assert complete == LISTENERS, (
        f"{complete} of {LISTENERS} listeners got all {POSTS} in order; "
        f"counts seen: {sorted({len(shown) for shown in results})}"
    )


@pytest.mark.django_db(transaction=True)
async def test_a_burst_reaches_every_listener_complete_and_in_order_on_the_in_memory_layer():
    await burst_reaches_everyone()


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
async def test_a_burst_reaches_every_listener_complete_and_in_order_through_redis(redis_layer):
    await burst_reaches_everyone()
