"""Who has a room open, where it is stored: the presence store and the reads pages make of it.

A room's members are its sockets, each `"<channel> <username>"` (an empty username for an anonymous
reader). Without REDIS_URL they live in this process's memory, which is right for one process: nothing
expires, a socket is there until it leaves. With REDIS_URL, in Redis, where a process may die without
saying so (kill -9):
- a set per room (`chat:presence:<room>`, a sorted set whose scores are unused), each member prefixed
  with the id of the process that wrote it (`"<process> <channel> <username>"`);
- one heartbeat per process in `chat:presence:processes`, scored by the Unix time it expires.
A member counts while its process's heartbeat has not expired: every read asks for the live processes
in the same round trip and drops (and deletes) the members of the others. So a live process keeps its
members with one write every REFRESH seconds, whatever its number of rooms and sockets, instead of
rewriting each room. What a process writes, and when, is chat/realtime/presence.py.
"""

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

import redis
import redis.asyncio
from django.conf import settings

from chat.realtime.loops import PerLoop

logger = logging.getLogger(__name__)

TTL = 35.0  # seconds a process's heartbeat lasts (it beats every presence.REFRESH)
# A process's heartbeat stays listed, expired, this long, so every other process (beating every REFRESH)
# sees that it died and reads its rooms again.
DEAD_LISTED = 120.0
NAMES_SHOWN = 30  # a list of 1,000 names would make every frame huge: the rest are counted
KEY = "chat:presence:{}"
PROCESSES = "chat:presence:processes"
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
    """One process: room → its members. A lock, as page views read it from other threads."""

    def __init__(self) -> None:
        self.rooms: dict[str, set[str]] = {}
        self.lock = threading.Lock()

    async def add(self, room: str, members: Iterable[str]) -> None:
        with self.lock:
            self.rooms.setdefault(room, set()).update(members)

    async def remove(self, room: str, *members: str) -> None:
        with self.lock:
            found = self.rooms.get(room)
            if found is not None:
                found.difference_update(members)
                if not found:
                    del self.rooms[room]

    async def read(self, rooms: list[str]) -> dict[str, list[str]]:
        return self.read_sync(rooms)

    def read_sync(self, rooms: list[str]) -> dict[str, list[str]]:
        with self.lock:
            return {room: list(self.rooms.get(room, ())) for room in rooms}


class RedisPresence:
    """Every process: a set per room of members prefixed with their process, and the processes' heartbeats."""

    def __init__(self, url: str) -> None:
        timeouts = {"socket_timeout": REDIS_TIMEOUT, "socket_connect_timeout": REDIS_TIMEOUT}
        # redis.asyncio connections belong to the loop that made them.
        self.clients = PerLoop(lambda: redis.asyncio.Redis.from_url(url, **timeouts))
        self.sync_client = redis.Redis.from_url(url, **timeouts)
        # This process, in the members it writes and in its heartbeat: a new one when the process forgets
        # what it holds (process.reset()), so what it wrote before expires with the old heartbeat.
        self.process = uuid4().hex

    def client(self) -> redis.asyncio.Redis:
        return self.clients.get()

    async def add(self, room: str, members: Iterable[str], *, process: str | None = None) -> None:
        process = process or self.process
        await self.client().zadd(KEY.format(room), dict.fromkeys((f"{process} {m}" for m in members), 0))

    async def remove(self, room: str, *members: str, process: str | None = None) -> None:
        process = process or self.process
        await self.client().zrem(KEY.format(room), *(f"{process} {m}" for m in members))

    async def beat(self, now: float, *, ttl: float, process: str | None = None) -> tuple[bool, set[str]]:
        """Say this process lives until now + ttl; whether its heartbeat was missing (Redis lost it, or it
        never beat), and the processes whose heartbeat has expired (listed for DEAD_LISTED seconds)."""
        async with self.client().pipeline(transaction=False) as pipe:
            pipe.zadd(PROCESSES, {process or self.process: now + ttl})
            pipe.zrangebyscore(PROCESSES, now - DEAD_LISTED, now)
            pipe.zremrangebyscore(PROCESSES, "-inf", now - DEAD_LISTED)
            added, dead, _ = await pipe.execute()
        return bool(added), {name.decode() for name in dead}

    async def read(self, rooms: list[str]) -> dict[str, list[str]]:
        async with self.client().pipeline(transaction=False) as pipe:
            self._queue_reads(pipe, rooms)
            found, gone = self._results(rooms, await pipe.execute())
        if gone:
            async with self.client().pipeline(transaction=False) as pipe:
                for room, members in gone.items():
                    pipe.zrem(KEY.format(room), *members)
                await pipe.execute()
        return found

    def read_sync(self, rooms: list[str]) -> dict[str, list[str]]:
        with self.sync_client.pipeline(transaction=False) as pipe:
            self._queue_reads(pipe, rooms)
            found, _ = self._results(rooms, pipe.execute())
        return found  # a dead process's members are deleted by the processes' own reads

    @staticmethod
    def _queue_reads(pipe, rooms: list[str]) -> None:
        pipe.zrangebyscore(PROCESSES, time.time(), "+inf")
        for room in rooms:
            pipe.zrange(KEY.format(room), 0, -1)

    @staticmethod
    def _results(rooms: list[str], results: list) -> tuple[dict[str, list[str]], dict[str, list[bytes]]]:
        """Each room's members of live processes (without the process), and the others' stored names."""
        alive = {name.decode() for name in results[0]}
        found: dict[str, list[str]] = {}
        gone: dict[str, list[bytes]] = {}
        for room, members in zip(rooms, results[1:], strict=True):
            found[room] = []
            for stored in members:
                process, _, member = stored.decode().partition(" ")
                if process in alive:
                    found[room].append(member)
                else:
                    gone.setdefault(room, []).append(stored)
        return found, gone


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
        members = backend().read_sync(room_names)
    except redis.RedisError as exc:
        logger.warning("reading presence failed: %r", exc)
        return {}
    return {room: View.of(found) for room, found in members.items()}


async def views(room_names: list[str]) -> dict[str, View]:
    """The same, from the event loop (the lobby's tick)."""
    if not enabled() or not room_names:
        return {}
    try:
        members = await backend().read(room_names)
    except redis.RedisError as exc:
        logger.warning("reading presence failed: %r", exc)
        return {}
    return {room: View.of(found) for room, found in members.items()}
