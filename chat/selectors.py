"""Reads: rooms for the lobby, pages of a room's history, what a reconnecting socket missed, unread counts."""

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth import get_user_model
from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce

from chat.models import DEFAULT_TIME_ZONE, Message, Profile, ReadMark, Room

PAGE_LENGTH = 50
HISTORY_LENGTH = PAGE_LENGTH


@dataclass(frozen=True)
class Page:
    """A run of a room's messages, oldest first, and whether there are more on either side."""

    messages: list[Message]
    has_older: bool
    has_newer: bool

    @property
    def first_id(self) -> int | None:
        return self.messages[0].pk if self.messages else None

    @property
    def last_id(self) -> int | None:
        return self.messages[-1].pk if self.messages else None


def room_list_recent(*, limit: int = 100) -> QuerySet[Room]:
    """Rooms with at least one message, most recently active first (a visit alone lists nothing)."""
    return Room.objects.filter(last_seq__gt=0).order_by("-last_activity", "-id")[:limit]


def room_get(*, name: str) -> Room:
    """The room of that name, or an unsaved one: visiting a room stores nothing (its first post does)."""
    return Room.objects.filter(name=name).first() or Room(name=name)


def room_page(
    *, room: Room | int, before: int | None = None, after: int | None = None, limit: int = PAGE_LENGTH
) -> Page:
    """One page of a room by keyset on (room, id), never OFFSET: as fast 500,000 messages back as at the end.

    No bounds: the latest `limit`. `before`: the `limit` just before that id. `after` alone: the `limit` just
    after it. Both: the newest `limit` strictly between them (filling a gap from its newer end).
    """
    if isinstance(room, Room) and room.pk is None:  # a room nobody has posted in yet (see room_get)
        return Page(messages=[], has_older=False, has_newer=False)
    messages = Message.objects.filter(room=room).select_related("author")
    if before is not None:
        messages = messages.filter(id__lt=before)
    if after is not None:
        messages = messages.filter(id__gt=after)
    if after is not None and before is None:
        rows = list(messages.order_by("id")[: limit + 1])
        return Page(messages=rows[:limit], has_older=True, has_newer=len(rows) > limit)
    rows = list(messages.order_by("-id")[: limit + 1])
    return Page(messages=list(reversed(rows[:limit])), has_older=len(rows) > limit, has_newer=before is not None)


def room_history(*, room: Room | int, limit: int = HISTORY_LENGTH) -> list[Message]:
    """The latest `limit` messages of a room, oldest first."""
    return room_page(room=room, limit=limit).messages


def message_in_room(*, room: Room | int, pk: int) -> Message | None:
    """One message of the room, id, seq and time only (where a page's batch meets what it shows)."""
    return Message.objects.filter(room=room, pk=pk).only("id", "seq", "created").first()


def room_changes_since(*, room_name: str, seq: int, limit: int) -> list[Message]:
    """Messages whose latest change (post, edit, delete) came after `seq`, in seq order: up to `limit`,
    plus one more if there are more."""
    changes = Message.objects.filter(room__name=room_name, seq__gt=seq).select_related("author").order_by("seq")
    return list(changes[: limit + 1])


def message_previous(*, room: Room | int, before: int) -> Message | None:
    """The message just before id `before` in its room (the one shown above it)."""
    return Message.objects.filter(room=room, id__lt=before).only("id", "created").order_by("-id").first()


def room_newer_than(*, room: Room | int, pk: int, limit: int) -> int:
    """How many messages came after message `pk`, counting no further than `limit`."""
    return len(Message.objects.filter(room=room, id__gt=pk).order_by("id").values_list("id", flat=True)[:limit])


def room_count_between(*, room: Room | int, after: int, before: int) -> int:
    """How many messages lie strictly between two ids (a gap a page has not loaded)."""
    return Message.objects.filter(room=room, id__gt=after, id__lt=before).count()


def room_latest(*, room_name: str, limit: int) -> list[Message]:
    """The newest `limit` messages of a room, oldest first (a page too far behind starts again from here)."""
    latest = Message.objects.filter(room__name=room_name).select_related("author").order_by("-seq")[:limit]
    return list(reversed(latest))


def room_seq(*, room_name: str) -> int:
    """The seq of the room's newest message (0: none, or no such room)."""
    return Room.objects.filter(name=room_name).values_list("last_seq", flat=True).first() or 0


def rooms_newest_seq(*, names: set[str]) -> dict[str, int]:
    """The seq of each named room's newest message (rooms without messages are left out)."""
    return dict(Room.objects.filter(name__in=names, last_seq__gt=0).values_list("name", "last_seq"))


def user_time_zone(*, user) -> str:
    """The zone a user reads times in (UTC for anonymous readers and for users who never chose)."""
    if user is None or not user.is_authenticated:
        return DEFAULT_TIME_ZONE
    return Profile.objects.filter(user=user).values_list("time_zone", flat=True).first() or DEFAULT_TIME_ZONE


LOBBY_LENGTH = 50
PREVIEW_LENGTH = 80


@dataclass(frozen=True)
class LobbyRoom:
    """A room as the lobby lists it: its newest message's author, the start of its text and its time."""

    id: int
    name: str
    last_activity: datetime
    last_author: str
    last_body: str

    @property
    def preview(self) -> str:
        body = " ".join(self.last_body.split())
        return body if len(body) <= PREVIEW_LENGTH else body[: PREVIEW_LENGTH - 1].rstrip() + "…"


def lobby_rooms(*, limit: int = LOBBY_LENGTH) -> list[LobbyRoom]:
    """Rooms with messages (not every name someone visited), most recent first, in one query. The preview is
    the newest message still there (an edit keeps its place, a deleted one is skipped)."""
    last = Message.objects.filter(room=OuterRef("pk"), deleted__isnull=True).order_by("-posted_seq")
    rows = (
        Room.objects.filter(last_seq__gt=0)
        .order_by("-last_activity", "-id")
        .annotate(
            last_author=Subquery(last.values(f"author__{get_user_model().USERNAME_FIELD}")[:1]),
            last_body=Subquery(last.values("body")[:1]),
        )
        .values_list("id", "name", "last_activity", "last_author", "last_body")[:limit]
    )
    return [LobbyRoom(id, name, at, author or "", body or "") for id, name, at, author, body in rows]


def unread_counts(*, user_ids: set[int], room_ids: list[int]) -> dict[tuple[int, int], int]:
    """(user id, room id) → messages by others posted after the user's read mark (and not deleted), for rooms
    they have opened. Edits of older messages are not new messages."""
    if not user_ids or not room_ids:
        return {}
    newer = (
        Message.objects.filter(room=OuterRef("room"), posted_seq__gt=OuterRef("seq"), deleted__isnull=True)
        .exclude(author=OuterRef("user"))
        .order_by()
        .values("room")
        .annotate(n=Count("pk"))
        .values("n")
    )
    rows = (
        ReadMark.objects.filter(user_id__in=user_ids, room_id__in=room_ids)
        .annotate(unread=Coalesce(Subquery(newer[:1]), 0))
        .filter(unread__gt=0)
        .values_list("user_id", "room_id", "unread")
    )
    return {(user_id, room_id): unread for user_id, room_id, unread in rows}
