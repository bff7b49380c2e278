"""Limits hold across processes: two daphne processes share their counters through Redis."""

import json
import re
from contextlib import ExitStack
from uuid import uuid4

import pytest
from websockets.sync.client import connect

from tests.support.live import cookie_for, unique

pytestmark = pytest.mark.redis


@pytest.fixture(scope="module")
def two_processes(live_server_factory, module_redis_server):
    limits = {
        "CHAT_LIMIT_POSTS_PER_USER": "4/3600",
        "CHAT_LIMIT_SOCKETS_PER_USER": "2",
    }  # hour-long: fewer window edges mid-test
    first = live_server_factory(REDIS_URL=module_redis_server.url, **limits)
    second = live_server_factory(REDIS_URL=module_redis_server.url, DATABASE_URL=first.env["DATABASE_URL"], **limits)
    return first, second


def socket(server, room: str, cookie: str):
    return connect(
        f"ws://127.0.0.1:{server.port}/ws/chat/{room}/",
        origin=server.url,
        additional_headers={"Cookie": cookie},
        proxy=None,
        open_timeout=10,
    )


def replies(ws, count: int) -> list[str]:
    return [ws.recv(timeout=5) for _ in range(count)]


def test_posts_per_user_and_sockets_per_user_hold_across_two_processes(two_processes):
    first, second = two_processes
    name, room = unique("spread"), unique("limits")
    first.create_users(name)
    cookie, csrf = cookie_for(first, name)

    with socket(first, room, cookie) as one, socket(second, room, cookie) as two:
        for ws in (one, two):
            ws.send(json.dumps({"after": "0"}))  # the page's sync: from now on it gets broadcasts
        frames = []
        for i in range(3):
            for ws in (one, two):
                frame = {"message": f"post {i}", "token": str(uuid4()), "csrfmiddlewaretoken": csrf}
                ws.send(json.dumps(frame))
                frames.extend(replies(ws, 1))
        for ws in (one, two):  # the rest of the stored posts' frames
            while True:
                try:
                    frames.append(ws.recv(timeout=1))
                except TimeoutError:
                    break

        assert sum("You are posting too fast" in frame for frame in frames) == 2
        stored = {match for frame in frames for match in re.findall(r'id="message-(\d+)"', frame)}
        assert len(stored) == 4

        # A third socket of the same user, on either process, is over the cap of 2.
        with socket(second, room, cookie) as third:
            assert "Too many open chat pages" in third.recv(timeout=5)
            with pytest.raises(Exception, match="4429"):
                third.recv(timeout=5)


def test_open_sockets_share_the_processs_redis_connections(two_processes, module_redis_server):
    """The socket counters live in Redis, but not one Redis connection per socket: Django's `cache` is one
    object per async context, so each socket used to open and hold a connection of its own."""
    import redis

    first, _ = two_processes
    room = unique("many")
    with ExitStack() as stack:
        pages = [
            stack.enter_context(
                connect(f"ws://127.0.0.1:{first.port}/ws/chat/{room}/", origin=first.url, proxy=None, open_timeout=10)
            )
            for _ in range(40)
        ]
        for page in pages:
            assert "connection-status" in page.recv(timeout=5)  # counted, accepted
        client = redis.Redis.from_url(module_redis_server.url)
        held = len(client.client_list()) - 1  # this one aside
        client.close()
        assert held < 20, f"{held} Redis connections for 40 sockets over two processes"


async def test_socket_counts_in_redis_go_up_and_down_in_one_round_trip_each(redis_server, settings):
    from types import SimpleNamespace

    import redis

    from chat.protection import limits

    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_server.url}
    }
    settings.CHAT_LIMITS = {**settings.CHAT_LIMITS, "sockets_per_user": "2", "sockets_per_ip": "100"}
    user, ip = SimpleNamespace(pk=uuid4().hex), f"10.9.{uuid4().int % 250}.1"

    assert await limits.socket_open(user=user, ip=ip)
    assert await limits.socket_open(user=user, ip=ip)
    assert not await limits.socket_open(user=user, ip=ip)  # over the user's cap: counted nowhere
    await limits.socket_closed(user=user, ip=ip)
    assert await limits.socket_open(user=user, ip=ip)

    client = redis.Redis.from_url(redis_server.url)
    stored = {
        name: client.get(limits.counters().make_and_validate_key(limits.cache_key(name, part)))
        for name, part in (("sockets_per_user", user.pk), ("sockets_per_ip", ip))
    }
    assert 0 < client.ttl(limits.counters().make_and_validate_key(limits.cache_key("sockets_per_ip", ip))) <= 3600
    client.close()
    assert stored == {"sockets_per_user": b"2", "sockets_per_ip": b"2"}
