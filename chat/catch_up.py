"""What a room socket missed, and what each process knows of its rooms' newest seq.

A room is an ordered stream: every message takes the room's next seq. A page holds a
cursor (the seq of the last change it shows) and sends it when its socket opens; it
gets exactly what comes after, appended in order, never a replacement of what it has.

`rooms` remembers, per process, the newest seq each room with a socket here has
reached (from the database at a socket's first catch-up, then from every broadcast).
A sync whose cursor is already there costs no query and sends nothing.
"""

from collections import Counter
from dataclasses import dataclass, field

from . import days, fragments, selectors

# A page further behind than this gets the latest page and a marker for the rest.
MAX_CATCH_UP = 200
# Messages per frame, so no single frame grows with how far behind a page is.
FRAME_MESSAGES = 50


class RoomSeqs:
    """The newest seq seen per room, kept only while this process has a socket in the room."""

    def __init__(self) -> None:
        self._members: Counter[str] = Counter()
        self._seq: dict[str, int] = {}

    def join(self, room: str) -> None:
        self._members[room] += 1

    def leave(self, room: str) -> None:
        self._members[room] -= 1
        if self._members[room] <= 0:
            del self._members[room]
            self._seq.pop(room, None)

    def advance(self, room: str, seq: int) -> None:
        if room in self._members and seq > self._seq.get(room, 0):
            self._seq[room] = seq

    def known(self, room: str) -> int | None:
        """The newest seq of the room this process knows of (None: not known, ask the database)."""
        return self._seq.get(room)

    def forget(self) -> None:
        """The layer failed: broadcasts may have been lost, so nothing known is trusted any more."""
        self._seq.clear()


rooms = RoomSeqs()


@dataclass
class CatchUp:
    frames: list[str] = field(default_factory=list)
    seq: int = 0  # the page's cursor once the frames are shown


def catch_up(*, room_name: str, cursor: int, zone_name: str) -> CatchUp:
    """The frames that bring a page at `cursor` up to date (runs in a database thread)."""
    changes = selectors.room_changes_since(room_name=room_name, seq=cursor, limit=MAX_CATCH_UP)
    shown = changes.pop(0) if changes and changes[0].seq == cursor else None
    if not changes:
        # Up to date, or a cursor ahead of the room (a page of a room since emptied, a forged frame).
        return CatchUp(seq=cursor if shown else min(cursor, selectors.room_seq(room_name=room_name)))
    zone = fragments.zone(zone_name)
    if len(changes) > MAX_CATCH_UP:
        latest = selectors.room_latest(room_name=room_name, limit=FRAME_MESSAGES)
        entries = days.entries(latest, zone=zone)
        frame = fragments.gap_appended(
            room_name=room_name,
            entries=entries,
            missed=latest[0].seq - cursor - 1,
            before=latest[0].pk,
            after=shown.pk if shown else 0,
            cursor=latest[-1].seq,
            zone_name=zone_name,
        )
        return CatchUp(frames=[frame], seq=latest[-1].seq)
    entries = days.entries(changes, previous=shown.created if shown else None, zone=zone)
    frames = []
    for start in range(0, len(entries), FRAME_MESSAGES):
        chunk = entries[start : start + FRAME_MESSAGES]
        frames.append(fragments.caught_up(entries=chunk, cursor=chunk[-1].message.seq, zone_name=zone_name))
    return CatchUp(frames=frames, seq=changes[-1].seq)
