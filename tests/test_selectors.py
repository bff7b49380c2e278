"""Reads: history order and length, lobby order."""

from chat import selectors
from chat.models import Room

from .conftest import post_message


def make_messages(room, author, count):
    return [post_message(room, author, f"m{i}") for i in range(count)]


def test_history_is_the_latest_50_oldest_first(room, alice):
    make_messages(room, alice, 60)

    history = selectors.room_history(room=room)

    assert [m.body for m in history] == [f"m{i}" for i in range(10, 60)]


def test_history_of_one_room_excludes_other_rooms(room, alice):
    other = Room.objects.create(name="other")
    make_messages(other, alice, 3)

    assert selectors.room_history(room=room) == []


def test_the_newest_message_and_per_room_seqs(room, alice):
    other = Room.objects.create(name="other")
    messages = make_messages(room, alice, 3)
    post_message(other, alice, "elsewhere")

    newest = selectors.room_newest_message(room_name=room.name)

    assert newest.pk == messages[-1].pk
    assert newest.room_id == room.pk
    assert [m.seq for m in messages] == [1, 2, 3]
    assert selectors.room_newest_message(room_name="other").seq == 1
    assert selectors.room_newest_message(room_name=Room.objects.create(name="empty").name) is None
    assert selectors.room_newest_message(room_name="never-visited") is None


def test_newest_seq_of_several_rooms_in_one_query(room, alice, django_assert_num_queries):
    other = Room.objects.create(name="other")
    Room.objects.create(name="silent")
    make_messages(room, alice, 3)
    post_message(other, alice, "one")

    with django_assert_num_queries(1):
        newest = selectors.rooms_newest_seq(names={room.name, "other", "silent", "unknown"})

    assert newest == {room.name: 3, "other": 1}


def test_lobby_lists_most_recently_active_first(db):
    from datetime import timedelta

    from django.utils import timezone

    now = timezone.now()
    for offset, name in [(3, "quiet"), (1, "busy"), (2, "middling")]:
        Room.objects.create(name=name)
        Room.objects.filter(name=name).update(last_activity=now - timedelta(minutes=offset))

    assert [room.name for room in selectors.room_list_recent()] == ["busy", "middling", "quiet"]
