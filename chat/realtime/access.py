"""Who may read a room, for sockets: checked when a socket connects and when it posts, never per delivered message.

A room's kind never changes once it exists, so the names of rooms known to be public are kept per process:
a reconnect storm into public rooms costs no query for this check. A name with no room yet is looked up
every time (it may become a private room), and so is every private room (its members change).
"""

from typing import Any

from chat import selectors
from chat.models import Room
from chat.realtime import db

KNOWN_PUBLIC_MAX = 10_000  # names kept; past this the set starts again (a bound, not a policy)


class PublicRooms:
    def __init__(self) -> None:
        self.names: set[str] = set()

    def add(self, name: str) -> None:
        if len(self.names) >= KNOWN_PUBLIC_MAX:
            self.names.clear()
        self.names.add(name)

    def reset(self) -> None:
        self.names.clear()


public_rooms = PublicRooms()


async def room_for_socket(name: str, *, user: Any, fresh: bool = False) -> Room | None:
    """The room if this socket's user may read it (an unsaved one for a public name nobody has posted in yet),
    else None; under its own spelling ("General" is the room `general`: the consumer follows `room.name`).
    `fresh`: ask the database even for a name known to be public."""
    if not fresh and name in public_rooms.names:
        return Room(name=name)  # saved already; the consumer loads its row on its first post
    room = await db.reads(selectors.room_for_reader)(name=name, user=user)
    if room is not None and room.pk is None:  # no room of that spelling: names are case-insensitive
        spelling = await db.reads(selectors.room_name_canonical)(name=name, user=user)
        if spelling != name:
            return await room_for_socket(spelling, user=user, fresh=fresh)
    if room is not None and room.pk is not None and room.is_public:
        public_rooms.add(name)
    return room
