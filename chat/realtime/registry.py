"""This process's open sockets: the one owner of what a process knows about them.

A room socket is added on connect and removed on disconnect, once each; a lobby socket likewise.
The registry keeps them by channel, by room and by user, and tells the concerns that follow the
sockets (presence, typing, catch-up, liveness, layer watch, unread, the session listener) through
their `joined`/`left` hooks, which are synchronous: removing a socket releases everything it holds
even while its task is being cancelled. The concerns read the registry instead of keeping copies,
and the scheduler runs their periodic work while there is any (chat/realtime/scheduler.py).
Both are wired in ChatConfig.ready (chat/realtime/process.py).
"""

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from chat.realtime.presence_store import View

logger = logging.getLogger(__name__)


class Socket(Protocol):
    """A room or lobby consumer, as the concerns see it."""

    channel_name: str
    scope: dict[str, Any]

    async def send(self, text_data: str | None = None, bytes_data: bytes | None = None, close: bool = False): ...


@dataclass(eq=False, slots=True)  # one per socket: no __dict__
class Entry:
    """One room socket of this process, and what the per-socket concerns remember of its page."""

    socket: Any  # the room consumer (chat/realtime/consumers.py)
    channel: str
    room: str
    username: str  # "" for an anonymous reader
    user_id: int | None
    presence_shown: "View | None" = None  # the presence list this page shows, as far as this process sent it
    presence_sent_at: float = float("-inf")
    typing_shown: tuple[str, ...] = ()  # the typists this page shows

    @property
    def member(self) -> str:
        """The socket's presence member: its channel and username."""
        return f"{self.channel} {self.username}"


class Follower(Protocol):
    """A concern that follows the room sockets: told of each one joining and leaving (never raises)."""

    def joined(self, entry: Entry) -> None: ...

    def left(self, entry: Entry) -> None: ...


class Registry:
    def __init__(self) -> None:
        self._entries: dict[str, Entry] = {}
        self._rooms: dict[str, dict[str, Entry]] = {}
        self._users: dict[int, dict[str, Entry]] = {}
        self._lobby: dict[str, Any] = {}
        self._followers: list[Follower] = []
        self._lobby_followers: list[Any] = []  # told of lobby sockets: joined(socket), left(socket)
        self._on_add: list[Callable[[], None]] = []

    # Wiring (ChatConfig.ready).

    def follow(self, follower: Follower) -> None:
        if follower not in self._followers:
            self._followers.append(follower)

    def follow_lobby(self, follower: Any) -> None:
        if follower not in self._lobby_followers:
            self._lobby_followers.append(follower)

    def on_add(self, callback: Callable[[], None]) -> None:
        """Call `callback()` after every socket added (the scheduler wakes its jobs)."""
        if callback not in self._on_add:
            self._on_add.append(callback)

    # Room sockets.

    def add(self, socket: Any, *, room: str) -> Entry:
        """A room socket opened: index it and tell the followers."""
        user = socket.scope.get("user")
        signed_in = user is not None and user.is_authenticated
        entry = Entry(
            socket=socket,
            channel=socket.channel_name,
            room=room,
            username=user.get_username() if signed_in else "",
            user_id=user.pk if signed_in else None,
        )
        self._entries[entry.channel] = entry
        self._rooms.setdefault(room, {})[entry.channel] = entry
        if entry.user_id is not None:
            self._users.setdefault(entry.user_id, {})[entry.channel] = entry
        for follower in self._followers:
            self._tell(follower.joined, entry)
        self._changed()
        return entry

    def remove(self, socket: Any) -> Entry | None:
        """A room socket closed (or crashed, or was cancelled): forget it and tell the followers. Safe to
        call more than once."""
        entry = self._entries.pop(socket.channel_name, None)
        if entry is None:
            return None
        _discard(self._rooms, entry.room, entry.channel)
        if entry.user_id is not None:
            _discard(self._users, entry.user_id, entry.channel)
        for follower in self._followers:
            self._tell(follower.left, entry)
        return entry

    def entry(self, channel: str) -> Entry | None:
        return self._entries.get(channel)

    def entries(self) -> list[Entry]:
        return list(self._entries.values())

    def in_room(self, room: str) -> list[Entry]:
        return list(self._rooms.get(room, {}).values())

    def room_size(self, room: str) -> int:
        return len(self._rooms.get(room, ()))

    def rooms(self) -> list[str]:
        """The rooms with at least one socket here."""
        return list(self._rooms)

    def of_user(self, user_id: int | str | None) -> list[Entry]:
        """The room sockets of a signed-in user (by pk, or the str of it as notices carry it)."""
        if user_id is None:
            return []
        try:
            key = int(user_id)
        except (TypeError, ValueError):
            return [e for e in self._entries.values() if str(e.user_id) == str(user_id)]
        return list(self._users.get(key, {}).values())

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[Entry]:
        return iter(list(self._entries.values()))

    # Lobby sockets.

    def add_lobby(self, socket: Any) -> None:
        self._lobby[socket.channel_name] = socket
        for follower in self._lobby_followers:
            self._tell(follower.joined, socket)
        self._changed()

    def remove_lobby(self, socket: Any) -> None:
        if self._lobby.pop(socket.channel_name, None) is not None:
            for follower in self._lobby_followers:
                self._tell(follower.left, socket)

    def lobby(self) -> list[Any]:
        return list(self._lobby.values())

    def lobby_of_user(self, user_id: int | str | None) -> list[Any]:
        """The lobby sockets of a signed-in user (by pk, or the str of it)."""
        if user_id is None:
            return []
        return [socket for socket in self._lobby.values() if str(socket.user_id) == str(user_id)]

    # Tests.

    def reset(self) -> None:
        """Forget every socket (followers keep following)."""
        self._entries.clear()
        self._rooms.clear()
        self._users.clear()
        self._lobby.clear()

    def _changed(self) -> None:
        for callback in self._on_add:
            callback()

    @staticmethod
    def _tell(hook: Any, socket: Any) -> None:
        try:
            hook(socket)
        except Exception:  # one concern's bug must not keep the others from hearing
            logger.exception("%r failed for %r", hook, socket)


def _discard(index: dict[Any, dict[str, Entry]], key: Any, channel: str) -> None:
    group = index.get(key)
    if group is not None:
        group.pop(channel, None)
        if not group:
            del index[key]


sockets = Registry()
