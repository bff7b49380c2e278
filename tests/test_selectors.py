"""Reads: history order and length, lobby order."""

from uuid import uuid4

from chat import selectors
from chat.models import Message, Room


def make_messages(room, author, count):
    return [Message.objects.create(room=room, author=author, body=f"m{i}", token=uuid4()) for i in range(count)]


def test_history_is_the_latest_50_oldest_first(room, alice):
    make_messages(room, alice, 60)

    history = selectors.room_history(room=room)

    assert [m.body for m in history] == [f"m{i}" for i in range(10, 60)]


def test_history_of_one_room_excludes_other_rooms(room, alice):
    other = Room.objects.create(name="other")
    make_messages(other, alice, 3)

    assert selectors.room_history(room=room) == []


def test_messages_after_a_cursor(room, alice):
    messages = make_messages(room, alice, 3)

    assert selectors.room_has_messages_after(room=room, message_id=messages[1].pk)
    assert not selectors.room_has_messages_after(room=room, message_id=messages[2].pk)


def test_lobby_lists_most_recently_active_first(db):
    from datetime import timedelta

    from django.utils import timezone

    now = timezone.now()
    for offset, name in [(3, "quiet"), (1, "busy"), (2, "middling")]:
        Room.objects.create(name=name)
        Room.objects.filter(name=name).update(last_activity=now - timedelta(minutes=offset))

    assert [room.name for room in selectors.room_list_recent()] == ["busy", "middling", "quiet"]
