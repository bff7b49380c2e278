"""The product's channel layers: Channels' in-memory layer and channels-redis's pub/sub layer, with each
channel's waiting messages in a Mailbox (chat/backends/channel_mailbox.py)."""

import asyncio
import hashlib
import importlib
import importlib.metadata
import inspect
import time

import pytest
from channels.exceptions import ChannelFull

from chat.backends import memory_layer
from chat.backends.channel_mailbox import Mailbox
from chat.backends.memory_layer import SweepingInMemoryChannelLayer
from chat.backends.pubsub_layer import RedisPubSubChannelLayer


async def test_memory_layer_delivers_to_a_channel_and_a_group():
    layer = SweepingInMemoryChannelLayer()
    one, two = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("room", one)
    await layer.group_add("room", two)

    await layer.send(one, {"type": "direct"})
    await layer.group_send("room", {"type": "broadcast", "n": 1})

    assert await layer.receive(one) == {"type": "direct"}
    assert await layer.receive(one) == {"type": "broadcast", "n": 1}
    assert await layer.receive(two) == {"type": "broadcast", "n": 1}


async def test_memory_layer_keeps_nothing_for_a_drained_channel_or_a_closed_receiver():
    layer = SweepingInMemoryChannelLayer()
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "x"})
    await layer.receive(channel)
    assert layer.channels == {}

    waiting = asyncio.create_task(layer.receive(channel))  # a socket waiting for its next message
    await asyncio.sleep(0)
    assert isinstance(layer.channels[channel], Mailbox)
    waiting.cancel()  # the socket closed
    await asyncio.gather(waiting, return_exceptions=True)

    assert layer.channels == {}


async def test_memory_layer_refuses_a_message_beyond_a_channels_capacity():
    layer = SweepingInMemoryChannelLayer(capacity=2)
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "x", "n": 1})
    await layer.send(channel, {"type": "x", "n": 2})

    with pytest.raises(ChannelFull):
        await layer.send(channel, {"type": "x", "n": 3})
    assert [(await layer.receive(channel))["n"] for _ in range(2)] == [1, 2]


async def test_memory_layer_group_send_skips_a_full_member_and_reaches_the_others_in_one_step(monkeypatch):
    layer = SweepingInMemoryChannelLayer(capacity=1)
    members = [await layer.new_channel() for _ in range(300)]
    for channel in members:
        await layer.group_add("room", channel)
    await layer.send(members[0], {"type": "x", "n": 0})  # its mailbox is full
    tasks = []
    real = asyncio.create_task
    monkeypatch.setattr(asyncio, "create_task", lambda *a, **k: tasks.append(1) or real(*a, **k))

    await layer.group_send("room", {"type": "x", "n": 1})

    assert tasks == []  # no task per member
    assert (await layer.receive(members[0]))["n"] == 0
    assert [(await layer.receive(channel))["n"] for channel in members[1:]] == [1] * 299


async def test_memory_layer_copies_what_it_sends():
    layer = SweepingInMemoryChannelLayer()
    channel = await layer.new_channel()
    message = {"type": "x", "items": [1]}
    await layer.send(channel, message)
    message["items"].append(2)

    assert (await layer.receive(channel))["items"] == [1]


async def test_memory_layer_sweep_drops_expired_messages_and_their_channel_leaves_its_groups():
    layer = SweepingInMemoryChannelLayer(expiry=0.01)
    stale, fresh = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("room", stale)
    await layer.group_add("room", fresh)
    await layer.send(stale, {"type": "never read"})
    await asyncio.sleep(0.02)

    layer._clean_expired()

    assert stale not in layer.channels
    assert list(layer.groups["room"]) == [fresh]


async def test_memory_layer_sweep_ends_old_group_memberships_at_most_once_per_interval(monkeypatch):
    layer = SweepingInMemoryChannelLayer(group_expiry=60)
    old, new = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("room", old)
    await layer.group_add("room", new)
    layer.groups["room"][old] = time.time() - 120
    layer._clean_expired()
    assert list(layer.groups["room"]) == [new]

    layer.groups["room"][new] = time.time() - 120
    layer._clean_expired()  # within CLEAN_INTERVAL of the last sweep: skipped
    assert list(layer.groups["room"]) == [new]
    monkeypatch.setattr(memory_layer, "CLEAN_INTERVAL", 0.0)
    layer._clean_expired()
    assert layer.groups["room"] == {}


