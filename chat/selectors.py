"""Reads: rooms for the lobby, the history a room page or a reconnecting socket shows."""

from django.db.models import QuerySet

from .models import Message, Room

HISTORY_LENGTH = 50


def room_list_recent(*, limit: int = 100) -> QuerySet[Room]:
    return Room.objects.order_by("-last_activity", "-id")[:limit]


def room_history(*, room: Room | int, limit: int = HISTORY_LENGTH) -> list[Message]:
    """The latest `limit` messages of a room, oldest first."""
    latest = Message.objects.filter(room=room).select_related("author").order_by("-id")[:limit]
    return list(reversed(latest))


def room_newest_message(*, room_name: str) -> Message | None:
    """The room's newest message, id, seq and room id only: what a socket compares its position with."""
    return Message.objects.filter(room__name=room_name).only("id", "seq", "room_id").order_by("-id").first()


def rooms_newest_seq(*, names: set[str]) -> dict[str, int]:
    """The seq of each named room's newest message (rooms without messages are left out)."""
    return dict(Room.objects.filter(name__in=names, last_seq__gt=0).values_list("name", "last_seq"))
