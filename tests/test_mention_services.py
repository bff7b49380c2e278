"""Mentions at save (chat/services.py): who is mentioned, kept right on edit, delete and removal, bounded, and
read by the inbox, the notices and the lobby's counts (chat/selectors.py)."""

from uuid import uuid4

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError

from chat import selectors, services
from chat.models import Membership, Mention, Message, Room
from chat.realtime.session_notices import SESSIONS_GROUP


@pytest.fixture
def people(db) -> dict[str, User]:
    return {name: User.objects.create_user(name, password="pw-for-tests") for name in ("ann", "ben", "cy", "dee")}


def post(room: Room, author: User, text: str) -> services.Posted:
    return services.message_post(room=room, author=author, data={"message": text, "token": str(uuid4())})


def edit(message: Message, editor: User, text: str) -> services.Change | None:
    return services.message_edit(room=message.room, message_id=message.pk, editor=editor, data={"message": text})


def mentioned(message: Message) -> set[str]:
    return set(Mention.objects.filter(message=message).values_list("user__username", flat=True))


def test_a_post_stores_who_it_mentions_and_whom_to_tell(room, people):
    posted = post(room, people["ann"], "@ben and @CY, ask @nobody (not ann@example.com)")

    assert mentioned(posted.message) == {"ben", "cy"}
    assert posted.message.mentioned == [[people["ben"].pk, "ben"], [people["cy"].pk, "cy"]]
    assert set(posted.notify) == {people["ben"].pk, people["cy"].pk}
    assert Message.objects.get().mentioned == posted.message.mentioned


def test_mentioning_yourself_renders_but_tells_nobody(room, people):
    posted = post(room, people["ann"], "note to @ann")

    assert posted.message.mentioned == [[people["ann"].pk, "ann"]]
    assert posted.notify == () and not Mention.objects.exists()


def test_an_inactive_user_is_not_mentioned(room, people):
    User.objects.filter(username="ben").update(is_active=False)

    assert post(room, people["ann"], "@ben?").message.mentioned == []


def test_every_name_is_resolved_in_one_query(room, people, django_assert_num_queries):
    body = " ".join(f"@{name}." for name in [*people, "x", "y", "z"])
    with django_assert_num_queries(1):
        result = services.mentions_resolve(room=room, author=people["ann"], body=body)
    assert sorted(result.notify) == sorted(p.pk for n, p in people.items() if n != "ann")


def test_in_a_private_room_only_members_are_mentioned_and_told(people):
    room = services.room_create(name="hush", creator=people["ann"], private=True)
    services.member_add(room=room, by=people["ann"], username="ben")

    posted = post(room, people["ann"], "@ben @cy @dee")

    assert mentioned(posted.message) == {"ben"}
    assert posted.message.mentioned == [[people["ben"].pk, "ben"]]
    assert posted.notify == (people["ben"].pk,)


def test_in_a_direct_conversation_only_the_other_person_is_told(people):
    room = services.direct_room_get_or_create(user=people["ann"], other=people["ben"])

    posted = post(room, people["ann"], "@ben, @cy should see this")

    assert posted.notify == (people["ben"].pk,)


def test_a_non_member_of_a_private_room_learns_nothing_even_from_the_cap(people, django_user_model):
    room = services.room_create(name="hush", creator=people["ann"], private=True)
    crowd = [django_user_model.objects.create_user(f"m{n}") for n in range(25)]
    Membership.objects.bulk_create(Membership(room=room, user=user) for user in crowd)

    with pytest.raises(services.NotAMember):
        post(room, people["ben"], " ".join(f"@{user.username}" for user in crowd))


def test_twenty_people_are_fine_twenty_one_are_refused_and_nothing_is_stored(room, people, django_user_model):
    crowd = [django_user_model.objects.create_user(f"m{n}") for n in range(21)]
    twenty = " ".join(f"@{user.username}" for user in crowd[:20])

    assert len(post(room, people["ann"], f"{twenty} @ann @m0").notify) == 20  # yourself and repeats are free
    with pytest.raises(ValidationError) as refused:
        post(room, people["ann"], f"{twenty} @m20")

    assert refused.value.messages == ["A message can mention at most 20 people; this one mentions 21."]
    assert Message.objects.count() == 1 and Mention.objects.count() == 20


def test_a_new_rooms_first_message_over_the_cap_does_not_create_the_room(people, django_user_model):
    crowd = [django_user_model.objects.create_user(f"m{n}") for n in range(21)]
    with pytest.raises(ValidationError):
        post(Room(name="fresh"), people["ann"], " ".join(f"@{user.username}" for user in crowd))
    assert not Room.objects.filter(name="fresh").exists()


def test_an_edit_that_adds_a_mention_tells_only_the_new_person_and_one_that_removes_it_withdraws_it(room, people):
    message = post(room, people["ann"], "@ben hi").message
    services.mention_seen(user=people["ben"], message_id=message.pk)

    added = edit(message, people["ann"], "@ben and @cy hi")
    assert added.notify == (people["cy"].pk,)
    assert added.event["mentioned"] == [[people["ben"].pk, "ben"], [people["cy"].pk, "cy"]]
    assert Mention.objects.get(user=people["ben"]).seen is not None  # ben's stays as it was

    again = edit(message, people["ann"], "@ben and @cy hello")
    assert again.notify == ()  # told once

    removed = edit(message, people["ann"], "just @cy")
    assert removed.notify == () and removed.withdraw == (people["ben"].pk,)
    assert mentioned(message) == {"cy"}
    assert Message.objects.get(pk=message.pk).mentioned == [[people["cy"].pk, "cy"]]


