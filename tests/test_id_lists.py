"""Reads for thousands of readers pass their ids as one parameter (chat/id_lists.py), with the same results."""

from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from chat import selectors
from chat.id_lists import MANY
from chat.models import Membership, ReadMark, Room
from tests.support.in_process import post_message


def test_counts_for_many_readers_are_the_counts_of_each_read_alone(alice):
    room, private = Room.objects.create(name="general"), Room.objects.create(name="team", kind=Room.PRIVATE)
    readers = User.objects.bulk_create(User(username=f"reader{n}") for n in range(MANY + 30))
    post_message(room, alice, "before")
    ReadMark.objects.bulk_create(ReadMark(user=reader, room=room, seq=n % 2) for n, reader in enumerate(readers))
    Membership.objects.bulk_create(Membership(user=user, room=private) for user in [alice, *readers[::7]])
    post_message(private, alice, f"@{readers[7].username} and @{readers[14].username}")
    ReadMark.objects.create(user=readers[14], room=private, seq=1)
    for n in range(3):
        post_message(room, alice, f"after {n} @{readers[n].username}")
    ids = {reader.pk for reader in readers}
    rooms = [room.id, private.id]

    with CaptureQueriesContext(connection) as queries:
        unread = selectors.unread_counts(user_ids=ids, room_ids=rooms)
        mentioned = selectors.mention_counts(user_ids=ids, room_ids=rooms)
        listed = selectors.lobby_rooms(user_ids=ids)

    assert unread == {key: n for pk in ids for key, n in selectors.unread_counts(user_ids={pk}, room_ids=rooms).items()}
    assert mentioned == {
        key: n for pk in ids for key, n in selectors.mention_counts(user_ids={pk}, room_ids=rooms).items()
    }
    assert len(unread) == len(readers) and mentioned[(readers[0].pk, room.id)] == 1
    assert mentioned[(readers[7].pk, private.id)] == 1 and (readers[14].pk, private.id) not in mentioned
    assert [r.name for r in listed] == ["general", "team"]
    assert [r.name for r in selectors.lobby_rooms(user_ids={readers[1].pk})] == ["general"]
    # Each of those reads passed the readers' ids as one parameter, not one placeholder each.
    assert all(query["sql"].count(str(readers[-1].pk)) <= 1 for query in queries.captured_queries)
    assert sum(("json_each" in q["sql"]) or ("unnest" in q["sql"]) for q in queries.captured_queries) >= 3


def test_a_few_ids_stay_a_plain_list(alice, room):
    post_message(room, alice, "hello")
    bob = User.objects.create(username="bob2")
    ReadMark.objects.create(user=bob, room=room, seq=0)
    with CaptureQueriesContext(connection) as queries:
        assert selectors.unread_counts(user_ids={bob.pk, alice.pk}, room_ids=[room.id]) == {(bob.pk, room.id): 1}
    assert not any("json_each" in q["sql"] or "unnest" in q["sql"] for q in queries.captured_queries)
