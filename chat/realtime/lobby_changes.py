"""What a lobby socket is sent when its lists change: the entries that changed, not the whole lists.

The lobby lists rooms most recent first, so a new message moves its room to the top and leaves the
others where they are. A socket that shows a list gets, for each of its lists (`#rooms`, `#direct`):
the items that left it or move up (deleted), the items that go to the top, in order (inserted at the
list's start), and the items that changed where they are (replaced by id), as out-of-band swaps
(templates/chat/oob/_lobby_changes.html). A message costs each lobby socket one item, about a
kilobyte, instead of the whole list (fifty items, about 14 KiB).

Whatever the change, applying it to the list shown gives exactly the new list (tests/realtime/
test_lobby_changes.py checks it against random lists): the items that stay keep their order, and the
new order is that order with some items put in front. A list that is empty before or after, or of which
most items change, is sent whole.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ListChange:
    """From one list to the next, by entry (lobby.Entry, identified by its room's id)."""

    removed: tuple[int, ...] = ()  # room ids whose items are deleted: gone, or moving to the top
    top: tuple[Any, ...] = ()  # entries inserted at the top, in this order
    replaced: tuple[Any, ...] = ()  # entries that changed in place

    def __bool__(self) -> bool:
        return bool(self.removed or self.top or self.replaced)


def list_change(old: Sequence[Any], new: Sequence[Any]) -> ListChange | None:
    """The change from `old` to `new` (entries in their lobby order), or None: send `new` whole."""
    if not old or not new:
        return None if old != new else ListChange()
    before = {entry.room.id: entry for entry in old}
    ids = [entry.room.id for entry in new]
    staying = set(ids)
    kept = [entry.room.id for entry in old if entry.room.id in staying]
    # The fewest items put in front such that the others keep the order they had (at most half the list).
    in_front: set[int] = set()
    for i in range(len(ids) // 2 + 1):
        if i:
            in_front.add(ids[i - 1])
        if [room_id for room_id in kept if room_id not in in_front] == ids[i:]:
            break
    else:
        return None
    top = tuple(new[:i])
    replaced = tuple(entry for entry in new[i:] if before[entry.room.id] != entry)
    if len(top) + len(replaced) > len(new) // 2:
        return None
    removed = tuple(entry.room.id for entry in old if entry.room.id not in staying)
    moved = tuple(entry.room.id for entry in top if entry.room.id in before)
    return ListChange(removed=removed + moved, top=top, replaced=replaced)


@dataclass(frozen=True)
class Change:
    """What one lobby frame says: each list's change (None: the list whole), and the tab's mention total."""

    rooms: ListChange | None
    direct: ListChange | None
    mention_total: int | None  # None: unchanged


def change(old: Sequence[Any], new: Sequence[Any]) -> Change:
    """From the entries a socket shows to `new` (both lists together, as lobby.entries gives them)."""

    def split(entries: Sequence[Any]) -> tuple[list[Any], list[Any]]:
        return [e for e in entries if not e.direct], [e for e in entries if e.direct]

    (old_rooms, old_direct), (new_rooms, new_direct) = split(old), split(new)
    total = sum(entry.mentions for entry in new)
    return Change(
        rooms=list_change(old_rooms, new_rooms),
        direct=list_change(old_direct, new_direct),
        mention_total=None if total == sum(entry.mentions for entry in old) else total,
    )
