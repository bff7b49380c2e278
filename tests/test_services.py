"""Posting a message: validation, saving, idempotency, rendering once."""

from uuid import uuid4

import pytest
from django.core.exceptions import ValidationError

from chat import services
from chat.models import Message, Room


def post(room, author, text, token=None):
    return services.message_post(room=room, author=author, data={"message": text, "token": str(token or uuid4())})


def test_a_message_is_stored_stripped_and_rendered_once(room, alice):
    posted = post(room, alice, "  hello there  ")

    assert posted.created
    assert Message.objects.get().body == "hello there"
    assert f'id="message-{posted.message.pk}"' in posted.html
    assert 'hx-swap-oob="beforeend:#messages"' in posted.html


@pytest.mark.parametrize(
    ("text", "error"),
    [("", "Type a message first."), ("   \n\t ", "Type a message first."), ("x" * 2001, "at most 2000 characters")],
)
def test_empty_blank_and_oversized_bodies_are_refused_and_nothing_stored(room, alice, text, error):
    with pytest.raises(ValidationError) as raised:
        post(room, alice, text)

    assert any(error in message for message in raised.value.messages)
    assert not Message.objects.exists()


def test_a_body_of_exactly_2000_characters_is_accepted(room, alice):
    assert post(room, alice, "y" * 2000).created


def test_anonymous_users_cannot_post(room):
    from django.contrib.auth.models import AnonymousUser

    with pytest.raises(ValidationError, match="Log in to chat"):
        post(room, AnonymousUser(), "hi")
    assert not Message.objects.exists()


def test_a_resend_with_the_same_token_is_stored_once_and_answered_as_success(room, alice):
    token = uuid4()
    first = post(room, alice, "only once", token)
    second = post(room, alice, "only once", token)

    assert first.created and not second.created
    assert second.message.pk == first.message.pk
    assert Message.objects.count() == 1


def test_the_same_token_from_another_author_is_another_message(room, alice, bob):
    token = uuid4()
    post(room, alice, "mine", token)
    post(room, bob, "mine too", token)

    assert Message.objects.count() == 2


def test_a_missing_or_malformed_token_is_refused(room, alice):
    with pytest.raises(ValidationError, match="stale"):
        services.message_post(room=room, author=alice, data={"message": "hi"})
    with pytest.raises(ValidationError):
        services.message_post(room=room, author=alice, data={"message": "hi", "token": "not-a-uuid"})
    assert not Message.objects.exists()


def test_posting_moves_the_room_to_the_top_of_the_lobby(alice):
    older, newer = Room.objects.create(name="older"), Room.objects.create(name="newer")
    post(older, alice, "bump")

    assert list(Room.objects.order_by("-last_activity").values_list("name", flat=True)) == ["older", "newer"]
    assert newer.last_activity < Room.objects.get(name="older").last_activity


def test_the_rendered_fragment_escapes_html(room, alice):
    posted = post(room, alice, "<script>alert(1)</script>")

    assert "<script>" not in posted.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in posted.html


def test_room_get_or_create_creates_once(db):
    first = services.room_get_or_create(name="new-room")
    assert services.room_get_or_create(name="new-room").pk == first.pk
    assert Room.objects.count() == 1


def test_a_save_that_fails_stores_nothing_and_says_so(room, alice, monkeypatch):
    from django.db import OperationalError

    def locked(**fields):
        raise OperationalError("database is locked")

    monkeypatch.setattr(Message.objects, "create", locked)

    with pytest.raises(ValidationError, match="could not be saved"):
        post(room, alice, "lost?")
    assert not Message.objects.exists()
    room.refresh_from_db()
    assert room.last_seq == 0


def test_a_different_text_sent_before_the_form_was_renewed_is_a_new_message(room, alice):
    token = uuid4()
    first = post(room, alice, "first thought", token)
    second = post(room, alice, "second thought", token)

    assert first.created and second.created
    assert [m.body for m in Message.objects.order_by("seq")] == ["first thought", "second thought"]
