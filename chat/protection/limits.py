"""Limits shared by every path and every process: counters in Django's cache.

With REDIS_URL the cache is Redis, so every process counts together; without it, local
memory (one process). Rates are "count/seconds" in fixed windows (a client can get up to
twice a rate across a window boundary; the point is a bound, not a precise pace). Open
sockets are counted up on connect and down on disconnect; a process that dies without
disconnecting leaves its count until the key expires (SOCKET_COUNT_TTL after the last
connect).

Who the client is: see `client_ip`. If the cache fails, limits let everything through
(and say so in the log) rather than stopping the chat.
"""

import hashlib
import ipaddress
import logging
import time
from dataclasses import dataclass
from typing import Any

import redis.asyncio
from django.conf import settings
from django.core.cache import BaseCache, caches
from django.core.cache.backends.redis import RedisCache
from django.core.exceptions import ValidationError
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpRequest

from chat.realtime.loops import PerLoop

logger = logging.getLogger(__name__)

SOCKET_COUNT_TTL = 3600
# Connections an event loop's socket counters may hold (a storm's handshakes queue for them, each
# waiting at most SOCKET_COUNTER_WAIT seconds, rather than each opening one).
SOCKET_COUNTER_CONNECTIONS = 4
SOCKET_COUNTER_WAIT = 10.0
POSTING_TOO_FAST = "You are posting too fast. Wait a minute, then send again."
SEARCHING_TOO_FAST = "You are searching too fast. Wait a minute, then search again."


_counters: BaseCache | None = None


def counters() -> BaseCache:
    """The cache holding the counters: one object for the whole process. Django's `cache` is one per
    async context, i.e. with Redis one client, and so one Redis connection, per open socket (1,000
    sockets held 1,000 connections, and each handshake opened one)."""
    global _counters
    if _counters is None:
        _counters = caches.create_connection("default")
    return _counters


@receiver(setting_changed)
def _caches_changed(*, setting: str, **kwargs: Any) -> None:
    global _counters
    if setting == "CACHES":
        _counters = None
        _async_clients.clear()


class RateLimited(ValidationError):
    """Over a limit: shown to the user like any validation error (and answered 429 over HTTP)."""


@dataclass(frozen=True)
class Rate:
    count: int
    seconds: int

    @classmethod
    def parse(cls, value: str) -> "Rate":
        count, _, seconds = value.partition("/")
        return cls(int(count), int(seconds or 60))


def rate(name: str) -> Rate:
    """A configured rate (settings.CHAT_LIMITS, overridable per variable: see project/settings.py)."""
    return Rate.parse(settings.CHAT_LIMITS[name])


def cache_key(name: str, *parts: Any) -> str:
    # Hashed: user input (usernames, addresses) never shapes a cache key.
    digest = hashlib.sha256("\0".join(str(part) for part in parts).encode()).hexdigest()[:32]
    return f"limit:{name}:{digest}"


def window_key(name: str, limit: Rate, *parts: Any) -> str:
    return f"{cache_key(name, *parts)}:{int(time.time() // limit.seconds)}"


def hit(name: str, *parts: Any) -> bool:
    """Count one event; True while the count is within the rate."""
    limit = rate(name)
    key = window_key(name, limit, *parts)
    try:
        counters().add(key, 0, timeout=limit.seconds + 1)
        try:
            count = counters().incr(key)
        except ValueError:  # expired between add and incr
            counters().set(key, 1, timeout=limit.seconds + 1)
            count = 1
    except Exception as exc:
        logger.warning("the cache failed, limit %s not applied: %r", name, exc)
        return True
    return count <= limit.count


def reached(name: str, *parts: Any) -> bool:
    """Whether the count of this window already reached the rate (counts nothing)."""
    limit = rate(name)
    try:
        return (counters().get(window_key(name, limit, *parts)) or 0) >= limit.count
    except Exception as exc:
        logger.warning("the cache failed, limit %s not applied: %r", name, exc)
        return False


def post_allowed(*, user: Any, ip: str | None) -> None:
    """Posts per user and per client address, over the socket and the form together."""
    allowed = hit("posts_per_user", user.pk)
    if ip:
        allowed = hit("posts_per_ip", ip) and allowed
    if not allowed:
        raise RateLimited(POSTING_TOO_FAST)


def search_allowed(*, user: Any, ip: str | None) -> None:
    """Searches per signed-in user and per client address (each letter typed may be one, debounced)."""
    allowed = hit("searches_per_user", user.pk) if getattr(user, "is_authenticated", False) else True
    if ip:
        allowed = hit("searches_per_ip", ip) and allowed
    if not allowed:
        raise RateLimited(SEARCHING_TOO_FAST)


