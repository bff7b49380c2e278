"""Who has a room open: the signed-in users (each once, however many tabs) and a count of anonymous readers.

Where it lives (a backend chosen by settings): without REDIS_URL, this process's memory, which is
right for one process. With REDIS_URL, Redis: a sorted set per room (`chat:presence:<room>`) with
one member per socket, `"<channel> <username>"` (an empty username for an anonymous reader), scored
by its expiry as a Unix time.

How it expires: each process re-adds its own sockets' members every REFRESH (20) s with an expiry
TTL (45) s ahead; joins and clean disconnects are written on the next TICK, all of a room's in one
write. A process killed with kill -9
stops refreshing: its members pass their expiry and every read drops them (ZREMRANGEBYSCORE). Every
process re-reads each room it has a socket in at least every RECHECK (5) s, so a dead process's
users leave every list within TTL + RECHECK (50 s), without a reload.

How it reaches pages without amplification: a join or a leave marks the room dirty in this process
and, with Redis, is announced to the room's other processes once per tick (a `presence.changed`
group event, which only marks the room dirty there). Every TICK each process re-reads its dirty
rooms, renders a changed list once per room, and sends it to each of its sockets showing another,
at most one presence frame per socket per second: 1,000 joins cost a socket a frame a second, not
1,000 frames. In a big room the gap grows with its sockets here (ROOM_FRAMES_PER_SECOND), so a
reconnect storm of 5,000 sockets into one room costs a bounded number of frames a second, not a
frame per socket per second while every join changes the count.

This module also keeps the process's registry of room sockets (`here`), which typing and unread use.
"""

import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from uuid import uuid4

import redis
import redis.asyncio
from channels.layers import get_channel_layer
from django.conf import settings
from django.template.loader import render_to_string

from chat.models import room_group_name
from chat.realtime.loops import PerLoop
from chat.realtime.scheduler import Periodic

logger = logging.getLogger(__name__)

TICK = 0.5
MIN_FRAME_GAP = 1.0  # seconds between two presence frames to one socket
ROOM_FRAMES_PER_SECOND = 500  # beyond this many sockets in a room here, its frames are spaced further
REFRESH = 20.0
TTL = 45.0
RECHECK = 5.0
NAMES_SHOWN = 30  # a list of 1,000 names would make every frame huge: the rest are counted
KEY = "chat:presence:{}"
REDIS_TIMEOUT = 3.0
# Tells this process's own announcements apart from other processes'.
ORIGIN = uuid4().hex


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


_backends: dict[str, MemoryPresence | RedisPresence] = {}


def backend() -> MemoryPresence | RedisPresence:
    """Redis with REDIS_URL (the first server, if several shard the channel layer), else this process's memory."""
    url = settings.REDIS_URL.split(",")[0].strip()
    if url not in _backends:
        _backends[url] = RedisPresence(url) if url else MemoryPresence()
    return _backends[url]


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


# This process's room sockets.


class Socket(Protocol):
    channel_name: str
    room_name: str
    scope: dict[str, Any]

    async def send(self, text_data: str | None = None, bytes_data: bytes | None = None, close: bool = False): ...


@dataclass(eq=False, slots=True)  # one per socket: no __dict__
class Here:
    """One room socket of this process."""

    socket: Socket
    room: str
    member: str
    username: str  # "" for an anonymous reader
    user_id: int | None
    shown: View | None = None  # the list this page shows, as far as this process sent it
    sent_at: float = float("-inf")
    typing: tuple[str, ...] = ()  # the typists this page shows (chat/realtime/typing_notices.py)


@dataclass(eq=False)
class RoomHere:
    """A room with at least one socket in this process."""

    channels: set[str] = field(default_factory=set)
    view: View | None = None  # as last read from the backend
    frame: str = ""  # that view, rendered once for every socket
    dirty: bool = True
    read_at: float = float("-inf")


here: dict[str, Here] = {}  # channel name → socket
rooms: dict[str, RoomHere] = {}
_announce: set[str] = set()
_to_add: dict[str, dict[str, float]] = {}  # joins and leaves not yet written to the backend
_to_remove: dict[str, set[str]] = {}
_refreshed_at = float("-inf")
# Other concerns that follow this process's room sockets run on the same tick, and hear of each
# socket leaving (chat/realtime/unread.py: its last position).
tick_hooks: list[Callable[[], Awaitable[None]]] = []
leave_hooks: list[Callable[[Here], None]] = []
pending_hooks: list[Callable[[], bool]] = []  # work left after the last socket (keeps the tick going)


def sockets_in(room_name: str) -> list[Here]:
    room = rooms.get(room_name)
    return [here[channel] for channel in room.channels if channel in here] if room else []


def sockets_of_user(user_id: str | None) -> list[Here]:
    """The room sockets of a signed-in user (by the str of their pk) in this process."""
    return [entry for entry in here.values() if user_id is not None and str(entry.user_id) == user_id]


async def join(socket: Socket) -> None:
    """A room socket opened: register it, store its member, and have the room's lists updated."""
    user = socket.scope.get("user")
    signed_in = user is not None and user.is_authenticated
    username = user.get_username() if signed_in else ""
    entry = Here(
        socket=socket,
        room=socket.room_name,
        member=f"{socket.channel_name} {username}",
        username=username,
        user_id=user.pk if signed_in else None,
    )
    here[socket.channel_name] = entry
    room = rooms.setdefault(entry.room, RoomHere())
    room.channels.add(socket.channel_name)
    _loop.ensure_running()
    if not enabled():
        return
    room.dirty = True
    _announce.add(entry.room)
    # Written by the next tick, with every other join and leave of the room since the last one: 1,000
    # joins at once are one write, not 1,000 round trips racing for Redis connections.
    _to_add.setdefault(entry.room, {})[entry.member] = time.time() + TTL


