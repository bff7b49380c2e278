"""Unread: how far each signed-in user has read each room (a ReadMark), and where the page shows it.

- Opening a room's newest page marks the room read to its newest message; the page shows a
  "New messages" divider above the first message by someone else they had not seen.
- While a room is open, the seq each of its sockets has shown is written back at most once a second
  per process (one scheduled flush for all of them), so messages that arrive in an open room
  never count as new, in whichever tab or process it is open.
- The lobby (chat/realtime/lobby.py) shows, per room a user has opened before, how many messages by others
  came after their mark; a flush that moves marks tells the lobbies (chat/realtime/lobby_notices.py), so
  every lobby tab of theirs clears live.
"""

from django.contrib.auth.models import AbstractBaseUser

from chat import services
from chat.models import Message, Room
from chat.realtime import db, lobby_notices
from chat.realtime.registry import Entry, sockets

FLUSH = 1.0  # seconds between two write-backs of open sockets' positions


def page_opened(*, user: AbstractBaseUser, room: Room, messages: list[Message]) -> int | None:
    """Mark the room read for a reader opening its newest page; the id of the message the divider goes
    above (the first on the page by someone else that they had not seen), or None."""
    if not user.is_authenticated or room.pk is None:
        return None
    before = services.read_mark_open(user=user, room=room)
    if before is None:
        return None  # a first visit: nothing here is "new since last time"
    unseen = (m for m in messages if m.posted_seq > before and m.author_id != user.pk and not m.deleted)
    first = next(unseen, None)
    return first.pk if first else None


class ReadPositions:
    """How far the open sockets of signed-in readers have read, written back at most once a second."""

    def __init__(self) -> None:
        self.written: dict[tuple[int, str], int] = {}  # (user id, room name) → the seq last written for open sockets
        self.departed: dict[tuple[int, str], int] = {}  # the last positions of sockets that closed since the last flush

    def joined(self, entry: Entry) -> None:
        pass

    def left(self, entry: Entry) -> None:
        """A socket closed: what it showed last is written on the next flush."""
        if (key := position_key(entry)) is not None:
            self.departed[key] = max(entry.socket.seq, self.departed.get(key, 0))

    def active(self) -> bool:
        return bool(len(sockets) or self.departed)

    async def flush(self) -> None:
        """Write back how far the open sockets of signed-in readers have read (moving marks forward only)."""
        positions = dict(self.departed)
        self.departed.clear()
        for entry in sockets:
            if (key := position_key(entry)) is not None:
                positions[key] = max(entry.socket.seq, positions.get(key, 0))
        changed = {key: seq for key, seq in positions.items() if seq > self.written.get(key, 0)}
        for key in [key for key in self.written if key not in positions]:
            del self.written[key]
        if changed:
            # A key written before has its mark: only an update, no insert attempt (a big room's every second).
            await db.writes(services.read_marks_advance)(positions=changed, existing=set(self.written))
            self.written.update(changed)
            await lobby_notices.send()  # these readers' unread counts

    def reset(self) -> None:
        self.written.clear()
        self.departed.clear()


def position_key(entry: Entry) -> tuple[int, str] | None:
    """(user id, room name) for a signed-in socket that has shown something."""
    if entry.user_id is None or not getattr(entry.socket, "seq", None):
        return None
    return entry.user_id, entry.room


positions = ReadPositions()