async def socket_open(*, user: Any, ip: str) -> bool:
    """Count an opening socket for its user and address; False (and nothing counted) beyond the caps.

    On the event loop, with no thread: the local-memory cache answers at once, Redis through an asyncio
    client. (Handing each handshake to a thread cost a storm's process its thread pool's stacks and
    malloc arenas, and the GIL hand-offs.)"""
    names = [
        (name, cache_key(name, part))
        for name, part in (("sockets_per_ip", ip), ("sockets_per_user", getattr(user, "pk", None)))
        if part is not None
    ]
    try:
        counts = await _count_up([key for _, key in names])
    except Exception as exc:
        logger.warning("the cache failed, socket caps not applied: %r", exc)
        return True
    if any(count > int(settings.CHAT_LIMITS[name]) for (name, _), count in zip(names, counts, strict=True)):
        await socket_keys_release([key for _, key in names])
        return False
    return True


async def socket_closed(*, user: Any, ip: str) -> None:
    keys = [cache_key("sockets_per_ip", ip)]
    if getattr(user, "pk", None) is not None:
        keys.append(cache_key("sockets_per_user", user.pk))
    await socket_keys_release(keys)


async def _count_up(keys: list[str]) -> list[int]:
    """Add one to each socket counter (created at 0 if missing, its expiry pushed forward); the new counts.
    With Redis, all of it in one round trip: a reconnect storm's every handshake does this."""
    cache = counters()
    client = _async_redis(cache)
    if client is None:
        counts = []
        for key in keys:
            cache.add(key, 0, timeout=SOCKET_COUNT_TTL)
            counts.append(cache.incr(key))
            cache.touch(key, SOCKET_COUNT_TTL)
        return counts
    async with client.pipeline(transaction=False) as pipe:
        for key in keys:
            stored = cache.make_and_validate_key(key)
            pipe.set(stored, 0, nx=True, ex=SOCKET_COUNT_TTL)  # what cache.add does
            pipe.incr(stored)
            pipe.expire(stored, SOCKET_COUNT_TTL)  # what cache.touch does
        return (await pipe.execute())[1::3]


async def socket_keys_release(keys: list[str]) -> None:
    cache = counters()
    try:
        client = _async_redis(cache)
        if client is not None:
            stored = [cache.make_and_validate_key(key) for key in keys]
            async with client.pipeline(transaction=False) as pipe:
                for key in stored:
                    pipe.decr(key)
                counts = await pipe.execute()
            for key, count in zip(stored, counts, strict=True):
                if count < 0:  # the key expired and came back while sockets were open
                    await client.set(key, 0, ex=SOCKET_COUNT_TTL)
            return
    except Exception as exc:
        logger.warning("the cache failed, socket count not released: %r", exc)
        return
    for key in keys:
        try:
            if cache.decr(key) < 0:  # the key expired and came back while sockets were open
                cache.set(key, 0, timeout=SOCKET_COUNT_TTL)
        except ValueError:  # expired: nothing to count down
            pass
        except Exception as exc:
            logger.warning("the cache failed, socket count not released: %r", exc)


def _new_async_client() -> redis.asyncio.Redis:
    cache = counters()
    # RedisCache's location and OPTIONS (its timeouts): Django's cache API exposes neither (test_limits.py pins them).
    options = cache._options
    pool = redis.asyncio.BlockingConnectionPool.from_url(
        cache._servers[0],
        max_connections=SOCKET_COUNTER_CONNECTIONS,
        timeout=SOCKET_COUNTER_WAIT,
        socket_timeout=options.get("socket_timeout", 2),
        socket_connect_timeout=options.get("socket_connect_timeout", 2),
    )
    return redis.asyncio.Redis(connection_pool=pool)


_async_clients = PerLoop(_new_async_client)  # its connections belong to the loop


def _async_redis(cache: BaseCache) -> redis.asyncio.Redis | None:
    """An asyncio client of the Redis server behind Django's Redis cache (None for any other backend), for
    pipelines: Django's cache API has none, and stores integers as plain Redis integers, so INCR and DECR
    apply to its keys."""
    return _async_clients.get() if isinstance(cache, RedisCache) else None


def client_ip(*, peer: str | None, forwarded_for: str | None) -> str:
    """The client's address, as far as it can be trusted.

    A PaaS router appends the address it received the connection from to X-Forwarded-For;
    anything before that entry was sent by the client and can be forged. With
    CHAT_PROXY_HOPS = n (1 behind one router, the production default), the n-th entry from
    the end is trusted; with 0 (local runs, or no router), the TCP peer. An IPv6 client is
    counted by its /64, which one subscriber usually holds whole.
    """
    hops = settings.CHAT_PROXY_HOPS
    entries = [entry.strip() for entry in (forwarded_for or "").split(",") if entry.strip()]
    address = entries[-hops] if hops and len(entries) >= hops else (peer or "")
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address or "unknown"
    if parsed.version == 6:
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


def request_ip(request: HttpRequest) -> str:
    return client_ip(peer=request.META.get("REMOTE_ADDR"), forwarded_for=request.META.get("HTTP_X_FORWARDED_FOR"))


def scope_ip(scope: dict[str, Any]) -> str:
    forwarded = [value.decode("latin-1") for name, value in scope.get("headers", []) if name == b"x-forwarded-for"]
    peer = (scope.get("client") or [None])[0]
    return client_ip(peer=peer, forwarded_for=",".join(forwarded))
