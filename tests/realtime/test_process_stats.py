"""The benches' view of a process's registries (chat/realtime/process_stats.py): off by default, counts only."""

import asyncio

from django.test import Client

from chat.realtime import process_stats
from tests.support.in_process import open_socket


def test_the_stats_are_not_served_unless_the_bench_turns_them_on(db, settings):
    settings.CHAT_BENCH_STATS = False
    assert Client().get("/internal/process-stats/").status_code == 404


def test_the_stats_are_counts_of_this_process_when_turned_on(db, settings):
    settings.CHAT_BENCH_STATS = True
    answer = Client().get("/internal/process-stats/")
    assert answer.status_code == 200
    stats = answer.json()
    assert stats["sockets"] == {"room": 0, "rooms": 0, "users": 0, "lobby": 0}
    assert stats["counters"] == {"keys": 0, "open": 0}


async def test_an_open_socket_is_counted_and_its_close_brings_every_count_back_to_zero(connect, alice, room):
    page = await connect(room.name, alice)
    lobby = await open_socket("/ws/lobby/", alice)
    await asyncio.sleep(0.1)
    held = process_stats.snapshot()
    assert held["sockets"] == {"room": 1, "rooms": 1, "users": 1, "lobby": 1}
    assert held["presence"]["rooms"] == 1
    assert held["session_listeners"] == 2  # one listener, followed by both sockets
    assert held["counters"] == {"keys": 2, "open": 4}  # the user's count and the address's, two sockets each
    assert held["layer"]["members"] >= 1

    await page.disconnect()
    await lobby.disconnect()
    await asyncio.sleep(0.1)
    released = process_stats.snapshot()
    assert released["sockets"] == {"room": 0, "rooms": 0, "users": 0, "lobby": 0}
    assert released["presence"]["rooms"] == 0
    assert released["catch_up"]["seqs"] == 0
    assert released["session_listeners"] == 0
    assert released["counters"]["open"] == 0
    assert released["layer"]["members"] == 0


def test_counters_kept_in_redis_are_left_to_the_bench_to_read_there(db, settings):
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/9"}
    }
    assert process_stats.snapshot()["counters"] is None  # no connection made: the cache is not asked