@pytest.fixture
def redis_url(redis_server):
    return redis_server.url


@pytest.mark.redis
async def test_pubsub_layer_delivers_through_redis_and_unsubscribes_a_closed_receiver(redis_url):
    layer = RedisPubSubChannelLayer(hosts=[redis_url])
    try:
        one, two = await layer.new_channel(), await layer.new_channel()
        await layer.group_add("room", one)
        await layer.group_add("room", two)

        await layer.send(one, {"type": "direct"})
        await layer.group_send("room", {"type": "broadcast"})

        assert await asyncio.wait_for(layer.receive(one), 3) == {"type": "direct"}
        assert await asyncio.wait_for(layer.receive(one), 3) == {"type": "broadcast"}
        assert await asyncio.wait_for(layer.receive(two), 3) == {"type": "broadcast"}
        loop_layer = layer._get_layer()
        assert all(isinstance(box, Mailbox) for box in loop_layer.channels.values())

        waiting = asyncio.create_task(layer.receive(two))
        await asyncio.sleep(0.05)
        waiting.cancel()  # the socket closed: channels-redis unsubscribes its channel
        await asyncio.gather(waiting, return_exceptions=True)
        assert two not in loop_layer.channels
    finally:
        await layer.flush()


@pytest.mark.redis
async def test_pubsub_layer_unsubscribes_a_closed_receiver_even_when_the_close_is_cut_short(redis_url):
    import redis.asyncio

    layer = RedisPubSubChannelLayer(hosts=[redis_url])
    observer = redis.asyncio.Redis.from_url(redis_url)
    try:
        channel = await layer.new_channel()
        waiting = asyncio.create_task(layer.receive(channel))
        await asyncio.sleep(0.05)
        assert channel.encode() in await observer.pubsub_channels()
        shard = layer._get_layer()._get_shard(channel)

        async with shard._lock:  # a mass close: other sockets hold the shard connection
            waiting.cancel()
            await asyncio.sleep(0.05)
            assert waiting.done()  # the receive ends at once: a second cancellation has nothing to cut short

        for _ in range(50):
            if channel.encode() not in await observer.pubsub_channels():
                break
            await asyncio.sleep(0.02)
        assert channel.encode() not in await observer.pubsub_channels()
    finally:
        await observer.aclose()
        await layer.flush()


# The upstream code the layers copy or lean on, by the SHA-256 (first 16 hex digits) of its
# inspect.getsource: the copied methods themselves, and the upstream ones that touch what the copies
# change (each channel's Mailbox in `channels`, the `groups` dict the sweep walks, `_layers` per loop).
CHECKED_AGAINST = {"channels": "4.3.2", "channels_redis": "4.3.0"}
UPSTREAM_SOURCES = [
    # channels 4.3.2: InMemoryChannelLayer, copied in chat/backends/memory_layer.py.
    ("channels.layers", "InMemoryChannelLayer.__init__", "a868dc26b1c1947d", "memory_layer"),
    ("channels.layers", "InMemoryChannelLayer.send", "a4dab1cd8aff886e", "memory_layer"),
    ("channels.layers", "InMemoryChannelLayer.receive", "e615f8ae40b60e12", "memory_layer"),
    ("channels.layers", "InMemoryChannelLayer._clean_expired", "604032dae1cc01d2", "memory_layer"),
    ("channels.layers", "InMemoryChannelLayer._remove_from_groups", "791d451199f668ed", "memory_layer"),
    ("channels.layers", "InMemoryChannelLayer.group_add", "7c4f2ffd2d8f7a91", "memory_layer"),
    ("channels.layers", "InMemoryChannelLayer.group_send", "693c3172deb6431b", "memory_layer"),
    # channels-redis 4.3.0: the pub/sub layer, copied in chat/backends/pubsub_layer.py.
    ("channels_redis.pubsub", "RedisPubSubChannelLayer._get_layer", "1862b87a25ac72b2", "pubsub_layer"),
    ("channels_redis.pubsub", "RedisPubSubLoopLayer.__init__", "fd9d37e275298a58", "pubsub_layer"),
    ("channels_redis.pubsub", "RedisPubSubLoopLayer._subscribe_to_channel", "3da2e955db06450f", "pubsub_layer"),
    ("channels_redis.pubsub", "RedisPubSubLoopLayer.receive", "2d3fa7938ba6e0a6", "pubsub_layer"),
    ("channels_redis.pubsub", "RedisPubSubLoopLayer._get_shard", "9c655ee12ccbc91e", "pubsub_layer"),
    ("channels_redis.pubsub", "RedisPubSubLoopLayer.group_add", "09e5aeb8954a88f2", "pubsub_layer"),
    ("channels_redis.pubsub", "RedisSingleShardConnection._receive_message", "2f5f46af28e8ed76", "pubsub_layer"),
    ("channels_redis.utils", "_wrap_close", "3d610af1683772a9", "pubsub_layer"),
]


