"""Who has a room open, as each process keeps it: its sockets' members written to the presence store
(chat/realtime/presence_store.py), and each socket sent its room's list when it changes.

Joins and clean disconnects are written on the next TICK, all of a room's in one write, and a room is
read again only when something changed in it: a join or leave here, or another process's announcement.
Nothing is re-read on a timer while nothing changes.

With Redis, how a process that dies without leaving (kill -9) leaves the lists: each process beats every
REFRESH (15) s (one write, whatever its rooms; its heartbeat lasts presence_store.TTL, 35 s), and the
same round trip lists the processes whose heartbeat has expired. When one has, every process re-reads
its rooms, whose reads drop that process's members: its users leave every list within TTL + REFRESH
(50 s), without a reload. That heartbeat is the one timer presence keeps: three Redis commands per
process every REFRESH seconds. Without Redis there is one process, and nothing to expire.

How it reaches pages without amplification: a join or a leave marks the room dirty in this process
and, with Redis, is announced to the room's other processes once per tick (a `presence.changed`
group event, which only marks the room dirty there). Every TICK each process re-reads its dirty
rooms, renders a changed list once per room, and sends it to each of its sockets showing another,
at most one presence frame per socket per second: 1,000 joins cost a socket a frame a second, not
1,000 frames. In a big room the gap grows with its sockets here (ROOM_FRAMES_PER_SECOND), so a
reconnect storm of 5,000 sockets into one room costs a bounded number of frames a second. A changed
list also tells the lobbies (chat/realtime/lobby_notices.py): their counts of people.
"""

import logging
import time
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

import redis
from channels.layers import get_channel_layer

from chat import fragments
from chat.models import room_group_name
from chat.realtime import lobby_notices, presence_store
from chat.realtime.presence_store import View, backend, enabled, shared
from chat.realtime.registry import Entry, sockets

logger = logging.getLogger(__name__)

TICK = 0.5
MIN_FRAME_GAP = 1.0  # seconds between two presence frames to one socket
ROOM_FRAMES_PER_SECOND = 500  # beyond this many sockets in a room here, its frames are spaced further
REFRESH = 15.0  # seconds between two heartbeats of a process (Redis only)
# A socket whose connection was lost (no close frame: a phone changing networks, a laptop waking up) stays
# listed this long: htmx reconnects within a second or two, and the lists never show the blip.
LOST_GRACE = 5.0
LOST = 1006  # the close code of a connection that ended without a close frame
# Tells this process's own announcements apart from other processes'.
ORIGIN = uuid4().hex


@dataclass(eq=False)
class RoomView:
    """A room with at least one socket in this process: its list as last read, rendered once."""

    view: View | None = None
    frame: str = ""
    dirty: bool = True
    undelivered: bool = False  # some socket may show another list than `view`