async def leave(socket: Socket) -> None:
    """A room socket closed: its member goes at once, and the room's lists are updated within a tick or two."""
    entry = here.pop(socket.channel_name, None)
    if entry is None:
        return
    for hook in leave_hooks:
        hook(entry)
    room = rooms.get(entry.room)
    if room is not None:
        room.channels.discard(socket.channel_name)
        room.dirty = True
        if not room.channels:
            del rooms[entry.room]
    if not enabled():
        return
    _announce.add(entry.room)
    if _to_add.get(entry.room, {}).pop(entry.member, None) is None:  # never written: nothing to remove
        _to_remove.setdefault(entry.room, set()).add(entry.member)


def changed(room_name: str, origin: str | None = None) -> None:
    """Another process announced a join or leave in this room: re-read it on the next tick."""
    room = rooms.get(room_name)
    if room is not None and origin != ORIGIN:
        room.dirty = True


class PresenceEvents:
    """The room consumer's handler for the `presence.changed` group event."""

    room_name: str

    async def presence_changed(self, event: dict[str, Any]) -> None:
        changed(self.room_name, event.get("origin"))


def frame(view: View) -> str:
    return render_to_string("chat/oob/_presence.html", {"presence": view.context()})


async def tick() -> None:
    global _refreshed_at
    if not enabled():
        return
    mono, now = time.monotonic(), time.time()
    await write()
    if mono - _refreshed_at >= REFRESH:
        _refreshed_at = mono
        await refresh(now)
    await announce()
    due = [name for name, room in rooms.items() if room.dirty or mono - room.read_at >= RECHECK]
    if due:
        try:
            members = await backend().read(due, now)
        except redis.RedisError as exc:  # the lists stay as they are; the next tick tries again
            logger.warning("reading presence failed: %r", exc)
            members = {}
        for name, found in members.items():
            room = rooms.get(name)
            if room is None:
                continue
            room.dirty, room.read_at = False, mono
            view = View.of(found)
            if view != room.view:
                room.view, room.frame = view, frame(view)
    await deliver(mono)


async def run_hooks() -> None:
    for hook in tick_hooks:
        try:
            await hook()
        except Exception:
            logger.exception("%s failed", hook)


async def tick_all() -> None:
    await tick()
    await run_hooks()


async def write() -> None:
    """Store this tick's joins and leaves (one write per room and kind)."""
    adds, removes = dict(_to_add), dict(_to_remove)
    _to_add.clear()
    _to_remove.clear()
    for name, members in adds.items():
        if members:
            try:
                await backend().add(name, members)
            except redis.RedisError as exc:  # the next refresh adds them
                logger.warning("storing presence in %s failed: %r", name, exc)
    for name, gone in removes.items():
        try:
            await backend().remove(name, *gone)
        except redis.RedisError as exc:  # they expire instead
            logger.warning("removing presence in %s failed: %r", name, exc)


async def refresh(now: float) -> None:
    """Push every local socket's expiry forward (one write per room)."""
    for name, room in list(rooms.items()):
        members = {here[c].member: now + TTL for c in room.channels if c in here}
        if members:
            try:
                await backend().add(name, members)
            except redis.RedisError as exc:
                logger.warning("refreshing presence in %s failed: %r", name, exc)


async def announce() -> None:
    """Tell the other processes which rooms had joins or leaves here (once per room per tick)."""
    if not _announce:
        return
    names = list(_announce)
    _announce.clear()
    if not shared():
        return
    layer = get_channel_layer()
    for name in names:
        try:
            await layer.group_send(room_group_name(name), {"type": "presence.changed", "origin": ORIGIN})
        except Exception as exc:  # they still re-read every RECHECK seconds
            logger.info("announcing presence in %s failed: %r", name, exc)


async def deliver(mono: float) -> None:
    """Each socket whose page shows another list than its room's gets it, at most once a second
    (once every `frame_gap` seconds in a big room)."""
    for room in list(rooms.values()):
        if room.view is None:
            continue
        gap = frame_gap(len(room.channels))
        for channel in list(room.channels):
            entry = here.get(channel)
            if entry is None or entry.shown == room.view or mono - entry.sent_at < gap:
                continue
            entry.shown, entry.sent_at = room.view, mono
            try:
                await entry.socket.send(text_data=room.frame)
            except Exception:  # closing meanwhile: its disconnect unregisters it
                continue


def frame_gap(sockets: int) -> float:
    """Seconds between two presence frames to one socket of a room with this many sockets here."""
    return max(MIN_FRAME_GAP, sockets / ROOM_FRAMES_PER_SECOND)


# Runs while this process has a room socket, or a last leave still to announce or write down.
_loop = Periodic(
    "presence", TICK, tick_all, lambda: bool(here or _announce or _to_remove or any(p() for p in pending_hooks))
)


def reset() -> None:
    """Forget everything this process holds (tests)."""
    global _refreshed_at
    here.clear()
    rooms.clear()
    _announce.clear()
    _to_add.clear()
    _to_remove.clear()
    _refreshed_at = float("-inf")
    _backends.clear()