def test_an_edit_over_the_cap_is_refused_and_changes_nothing(room, people, django_user_model):
    message = post(room, people["ann"], "@ben").message
    crowd = [django_user_model.objects.create_user(f"m{n}") for n in range(21)]

    with pytest.raises(ValidationError):
        edit(message, people["ann"], " ".join(f"@{user.username}" for user in crowd))

    assert Message.objects.get(pk=message.pk).body == "@ben" and mentioned(message) == {"ben"}


def test_a_delete_withdraws_its_mentions_from_the_inbox_and_the_counts(room, people):
    message = post(room, people["ann"], "@ben look").message
    assert selectors.mention_counts(user_ids={people["ben"].pk}, room_ids=[room.pk]) == {(people["ben"].pk, room.pk): 1}

    change = services.message_delete(room=room, message_id=message.pk, actor=people["ann"])

    assert change.withdraw == (people["ben"].pk,)
    assert not Mention.objects.exists()
    assert change.event["mentioned"] == [] and Message.objects.get(pk=message.pk).mentioned == []
    assert selectors.mention_inbox(user=people["ben"]).mentions == []
    assert selectors.mention_counts(user_ids={people["ben"].pk}, room_ids=[room.pk]) == {}


def test_removing_a_user_with_their_messages_withdraws_their_mentions(room, people):
    people["dee"].is_staff = True
    post(room, people["ann"], "@ben one")
    post(room, people["ann"], "@ben two")

    services.user_deactivate(user=people["ann"], by=people["dee"], delete_messages=True)

    assert not Mention.objects.exists()


def test_a_removed_member_no_longer_has_the_rooms_mentions(people):
    room = services.room_create(name="hush", creator=people["ann"], private=True)
    services.member_add(room=room, by=people["ann"], username="ben")
    post(room, people["ann"], "@ben in private")
    public = post(Room.objects.create(name="open"), people["ann"], "@ben in public").message
    assert len(selectors.mention_inbox(user=people["ben"]).mentions) == 2

    services.member_remove(room=room, by=people["ann"], user=people["ben"])

    assert [m.message_id for m in selectors.mention_inbox(user=people["ben"]).mentions] == [public.pk]
    assert selectors.mention_notices(user=people["ben"]) == [selectors.Notice(public.pk, "open", "ann", direct=False)]


def test_the_inbox_is_newest_first_by_keyset(room, people):
    ids = [post(room, people["ann"], f"@ben number {n}").message.pk for n in range(5)]

    first = selectors.mention_inbox(user=people["ben"], limit=2)
    second = selectors.mention_inbox(user=people["ben"], before=first.last_id, limit=2)
    third = selectors.mention_inbox(user=people["ben"], before=second.last_id, limit=2)

    assert [m.message_id for m in (*first.mentions, *second.mentions, *third.mentions)] == ids[::-1]
    assert first.has_older and second.has_older and not third.has_older


def test_a_mention_is_unread_until_seen_or_the_room_is_opened(room, people):
    ben = people["ben"]
    first = post(room, people["ann"], "@ben first").message
    second = post(room, people["ann"], "@ben second").message
    assert selectors.mention_counts(user_ids={ben.pk}, room_ids=[room.pk]) == {(ben.pk, room.pk): 2}

    assert services.mention_seen(user=ben, message_id=first.pk)
    assert selectors.mention_counts(user_ids={ben.pk}, room_ids=[room.pk]) == {(ben.pk, room.pk): 1}
    assert [n.message for n in selectors.mention_notices(user=ben)] == [second.pk]

    services.read_mark_open(user=ben, room=Room.objects.get(pk=room.pk))
    assert selectors.mention_counts(user_ids={ben.pk}, room_ids=[room.pk]) == {}
    assert selectors.mention_notices(user=ben) == []
    assert len(selectors.mention_inbox(user=ben).mentions) == 2  # the inbox keeps them


def test_seeing_someone_elses_mention_is_refused(room, people):
    message = post(room, people["ann"], "@ben").message

    assert not services.mention_seen(user=people["cy"], message_id=message.pk)
    assert Mention.objects.get().seen is None


@pytest.mark.django_db(transaction=True)
def test_one_notice_event_tells_everyone_a_message_mentions(people):
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    room = Room.objects.create(name="design")
    posted = post(room, people["ann"], "@ben @cy @ann")

    async def heard() -> dict:
        layer = get_channel_layer()
        channel = await layer.new_channel()
        await layer.group_add(SESSIONS_GROUP, channel)
        await services.message_broadcast(posted=posted)
        return await layer.receive(channel)

    assert async_to_sync(heard)() == {
        "type": "mention.notice",
        "users": [str(people["ben"].pk), str(people["cy"].pk)],
        "room": "design",
        "direct": False,
        "message": posted.message.pk,
        "author": "ann",
    }
