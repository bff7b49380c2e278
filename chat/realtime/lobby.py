"""The live lobby: rooms with messages, most recent first, each with how many people are in it now,
its last message (author, the first 80 characters, time) and, for a signed-in reader, how many
messages are new to them and how many of those mention them.

The page renders the list (right without JavaScript, as of loading); a socket at `/ws/lobby/` keeps
it live. A scheduled job per process with lobby sockets reads the lobby when it may have changed
(chat/realtime/lobby_notices.py: a change anywhere notifies every process) and a socket may be sent
something: the room list (one query), the rooms' presence counts (one read of the presence store, for
the rooms whose list this process does not keep current already) and the unread and mention counts of
every signed-in reader with a lobby socket here (one query each), whatever the number of sockets. Each
socket whose lists differ from the ones it shows gets what changed in them (chat/realtime/
lobby_changes.py: a room with a new message is one item moved to the top, about a kilobyte; the lists
whole on its first frame, on a new day, or when most of them changed), rendered once per distinct
change and time zone, at most one frame every GAP (3) seconds: a change after a quiet spell shows
within a second, while rooms are busy every 3 s shows what changed meanwhile, from any process. While
nothing happens, nothing is read.
"""

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django.contrib.auth.models import AbstractBaseUser

from chat import fragments, selectors
from chat.accounts.access import may_read_public
from chat.models import DEFAULT_TIME_ZONE, Room
from chat.protection import limits
from chat.realtime import (
    db,
    lobby_changes,
    lobby_notices,
    mention_notices,
    presence,
    presence_store,
    session_notices,
    unread,
)
from chat.realtime.consumer_base import PooledDatabaseWebsocketConsumer, layer_forget
from chat.realtime.registry import sockets

logger = logging.getLogger(__name__)

TICK = 1.0
# At most one frame per lobby socket every GAP seconds: while rooms are busy, a lobby shows what changed in
# the last GAP seconds in one frame; the first change after a quiet GAP goes on the next TICK.
GAP = 3.0
CLOSE_SIGNED_OUT = 4401  # as the room socket's: htmx does not retry these
CLOSE_TOO_MANY_SOCKETS = 4429


@dataclass(frozen=True)
class Entry:
    room: selectors.LobbyRoom
    here: int  # people in the room now
    unread: int  # messages new to this reader
    title: str = ""  # the room's name, or a direct conversation's other person for this reader
    mentions: int = 0  # this reader's unread mentions there

    @property
    def direct(self) -> bool:
        return self.room.kind == Room.DIRECT

    @property
    def private(self) -> bool:
        return self.room.kind == Room.PRIVATE


def entries(
    rooms: list[selectors.LobbyRoom],
    views: dict[str, presence_store.View],
    new: dict[tuple[int, int], int],
    user_id: int | None,
    mentioned: dict[tuple[int, int], int] | None = None,
) -> tuple[Entry, ...]:
    """What one reader's lobby lists: the public rooms, and the private rooms and conversations they are in."""
    return tuple(
        Entry(
            room=room,
            here=views[room.name].count if room.name in views else 0,
            unread=new.get((user_id, room.id), 0) if user_id else 0,
            title=room.partner(user_id) if room.kind == Room.DIRECT else room.name,
            mentions=(mentioned or {}).get((user_id, room.id), 0) if user_id else 0,
        )
        for room in rooms
        if room.visible_to(user_id)
    )


def page_entries(*, user: AbstractBaseUser) -> tuple[Entry, ...]:
    """The lobby as of now, for the page (runs in a view's thread)."""
    user_id = user.pk if user.is_authenticated else None
    rooms = selectors.lobby_rooms(user_ids={user_id} if user_id else set())
    room_ids = [r.id for r in rooms]
    new = selectors.unread_counts(user_ids={user_id}, room_ids=room_ids) if user_id else {}
    mentioned = selectors.mention_counts(user_ids={user_id}, room_ids=room_ids) if user_id else {}
    return entries(rooms, presence_store.counts_now([r.name for r in rooms]), new, user_id, mentioned)


