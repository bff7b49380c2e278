"""Who has a room open, where it is stored: the presence store and the reads pages make of it.

Without REDIS_URL, this process's memory, which is right for one process. With REDIS_URL, Redis:
a sorted set per room (`chat:presence:<room>`) with one member per socket, `"<channel> <username>"`
(an empty username for an anonymous reader), scored by its expiry as a Unix time; every read drops
the expired members. What a process writes there, and when, is chat/realtime/presence.py.
"""

import logging
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio
from django.conf import settings

from chat.realtime.loops import PerLoop

logger = logging.getLogger(__name__)

TTL = 45.0  # seconds a member stays without being refreshed
NAMES_SHOWN = 30  # a list of 1,000 names would make every frame huge: the rest are counted
KEY = "chat:presence:{}"
REDIS_TIMEOUT = 3.0


def enabled() -> bool:
    return settings.CHAT_PRESENCE


@dataclass(frozen=True)
class View:
    """What a room's presence list shows."""

    names: tuple[str, ...] = ()
    anonymous: int = 0

    @classmethod
    def of(cls, members: Iterable[str]) -> "View":
        names: set[str] = set()
        anonymous = 0
        for member in members:
            username = member.partition(" ")[2]
            if username:
                names.add(username)
            else:
                anonymous += 1
        return cls(names=tuple(sorted(names, key=str.casefold)), anonymous=anonymous)

    @property
    def count(self) -> int:
        """People in the room: each signed-in user once, each anonymous tab once."""
        return len(self.names) + self.anonymous

    def with_reader(self, user: Any) -> "View":
        """The list as a page shows it to its own reader, who is here too: their socket, which the list
        counts, opens only after the page loads (and never without JavaScript)."""
        if user is None or not user.is_authenticated:
            return View(names=self.names, anonymous=self.anonymous + 1)
        name = user.get_username()
        if name in self.names:
            return self
        return View(names=tuple(sorted((*self.names, name), key=str.casefold)), anonymous=self.anonymous)

    def context(self) -> dict[str, Any]:
        return {
            "names": self.names[:NAMES_SHOWN],
            "more": max(len(self.names) - NAMES_SHOWN, 0),
            "anonymous": self.anonymous,
            "count": self.count,
        }


class MemoryPresence:
    """One process: room → member → expiry. A lock, as page views read it from other threads."""

    def __init__(self) -> None:
        self.rooms: dict[str, dict[str, float]] = {}
        self.lock = threading.Lock()

    async def add(self, room: str, members: Mapping[str, float]) -> None:
        with self.lock:
            self.rooms.setdefault(room, {}).update(members)

    async def remove(self, room: str, *members: str) -> None:
        with self.lock:
            for member in members:
                self.rooms.get(room, {}).pop(member, None)

    async def read(self, rooms: list[str], now: float) -> dict[str, list[str]]:
        return self.read_sync(rooms, now)

    def read_sync(self, rooms: list[str], now: float) -> dict[str, list[str]]:
        read = {}
        with self.lock:
            for room in rooms:
                members = self.rooms.get(room, {})
                for member in [m for m, expiry in members.items() if expiry <= now]:
                    del members[member]
                if not members:
                    self.rooms.pop(room, None)
                read[room] = list(members)
        return read


class RedisPresence:
    """Every process: a sorted set per room, member → expiry; expired members are dropped by each read."""

    def __init__(self, url: str) -> None:
        timeouts = {"socket_timeout": REDIS_TIMEOUT, "socket_connect_timeout": REDIS_TIMEOUT}
        # redis.asyncio connections belong to the loop that made them.
        self.clients = PerLoop(lambda: redis.asyncio.Redis.from_url(url, **timeouts))
        self.sync_client = redis.Redis.from_url(url, **timeouts)

    def client(self) -> redis.asyncio.Redis:
        return self.clients.get()

    async def add(self, room: str, members: Mapping[str, float]) -> None:
        key = KEY.format(room)
        async with self.client().pipeline(transaction=False) as pipe:
            pipe.zadd(key, dict(members))
            # A room nobody refreshes any more goes away by itself.
            pipe.expire(key, int(TTL) + 10)
            await pipe.execute()

    async def remove(self, room: str, *members: str) -> None:
        await self.client().zrem(KEY.format(room), *members)

    async def read(self, rooms: list[str], now: float) -> dict[str, list[str]]:
        async with self.client().pipeline(transaction=False) as pipe:
            self._queue_reads(pipe, rooms, now)
            return self._results(rooms, await pipe.execute())

    def read_sync(self, rooms: list[str], now: float) -> dict[str, list[str]]:
        with self.sync_client.pipeline(transaction=False) as pipe:
            self._queue_reads(pipe, rooms, now)
            return self._results(rooms, pipe.execute())

    @staticmethod
    def _queue_reads(pipe, rooms: list[str], now: float) -> None:
        for room in rooms:
            pipe.zremrangebyscore(KEY.format(room), "-inf", now)
            pipe.zrange(KEY.format(room), 0, -1)

    @staticmethod
    def _results(rooms: list[str], results: list) -> dict[str, list[str]]:
        return {room: [m.decode() for m in results[2 * i + 1]] for i, room in enumerate(rooms)}


class Backends:
    """One store per URL for the process (settings change between tests)."""

    def __init__(self) -> None:
        self.made: dict[str, MemoryPresence | RedisPresence] = {}

    def get(self) -> MemoryPresence | RedisPresence:
        url = settings.REDIS_URL.split(",")[0].strip()
        if url not in self.made:
            self.made[url] = RedisPresence(url) if url else MemoryPresence()
        return self.made[url]

    def reset(self) -> None:
        self.made.clear()


backends = Backends()


def backend() -> MemoryPresence | RedisPresence:
    """Redis with REDIS_URL (the first server, if several shard the channel layer), else this process's memory."""
    return backends.get()


def shared() -> bool:
    """Whether other processes read the same presence (so joins and leaves are announced to them)."""
    return isinstance(backend(), RedisPresence)


# Reads for pages (sync: views run in threads).


def view_now(room_name: str) -> View | None:
    """The room's list as of now, for the page (None when presence is off or its store is unreachable)."""
    return counts_now([room_name]).get(room_name)


def counts_now(room_names: list[str]) -> dict[str, View]:
    if not enabled() or not room_names:
        return {}
    try:
        members = backend().read_sync(room_names, time.time())
    except redis.RedisError as exc:
        logger.warning("reading presence failed: %r", exc)
        return {}
    return {room: View.of(found) for room, found in members.items()}


async def views(room_names: list[str]) -> dict[str, View]:
    """The same, from the event loop (the lobby's tick)."""
    if not enabled() or not room_names:
        return {}
    try:
        members = await backend().read(room_names, time.time())
    except redis.RedisError as exc:
        logger.warning("reading presence failed: %r", exc)
        return {}
    return {room: View.of(found) for room, found in members.items()}
