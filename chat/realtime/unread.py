"""Unread: how far each signed-in user has read each room (a ReadMark), and where the page shows it.

- Opening a room's newest page marks the room read to its newest message; the page shows a
  "New messages" divider above the first message by someone else they had not seen.
- While a room is open, the seq each of its sockets has shown is written back at most once a second
  per process (on presence's tick, one update per room), so messages that arrive in an open room
  never count as new, in whichever tab or process it is open.
- The lobby (chat/realtime/lobby.py) shows, per room a user has opened before, how many messages by others
  came after their mark; it reads the marks every second, so every lobby tab of theirs clears live.
"""

import time

from django.contrib.auth.models import AbstractBaseUser

from chat import services
from chat.models import Message, Room
from chat.realtime import db, presence

FLUSH = 1.0

_written: dict[tuple[int, str], int] = {}  # (user id, room name) → the seq last written for open sockets
_departed: dict[tuple[int, str], int] = {}  # the last positions of sockets that closed since the last flush
_flushed_at = float("-inf")


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


async def flush() -> None:
    """Write back how far the open sockets of signed-in readers have read (moving marks forward only)."""
    global _flushed_at
    now = time.monotonic()
    if now - _flushed_at < FLUSH:
        return
    _flushed_at = now
    positions = dict(_departed)
    _departed.clear()
    for entry in list(presence.here.values()):
        if (key := position_key(entry)) is not None:
            positions[key] = max(entry.socket.seq, positions.get(key, 0))
    changed = {key: seq for key, seq in positions.items() if seq > _written.get(key, 0)}
    for key in [key for key in _written if key not in positions]:
        del _written[key]
    if changed:
        # A key written before has its mark: only an update, no insert attempt (a big room's every second).
        await db.writes(services.read_marks_advance)(positions=changed, existing=set(_written))
        _written.update(changed)


def position_key(entry: presence.Here) -> tuple[int, str] | None:
    """(user id, room name) for a signed-in socket that has shown something."""
    if entry.user_id is None or not getattr(entry.socket, "seq", None):
        return None
    return entry.user_id, entry.room


def departed(entry: presence.Here) -> None:
    """A socket closed: what it showed last is written on the next flush."""
    if (key := position_key(entry)) is not None:
        _departed[key] = max(entry.socket.seq, _departed.get(key, 0))


presence.tick_hooks.append(flush)
presence.leave_hooks.append(departed)
presence.pending_hooks.append(lambda: bool(_departed))


def reset() -> None:
    global _flushed_at
    _written.clear()
    _departed.clear()
    _flushed_at = float("-inf")