class LobbyConsumer(mention_notices.MentionEvents, session_notices.SessionEvents, PooledDatabaseWebsocketConsumer):
    """One per lobby tab: it only listens. The process's lobby task sends it the list when it changes."""

    async def connect(self) -> None:
        user = self.scope.get("user")
        self.user_id = user.pk if user is not None and user.is_authenticated else None
        self.username = user.get_username() if self.user_id else ""
        self.zone_name = self.scope.get("time_zone") or DEFAULT_TIME_ZONE  # from the handshake's session
        # None: what the page shows is not known, so the next tick sends the list (it may have
        # changed between the page load and this connect).
        self.shown: tuple[Entry, ...] | None = None
        self.shown_day: date | None = None  # the day in the reader's zone when `shown` was sent
        self.outdated = True  # not sent the lobby's last reading yet
        self.due = 0.0  # (monotonic) when its next frame may go: GAP after its last
        await self.accept()
        if not may_read_public(user):  # CHAT_PUBLIC_READ=0: visitors get no lobby frame
            await self.close(code=CLOSE_SIGNED_OUT)
            return
        # A lobby tab counts toward the same open-socket caps as a room tab (per user and per address).
        self.client_ip = limits.scope_ip(self.scope)
        self.counted = await limits.socket_open(user=user, ip=self.client_ip)
        if not self.counted:
            await self.close(code=CLOSE_TOO_MANY_SOCKETS)
            return
        sockets.add_lobby(self)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:  # a crash or a cancellation too, where Channels never calls disconnect()
            await self.release()

    async def disconnect(self, code: int) -> None:
        await self.release()

    async def release(self) -> None:
        """Give back what this socket holds, once: its registry entry and its socket count."""
        if getattr(self, "released", False):
            return
        self.released = True
        if hasattr(self, "channel_name"):
            sockets.remove_lobby(self)
            layer_forget(self.channel_layer, self.channel_name)
        if getattr(self, "counted", False):
            await asyncio.shield(
                asyncio.ensure_future(limits.socket_closed(user=self.scope.get("user"), ip=self.client_ip))
            )

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        pass  # nothing to say on this socket

    async def sign_out(self, *, removed: bool = False) -> None:
        sockets.remove_lobby(self)  # no list is sent to it any more
        await self.send(text_data=fragments.lobby_signed_out())
        await self.close(code=CLOSE_SIGNED_OUT)


@dataclass
class Reading:
    """The lobby as this process last read it: what every socket's lists are made from until the next change."""

    rooms: list[selectors.LobbyRoom]
    views: dict[str, presence_store.View]
    new: dict[tuple[int, int], int]
    mentioned: dict[tuple[int, int], int]
    user_ids: set[int]  # the readers whose counts were read
    usernames: dict[int, str] = field(default_factory=dict)  # theirs
    lists: dict[int | None, tuple[Entry, ...]] = field(default_factory=dict)  # by reader: built once per reading

    def __post_init__(self) -> None:
        # A room the reader has open, in a tab on any process, has nothing new to them: its read mark is written
        # by that tab's process a moment later (chat/realtime/unread.py), which would show "1 new" meanwhile.
        here = {room.id: set(self.views[room.name].names) for room in self.rooms if room.name in self.views}
        self.new = {
            (user, room): n
            for (user, room), n in self.new.items()
            if self.usernames.get(user) not in here.get(room, ())
        }
        # Most readers see the same list: every public room, nothing new to them, no room of their own. It is
        # built once; only a reader with counts or private rooms and conversations gets a list of their own.
        self.personal = {user for user, _ in self.new} | {user for user, _ in self.mentioned}
        self.personal.update(*(room.members for room in self.rooms if room.kind != Room.PUBLIC))
        self.common = entries(self.rooms, self.views, {}, None)

    def view(self, user_id: int | None) -> tuple[Entry, ...]:
        if user_id not in self.personal:
            return self.common
        if (view := self.lists.get(user_id)) is None:
            view = self.lists[user_id] = entries(self.rooms, self.views, self.new, user_id, self.mentioned)
        return view


