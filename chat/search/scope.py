"""Which messages a search looks at: one room, or every room a reader may read (the public rooms if they may
read them, and the private rooms and direct conversations they are a member of). Each backend turns it into
its own SQL; results.py decides it."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Scope:
    room_id: int | None = None  # one room (the caller checked the reader may read it)
    public: bool = False  # every public room
    member_id: int | None = None  # every room this user is a member of

    @property
    def empty(self) -> bool:
        return self.room_id is None and not self.public and self.member_id is None
