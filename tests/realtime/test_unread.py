"""Read marks: opening a room marks it read, and its page shows where the new messages start."""

from django.test import Client

from chat import selectors
from chat.models import ReadMark
from tests.support.in_process import post_message


def page_of(user, room) -> str:
    client = Client()
    client.force_login(user)
    return client.get(f"/chat/{room.name}/").content.decode()


def test_a_first_visit_shows_no_divider_and_marks_the_room_read(room, alice, bob):
    post_message(room, bob, "before")

    assert "New messages" not in page_of(alice, room)
    assert ReadMark.objects.get(user=alice, room=room).seq == 1


def test_the_divider_sits_above_the_first_message_by_others_not_seen(room, alice, bob):
    post_message(room, bob, "seen")
    page_of(alice, room)
    post_message(room, alice, "mine, from elsewhere")
    post_message(room, bob, "new one")
    post_message(room, bob, "new two")

    page = page_of(alice, room)

    assert page.count('id="unread-divider"') == 1
    assert page.index("mine, from elsewhere") < page.index("New messages") < page.index("new one")
    assert ReadMark.objects.get(user=alice, room=room).seq == 4
    assert "New messages" not in page_of(alice, room), "read now"


def test_counts_are_messages_by_others_after_the_mark(room, alice, bob):
    post_message(room, bob, "seen")
    page_of(alice, room)
    post_message(room, bob, "one")
    post_message(room, alice, "own")
    post_message(room, bob, "two")

    assert selectors.unread_counts(user_ids={alice.pk, bob.pk}, room_ids=[room.pk]) == {(alice.pk, room.pk): 2}


def test_anonymous_readers_and_old_history_pages_mark_nothing(client, room, alice, bob):
    post_message(room, bob, "hello")
    client.get(f"/chat/{room.name}/")
    assert not ReadMark.objects.exists()

    logged_in = Client()
    logged_in.force_login(alice)
    logged_in.get(f"/chat/{room.name}/?before=999")
    assert not ReadMark.objects.exists()


def test_edits_of_old_messages_and_deleted_messages_are_not_new(room, alice, bob):
    from chat import services

    old = post_message(room, bob, "old")
    page_of(alice, room)
    services.message_edit(room=room, message_id=old.pk, editor=bob, data={"message": "old, edited"})
    gone = post_message(room, bob, "soon gone")
    post_message(room, bob, "stays")
    services.message_delete(room=room, message_id=gone.pk, actor=bob)

    assert selectors.unread_counts(user_ids={alice.pk}, room_ids=[room.pk]) == {(alice.pk, room.pk): 1}
    [listed] = selectors.lobby_rooms()
    assert listed.preview == "stays"


def test_open_sockets_positions_move_marks_forward_and_insert_only_missing_ones(
    room, alice, bob, django_assert_num_queries
):
    from chat import services

    for text in ("one", "two", "three"):
        post_message(room, bob, text)
    services.read_marks_advance(positions={(alice.pk, room.name): 1})
    assert ReadMark.objects.get(user=alice, room=room).seq == 1

    # Alice's mark is known to exist: rooms, one update; bob's is new: one insert.
    with django_assert_num_queries(3):
        services.read_marks_advance(
            positions={(alice.pk, room.name): 3, (bob.pk, room.name): 3}, existing={(alice.pk, room.name)}
        )
    assert dict(ReadMark.objects.values_list("user__username", "seq")) == {"alice": 3, "bob": 3}

    services.read_marks_advance(positions={(alice.pk, room.name): 2}, existing={(alice.pk, room.name)})
    assert ReadMark.objects.get(user=alice, room=room).seq == 3  # never backwards
