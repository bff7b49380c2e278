"""Posting a message: validation, saving, idempotency, rendering once."""

from uuid import uuid4

import pytest
from django.core.exceptions import ValidationError

from chat import fragments, services
from chat.models import Message, Room


def post(room, author, text, token=None):
    return services.message_post(room=room, author=author, data={"message": text, "token": str(token or uuid4())})


def broadcast_html(posted, zone_name="UTC"):
    """The frame members get for a posted message, built from its group event as a consumer does."""
    return fragments.message_appended(event=services.message_event(posted=posted), zone_name=zone_name)


def test_a_message_is_stored_stripped_and_its_broadcast_appends_it(room, alice):
    posted = post(room, alice, "  hello there  ")

    assert posted.created
    assert Message.objects.get().body == "hello there"
    html = broadcast_html(posted)
    assert f'id="message-{posted.message.pk}"' in html
    assert 'hx-swap-oob="beforeend:#messages"' in html
    assert f'id="sync-after" name="after" value="{posted.message.seq}" hx-swap-oob="true"' in html


def test_the_broadcast_is_rendered_once_per_time_zone_not_per_recipient(room, alice, django_assert_num_queries):
    posted = post(room, alice, "render me once")
    event = services.message_event(posted=posted)

    # Built from the event alone (no query), and the same object for every reader of a zone.
    with django_assert_num_queries(0):
        utc = [fragments.message_appended(event=event, zone_name="UTC") for _ in range(3)]
        tokyo = fragments.message_appended(event=event, zone_name="Asia/Tokyo")
    assert utc[0] is utc[1] is utc[2]
    assert tokyo != utc[0]


def test_the_event_carries_when_the_previous_message_was_posted(room, alice):
    first = post(room, alice, "first")
    second = post(room, alice, "second")

    assert first.previous is None
    assert second.previous == Message.objects.get(pk=first.message.pk).created
    assert services.message_event(posted=second)["previous"] == second.previous.isoformat()


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", "Type a message first."),
        ("   \n\t ", "Type a message first."),
        ("x" * 2001, "at most 2000 characters"),
        ("\u200b\u200b", "Type a message first."),  # zero-width spaces
        ("\u200d \ufeff\u2060\u00ad", "Type a message first."),  # joiner, BOM, word joiner, soft hyphen
        ("\u3164\u2800", "Type a message first."),  # Hangul filler, braille blank
        ("\u202e\u202c", "Type a message first."),  # bidi controls
        ("line\n" * 51, "at most 50 lines (this one has 51)"),
        ("a\r\n" * 60, "at most 50 lines"),
    ],
)
def test_empty_blank_and_oversized_bodies_are_refused_and_nothing_stored(room, alice, text, error):
    with pytest.raises(ValidationError) as raised:
        post(room, alice, text)

    assert any(error in message for message in raised.value.messages)
    assert not Message.objects.exists()


def test_a_body_of_exactly_2000_characters_is_accepted(room, alice):
    assert post(room, alice, "y" * 2000).created


def test_fifty_lines_and_visible_text_around_invisible_characters_are_accepted(room, alice):
    assert post(room, alice, "\n".join(["line"] * 50)).created
    assert post(room, alice, "\u200bhi\u200b").created
    assert post(room, alice, "👍🏽").created  # an emoji with a skin-tone modifier is visible
    assert Message.objects.count() == 3


def test_validation_touches_no_database(alice, django_assert_num_queries):
    with django_assert_num_queries(0):
        draft = services.message_validate(author=alice, data={"message": " hi ", "token": str(uuid4())})
    assert draft.body == "hi"


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
    html = broadcast_html(post(room, alice, "<script>alert(1)</script>"))

    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_a_users_time_zone_is_saved_once_per_user(alice):
    from chat import selectors

    assert selectors.user_time_zone(user=alice) == "UTC"
    services.time_zone_set(user=alice, time_zone="Europe/Paris")
    services.time_zone_set(user=alice, time_zone="Asia/Tokyo")

    assert selectors.user_time_zone(user=alice) == "Asia/Tokyo"


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


def test_the_composers_several_lines_mode_posts_its_text_area(room, alice):
    data = {"message": "left in the hidden input", "lines": "one\ntwo", "multiline": "1", "token": str(uuid4())}
    assert services.message_post(room=room, author=alice, data=data).message.body == "one\ntwo"

    one_line = {"message": "one line", "lines": "not ticked", "token": str(uuid4())}
    assert services.message_post(room=room, author=alice, data=one_line).message.body == "one line"

    with pytest.raises(ValidationError):
        services.message_post(room=room, author=alice, data={"message": "x", "lines": " ", "multiline": "1"})