@pytest.mark.parametrize(
    ("module", "name", "digest", "ours"), UPSTREAM_SOURCES, ids=[f"{row[0]}.{row[1]}" for row in UPSTREAM_SOURCES]
)
def test_the_upstream_code_the_layers_copy_is_the_version_they_were_copied_from(module, name, digest, ours):
    """Canary, checked against channels 4.3.2 and channels-redis 4.3.0: each upstream method the layers
    copy (or whose use of `channels`/`groups`/`_layers` the copies rely on) still has the source it had.
    A change fails here, naming the copy to re-read before updating the digest."""
    package = module.split(".")[0]
    target = importlib.import_module(module)
    for attribute in name.split("."):
        target = getattr(target, attribute)

    assert hashlib.sha256(inspect.getsource(target).encode()).hexdigest()[:16] == digest, (
        f"{module}.{name} is not the one of {package} {CHECKED_AGAINST[package]} "
        f"(installed: {importlib.metadata.version(package)}): re-check the copy in chat/backends/{ours}.py, "
        "then update its digest here"
    )


@pytest.mark.redis
async def test_pubsub_layer_unsubscribes_a_channel_whose_receive_never_started(redis_url):
    """A consumer cancelled before its channel's receive took its first step (a socket closed as it opened, a
    close cut short): the receive never ran, so only the consumer's release (`forget`) can unsubscribe it.
    The soak found such channels left subscribed: ~1.5 a minute per process, hundreds after a mass close."""
    import redis.asyncio

    layer = RedisPubSubChannelLayer(hosts=[redis_url])
    observer = redis.asyncio.Redis.from_url(redis_url)
    try:
        channel = await layer.new_channel()
        never_started = asyncio.ensure_future(layer.receive(channel))
        never_started.cancel()
        await asyncio.gather(never_started, return_exceptions=True)
        assert channel.encode() in await observer.pubsub_channels()  # what was left behind

        layer.forget(channel)  # the consumer's release, on every way out

        for _ in range(50):
            if channel.encode() not in await observer.pubsub_channels():
                break
            await asyncio.sleep(0.02)
        assert channel.encode() not in await observer.pubsub_channels()
        assert channel not in layer._get_layer().channels
    finally:
        await observer.aclose()
        await layer.flush()


@pytest.mark.redis
async def test_pubsub_layer_unsubscribes_a_channel_whose_subscribe_was_cancelled(redis_url):
    """A consumer cancelled while its new channel waited for the shard (a storm of opens and closes) never got
    the channel's name: the layer itself lets it go."""
    import redis.asyncio

    layer = RedisPubSubChannelLayer(hosts=[redis_url])
    observer = redis.asyncio.Redis.from_url(redis_url)
    try:
        loop_layer = layer._get_layer()
        first = await layer.new_channel()
        shard = loop_layer._get_shard(first)
        async with shard._lock:  # other sockets hold the shard connection
            opening = asyncio.ensure_future(layer.new_channel())
            await asyncio.sleep(0.05)
            opening.cancel()
            await asyncio.gather(opening, return_exceptions=True)
        await asyncio.sleep(0.1)
        assert list(loop_layer.channels) == [first]
        assert await observer.pubsub_channels() == [first.encode()]
    finally:
        await observer.aclose()
        await layer.flush()
