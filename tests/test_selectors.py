"""Reads: history order and length, lobby order."""

from chat import selectors
from chat.models import Room
from tests.support.in_process import post_message


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


def test_per_room_seqs_and_the_newest_seq(room, alice):
    other = Room.objects.create(name="other")
    messages = make_messages(room, alice, 3)
    post_message(other, alice, "elsewhere")

    assert [m.seq for m in messages] == [1, 2, 3]
    assert selectors.room_seq(room_name=room.name) == 3
    assert selectors.room_seq(room_name="other") == 1
    assert selectors.room_seq(room_name=Room.objects.create(name="empty").name) == 0
    assert selectors.room_seq(room_name="never-visited") == 0


def test_pages_walk_back_and_forth_by_keyset(room, alice):
    messages = make_messages(room, alice, 120)
    ids = [m.pk for m in messages]

    latest = selectors.room_page(room=room)
    assert [m.pk for m in latest.messages] == ids[70:]
    assert latest.has_older and not latest.has_newer

    back = selectors.room_page(room=room, before=latest.first_id)
    assert [m.pk for m in back.messages] == ids[20:70]
    assert back.has_older and back.has_newer

    first = selectors.room_page(room=room, before=back.first_id)
    assert [m.pk for m in first.messages] == ids[:20]
    assert not first.has_older

    forward = selectors.room_page(room=room, after=first.last_id)
    assert [m.pk for m in forward.messages] == ids[20:70]
    assert forward.has_newer
    assert not selectors.room_page(room=room, after=ids[100]).has_newer

    between = selectors.room_page(room=room, before=ids[110], after=ids[5])
    assert [m.pk for m in between.messages] == ids[60:110]
    assert between.has_older
    assert not selectors.room_page(room=room, before=ids[50], after=ids[5]).has_older


def test_a_page_never_uses_offset(room, alice, django_assert_num_queries):
    make_messages(room, alice, 60)
    with django_assert_num_queries(1) as queries:
        selectors.room_page(room=room, before=55)
    sql = queries.captured_queries[0]["sql"].upper()
    assert "OFFSET" not in sql or "OFFSET 0" in sql
    assert '"ID" < 55' in sql.replace("`", '"') or 'ID" < 55' in sql


def test_changes_since_a_seq(room, alice):
    make_messages(room, alice, 10)

    changes = selectors.room_changes_since(room_name=room.name, seq=4, limit=3)

    assert [m.seq for m in changes] == [5, 6, 7, 8]  # three, and one more to show there are more
    assert [m.seq for m in selectors.room_changes_since(room_name=room.name, seq=0, limit=50)] == list(range(1, 11))
    assert selectors.room_changes_since(room_name=room.name, seq=10, limit=50) == []


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
        Room.objects.filter(name=name).update(last_activity=now - timedelta(minutes=offset), last_seq=1)

    assert [room.name for room in selectors.room_list_recent()] == ["busy", "middling", "quiet"]