class Presence:
    """This process's side of presence: a follower of the registry, ticked by the scheduler."""

    def __init__(self) -> None:
        self.rooms: dict[str, RoomView] = {}
        self.to_announce: set[str] = set()
        self.to_add: dict[str, set[str]] = {}  # joins and leaves not yet written to the store
        self.to_remove: dict[str, set[str]] = {}
        self.beat_at = float("-inf")  # monotonic
        self.dead_seen: set[str] = set()  # processes found dead, whose members this process has re-read
        self.lost: list[tuple[float, Entry]] = []  # (when to leave, entry) of lost connections, oldest first

    def joined(self, entry: Entry) -> None:
        room = self.rooms.setdefault(entry.room, RoomView())
        if not enabled():
            return
        room.dirty = True
        self.to_announce.add(entry.room)
        # Written by the next tick, with every other join and leave of the room since the last one: 1,000
        # joins at once are one write, not 1,000 round trips racing for Redis connections.
        self.to_add.setdefault(entry.room, set()).add(entry.member)

    def left(self, entry: Entry) -> None:
        """Its member goes at once, and the room's lists are updated within a tick or two; a lost connection's
        member after LOST_GRACE, so that its reconnect changes nobody's list."""
        if enabled() and getattr(entry.socket, "close_code", None) == LOST:
            self.lost.append((time.monotonic() + LOST_GRACE, entry))
            if not sockets.room_size(entry.room):
                self.rooms.pop(entry.room, None)
            return
        self.leave(entry)

    def leave(self, entry: Entry) -> None:
        room = self.rooms.get(entry.room)
        if room is not None:
            room.dirty = True
            if not sockets.room_size(entry.room):
                del self.rooms[entry.room]
        if not enabled():
            return
        self.to_announce.add(entry.room)
        added = self.to_add.get(entry.room)
        if added is not None and entry.member in added:  # never written: nothing to remove
            added.discard(entry.member)
        else:
            self.to_remove.setdefault(entry.room, set()).add(entry.member)

    def changed(self, room_name: str, origin: str | None = None) -> None:
        """Another process announced a join or leave in this room: re-read it on the next tick."""
        room = self.rooms.get(room_name)
        if room is not None and origin != ORIGIN:
            room.dirty = True

    def current_views(self, names: list[str]) -> dict[str, View]:
        """The lists of these rooms that this process keeps current (it has sockets there and no change
        is waiting to be read), so the lobby need not read them again."""
        found = {}
        for name in names:
            room = self.rooms.get(name)
            if room is not None and room.view is not None and not room.dirty:
                found[name] = room.view
        return found

    def people(self, name: str) -> int:
        """How many people the room's list last showed (0 before its first read), as this process knows it."""
        room = self.rooms.get(name)
        return room.view.count if room is not None and room.view is not None else 0

    def active(self) -> bool:
        """Runs while this process has a room socket, or a last leave still to announce or write down."""
        return bool(len(sockets) or self.to_announce or self.to_remove or self.lost)

    async def tick(self) -> None:
        if not enabled():
            return
        mono = time.monotonic()
        if shared() and mono - self.beat_at >= REFRESH:
            await self.beat(mono)
        while self.lost and self.lost[0][0] <= mono:
            self.leave(self.lost.pop(0)[1])
        await self.write()
        if self.to_announce:
            await lobby_notices.send()  # their counts of people
        await self.announce()
        due = [name for name, room in self.rooms.items() if room.dirty]
        if due:
            try:
                members = await backend().read(due)
            except redis.RedisError as exc:  # the lists stay as they are; the next tick tries again
                logger.warning("reading presence failed: %r", exc)
                members = {}
            changed = False
            for name, found in members.items():
                room = self.rooms.get(name)
                if room is None:
                    continue
                room.dirty, room.undelivered = False, True  # a new socket shows no list yet
                view = View.of(found)
                if view != room.view:
                    room.view, room.frame = view, fragments.presence_list(view)
                    changed = True
            if changed and not self.to_announce:
                await lobby_notices.send()  # another process's join, leave or death
        await self.deliver(mono)

    async def beat(self, mono: float) -> None:
        """Redis: say this process lives; re-add its members if its heartbeat had lapsed or was lost, and
        re-read every room if another process died since the last beat."""
        lapsed = mono - self.beat_at >= presence_store.TTL
        self.beat_at = mono
        try:
            missing, dead = await backend().beat(time.time(), ttl=presence_store.TTL)
        except redis.RedisError as exc:  # the next tick tries again
            logger.warning("presence heartbeat failed: %r", exc)
            self.beat_at = float("-inf")
            return
        if missing or lapsed:  # Redis lost it, or readers may have deleted this process's members meanwhile
            await self.refresh()
        if dead - self.dead_seen:
            for room in self.rooms.values():
                room.dirty = True
        self.dead_seen = dead

    async def write(self) -> None:
        """Store this tick's joins and leaves (one write per room and kind)."""
        adds, removes = dict(self.to_add), dict(self.to_remove)
        self.to_add.clear()
        self.to_remove.clear()
        for name, members in adds.items():
            if members:
                try:
                    await backend().add(name, members)
                except redis.RedisError as exc:  # tried again on the next tick (unless they leave meanwhile)
                    logger.warning("storing presence in %s failed: %r", name, exc)
                    self.to_add.setdefault(name, set()).update(members)
        for name, gone in removes.items():
            try:
                await backend().remove(name, *gone)
            except redis.RedisError as exc:  # tried again on the next tick: nothing else would remove them
                logger.warning("removing presence in %s failed: %r", name, exc)
                self.to_remove.setdefault(name, set()).update(gone)

    async def refresh(self) -> None:
        """Write every local socket's member again (one write per room), and have every room re-read here
        and by the other processes."""
        for name in sockets.rooms():
            members = {entry.member for entry in sockets.in_room(name)}
            if members:
                try:
                    await backend().add(name, members)
                except redis.RedisError as exc:
                    logger.warning("refreshing presence in %s failed: %r", name, exc)
                    self.beat_at = float("-inf")  # again on the next tick
            self.to_announce.add(name)
            if name in self.rooms:
                self.rooms[name].dirty = True

    async def announce(self) -> None:
        """Tell the other processes which rooms had joins or leaves here (once per room per tick)."""
        if not self.to_announce:
            return
        names = list(self.to_announce)
        self.to_announce.clear()
        if not shared():
            return
        layer = get_channel_layer()
        for name in names:
            try:
                await layer.group_send(room_group_name(name), {"type": "presence.changed", "origin": ORIGIN})
            except Exception as exc:  # they re-read it with the room's next change
                logger.info("announcing presence in %s failed: %r", name, exc)

    async def deliver(self, mono: float) -> None:
        """Each socket whose page shows another list than its room's gets it, at most once a second
        (once every `frame_gap` seconds in a big room)."""
        for name, room in list(self.rooms.items()):
            if room.view is None or not room.undelivered:
                continue
            room.undelivered = False
            entries = sockets.in_room(name)
            gap = frame_gap(len(entries))
            for entry in entries:
                if entry.presence_shown == room.view:
                    continue
                if mono - entry.presence_sent_at < gap:
                    room.undelivered = True  # its turn comes on a later tick
                    continue
                entry.presence_shown, entry.presence_sent_at = room.view, mono
                try:
                    await entry.socket.send(text_data=room.frame)
                except Exception:  # closing meanwhile: its disconnect unregisters it
                    continue

    def reset(self) -> None:
        self.__init__()


def frame_gap(room_sockets: int) -> float:
    """Seconds between two presence frames to one socket of a room with this many sockets here."""
    return max(MIN_FRAME_GAP, room_sockets / ROOM_FRAMES_PER_SECOND)


tracker = Presence()


class PresenceEvents:
    """The room consumer's handler for the `presence.changed` group event."""

    room_name: str

    async def presence_changed(self, event: dict[str, Any]) -> None:
        tracker.changed(self.room_name, event.get("origin"))
