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

from typing import Any

from django.contrib.auth.models import AbstractBaseUser

from chat import services
from chat.models import Message, Room
from chat.realtime import db, lobby_notices
from chat.realtime.registry import Entry, sockets
from chat.realtime.scheduler import scheduler

FLUSH = 1.0  # seconds between two write-backs of open sockets' positions
JOB = "read marks"


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
        self.moved: set[str] = set()  # channels of the sockets whose position moved since the last flush

    def joined(self, entry: Entry) -> None:
        pass

    def left(self, entry: Entry) -> None:
        """A socket closed: what it showed last is written on the next flush."""
        self.moved.discard(entry.channel)
        if (key := position_key(entry)) is not None:
            self.departed[key] = max(entry.socket.seq, self.departed.get(key, 0))
            scheduler.wake(JOB)

    def advanced(self, socket: Any) -> None:
        """A socket's page now shows more of its room: written on the next flush (a socket moves often; the
        flush looks only at the sockets that moved, not at every socket every second)."""
        was_still = not self.moved
        self.moved.add(socket.channel_name)
        if was_still:
            scheduler.wake(JOB)

    def active(self) -> bool:
        return bool(self.moved or self.departed)

    async def flush(self) -> None:
        """Write back how far the open sockets of signed-in readers have read (moving marks forward only)."""
        positions = dict(self.departed)
        departed = set(self.departed)
        self.departed.clear()
        moved, self.moved = self.moved, set()
        for channel in moved:
            entry = sockets.entry(channel)
            if entry is not None and (key := position_key(entry)) is not None:
                positions[key] = max(entry.socket.seq, positions.get(key, 0))
        changed = {key: seq for key, seq in positions.items() if seq > self.written.get(key, 0)}
        for user_id, room in departed:  # no socket of theirs has the room open any more: forget it
            if not any(entry.room == room for entry in sockets.of_user(user_id)):
                self.written.pop((user_id, room), None)
        if changed:
            # A key written before has its mark: only an update, no insert attempt (a big room's every second).
            await db.writes(services.read_marks_advance)(positions=changed, existing=set(self.written))
            self.written.update(changed)
            await lobby_notices.send()  # these readers' unread counts

    def reset(self) -> None:
        self.written.clear()
        self.departed.clear()
        self.moved.clear()


def position_key(entry: Entry) -> tuple[int, str] | None:
    """(user id, room name) for a signed-in socket that has shown something."""
    if entry.user_id is None or not getattr(entry.socket, "seq", None):
        return None
    return entry.user_id, entry.room


positions = ReadPositions()