class Readings:
    """This process's last reading of the lobby."""

    def __init__(self) -> None:
        self.last: Reading | None = None

    async def read(self, lobby_sockets: list[Any]) -> Reading:
        user_ids = {socket.user_id for socket in lobby_sockets if socket.user_id}
        if user_ids:
            # What this process's open rooms have shown is written first: a message that arrived in a room the
            # reader has open here never shows as new, whichever job ran first.
            await unread.positions.flush()
        rooms = await db.reads(selectors.lobby_rooms)(user_ids=user_ids)
        # The lists this process's presence keeps current serve as they are: only the other rooms are read.
        views = presence.tracker.current_views([room.name for room in rooms])
        views.update(await presence_store.views([room.name for room in rooms if room.name not in views]))
        room_ids = [r.id for r in rooms]
        new = await db.reads(selectors.unread_counts)(user_ids=user_ids, room_ids=room_ids)
        mentioned = await db.reads(selectors.mention_counts)(user_ids=user_ids, room_ids=room_ids)
        usernames = {socket.user_id: socket.username for socket in lobby_sockets if socket.user_id}
        self.last = Reading(rooms, views, new, mentioned, user_ids, usernames)
        return self.last

    def reset(self) -> None:
        self.last = None


readings = Readings()


def active() -> bool:
    lobby_sockets = sockets.lobby()
    return bool(lobby_sockets) and (lobby_notices.staleness.stale or any(s.outdated for s in lobby_sockets))


async def tick() -> None:
    """Send each lobby socket of this process what changed in its lists, if anything did and its GAP is over (a
    scheduled job, every TICK while the lobby is stale or a socket has not been sent the last reading)."""
    lobby_sockets = sockets.lobby()
    now = time.monotonic()
    due = [socket for socket in lobby_sockets if socket.due <= now]
    if not due:
        return  # nobody may be sent anything yet: the lobby is read when someone may
    reading = readings.last
    unread_unknown = (
        any(s.outdated and s.user_id and s.user_id not in reading.user_ids for s in due) if reading else True
    )
    if lobby_notices.staleness.take() or unread_unknown:
        reading = await readings.read(lobby_sockets)
        for socket in lobby_sockets:
            socket.outdated = True
    today: dict[str, date] = {}
    # One render per distinct change and zone: sockets that showed the same list and now see the same list
    # share it (lists are compared by identity: a socket keeps the shared list object it was sent).
    rendered: dict[tuple[Any, ...], str] = {}
    for socket in due:
        if not socket.outdated:
            continue
        socket.outdated = False
        user_id = socket.user_id
        view = reading.view(user_id)
        if view == socket.shown:
            socket.shown = view  # the same list: shared from now on
            continue
        if (day := today.get(socket.zone_name)) is None:
            day = today[socket.zone_name] = fragments.today(socket.zone_name)
        shown = socket.shown if socket.shown_day == day else None  # a new day: the times read otherwise
        key = (id(shown), id(view), socket.zone_name, user_id is not None)
        if key not in rendered:
            signed_in = key[3]
            if shown is None:
                rendered[key] = fragments.lobby_rooms(view, zone_name=socket.zone_name, signed_in=signed_in)
            else:
                change = lobby_changes.change(shown, view)
                rendered[key] = fragments.lobby_changes(change, view, zone_name=socket.zone_name, signed_in=signed_in)
        socket.shown, socket.shown_day, socket.due = view, day, now + GAP
        try:
            await socket.send(text_data=rendered[key])
        except Exception:  # closing meanwhile
            continue
