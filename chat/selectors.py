"""Reads: rooms for the lobby, the history a room page or a reconnecting socket shows."""

from django.db.models import QuerySet

from .models import Message, Room

HISTORY_LENGTH = 50


def room_list_recent(*, limit: int = 100) -> QuerySet[Room]:
    return Room.objects.order_by("-last_activity", "-id")[:limit]


def room_get(*, name: str) -> Room | None:
    return Room.objects.filter(name=name).first()


def room_history(*, room: Room, limit: int = HISTORY_LENGTH) -> list[Message]:
    """The latest `limit` messages of a room, oldest first."""
    latest = Message.objects.filter(room=room).select_related("author").order_by("-id")[:limit]
    return list(reversed(latest))


def room_newest_message(*, room: Room) -> Message | None:
    """The room's newest message, id and seq only (what a socket compares its position with)."""
    return Message.objects.filter(room=room).only("id", "seq").order_by("-id").first()
