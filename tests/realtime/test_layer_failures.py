"""Redis failing under a live room: messages are still saved and shown, nothing crashes, peers catch up.

Each test starts its own redis-server on a free port, so it can stop, restart
and pause it without touching the machine's Redis.
"""

import asyncio
import time

import pytest
from channels.db import database_sync_to_async

from chat.models import Message
from chat.realtime import layer_watch
from tests.support.in_process import frames_until, message_frame

# Every test runs the app's channel layer on a redis-server of its own (`redis_server`).
pytestmark = [pytest.mark.redis, pytest.mark.usefixtures("redis_layer")]


messages_with_body = database_sync_to_async(lambda body: Message.objects.filter(body=body).count())


async def test_live_delivery_works_through_redis(redis_server, connect, alice, bob):
    sender = await connect("general", alice)
    reader = await connect("general", bob)

    await sender.send_to(text_data=message_frame("via redis"))

    assert any("via redis" in frame for frame in await frames_until(reader, "via redis", 3))


async def test_redis_down_while_posting_saves_shows_the_sender_and_peers_catch_up(redis_server, connect, alice, bob):
    sender = await connect("general", alice)
    reader = await connect("general", bob)

    redis_server.stop()
    await sender.send_to(text_data=message_frame("while redis is down"))

    own = await frames_until(sender, "while redis is down", 6)
    assert any("while redis is down" in frame and "beforeend:#messages" in frame for frame in own)
    assert await messages_with_body("while redis is down") == 1
    # The socket is still open and usable: a bad frame still gets its error.
    await sender.send_to(text_data="not json")
    assert "could not be read" in (await frames_until(sender, "could not be read", 3))[-1]

    redis_server.start()
    caught_up = await frames_until(reader, "while redis is down", layer_watch.PROBE_INTERVAL * 2 + 8)
    assert 'hx-swap-oob="beforeend:#messages"' in caught_up[-1]
    assert "while redis is down" in caught_up[-1]

    await sender.send_to(text_data=message_frame("live again"))
    assert "live again" in (await frames_until(reader, "live again", 5))[-1]


async def test_a_hung_redis_costs_the_sender_a_bounded_wait(redis_server, connect, alice):
    sender = await connect("general", alice)

    redis_server.pause()
    started = time.monotonic()
    await sender.send_to(text_data=message_frame("redis is hanging"))
    frames = await frames_until(sender, "redis is hanging", 10)
    waited = time.monotonic() - started
    redis_server.resume()

    assert waited < 6
    assert any("redis is hanging" in frame for frame in frames)
    assert await messages_with_body("redis is hanging") == 1
    assert not any(isinstance(frame, dict) for frame in frames)
    await asyncio.sleep(0)


async def test_sockets_whose_join_failed_are_joined_once_the_layer_answers(
    redis_server, monkeypatch, connect, alice, bob
):
    from channels_redis.pubsub import RedisPubSubLoopLayer

    group_add = RedisPubSubLoopLayer.group_add

    async def refused(self, group, channel):
        raise ConnectionError("Too many connections")

    monkeypatch.setattr(RedisPubSubLoopLayer, "group_add", refused)
    readers = [await connect("burst", bob) for _ in range(3)]  # accepted, read-only for now
    monkeypatch.setattr(RedisPubSubLoopLayer, "group_add", group_add)
    sender = await connect("burst", alice)

    await asyncio.sleep(layer_watch.PROBE_INTERVAL + 1)  # the watcher's next probe, then its resync
    await sender.send_to(text_data=message_frame("everyone hears this"))

    for reader in readers:
        assert "everyone hears this" in "".join(await frames_until(reader, "everyone hears this", 5))


async def test_a_quiet_process_probes_the_layer_every_half_minute_and_a_busy_one_every_tick(monkeypatch):
    class Layer:
        async def new_channel(self):
            return "probe!1"

    probes = []

    async def probe(layer, channel):
        probes.append(channel)
        return True

    monkeypatch.setattr(layer_watch, "get_channel_layer", Layer)
    monkeypatch.setattr(layer_watch, "probe", probe)
    clock = [1000.0]
    monkeypatch.setattr(layer_watch, "clock", lambda: clock[0])
    watch = layer_watch.LayerWatch()

    def ticks(seconds: float) -> list:
        async def run():
            for _ in range(int(seconds / layer_watch.PROBE_INTERVAL)):
                clock[0] += layer_watch.PROBE_INTERVAL
                await watch.tick()

        probes.clear()
        return run()

    await ticks(60)  # nothing sent or delivered: a probe every 30 s
    assert len(probes) == 60 / layer_watch.QUIET_PROBE_INTERVAL
    watch.busy()  # a post, a typing marker or a delivery
    await ticks(layer_watch.QUIET_AFTER)
    assert len(probes) == layer_watch.QUIET_AFTER / layer_watch.PROBE_INTERVAL
    watch.failures = 1  # a failed probe: probed again at once
    clock[0] += 100
    await ticks(layer_watch.PROBE_INTERVAL)
    assert len(probes) == 1
