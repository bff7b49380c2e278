"""Search results on the database the run uses (SQLite here; PostgreSQL in CI's second pass): ranking,
phrases, exclusion, edits, deletes, removed users, and the rooms a reader may read."""

import pytest
from django.contrib.auth.models import AnonymousUser, User
from django.db import connection

from chat import services
from chat.models import Room
from chat.search.query import QueryError
from chat.search.results import RESULTS_PER_PAGE, message_search
from tests.support.in_process import post_message

pytestmark = pytest.mark.django_db


def found(text: str, user=None, room=None, page: int = 1) -> list[str]:
    results = message_search(text=text, user=user or AnonymousUser(), room=room, page=page).results
    return [result.message.body for result in results]


def test_words_are_found_in_any_form_and_all_of_them_are_needed(room, alice):
    post_message(room, alice, "We are meeting on Thursday about the budget")
    post_message(room, alice, "The budget is late")
    post_message(room, alice, "Nothing to see here")
    assert found("meetings") == ["We are meeting on Thursday about the budget"]
    assert found("budget thursday") == ["We are meeting on Thursday about the budget"]
    assert sorted(found("budget")) == ["The budget is late", "We are meeting on Thursday about the budget"]
    assert found("unicorn") == []


def test_a_quoted_phrase_needs_its_words_together_in_order(room, alice):
    post_message(room, alice, "release the new version tomorrow")
    post_message(room, alice, "the version is new")
    assert found('"new version"') == ["release the new version tomorrow"]
    assert sorted(found("new version")) == ["release the new version tomorrow", "the version is new"]


def test_a_minus_leaves_out_messages_with_that_word_or_phrase(room, alice):
    post_message(room, alice, "lunch at noon")
    post_message(room, alice, "lunch at the pizza place")
    post_message(room, alice, "lunch with the pizza team later")
    assert found("lunch -pizza") == ["lunch at noon"]
    assert sorted(found('lunch -"pizza place"')) == ["lunch at noon", "lunch with the pizza team later"]


def test_more_relevant_first_then_newest_first(room, alice):
    post_message(room, alice, "deploy")
    post_message(room, alice, "deploy deploy deploy, deploy again: deploy")
    post_message(room, alice, "deploy")
    bodies = found("deploy")
    assert bodies[0] == "deploy deploy deploy, deploy again: deploy"
    first, second = message_search(text="deploy", user=AnonymousUser()).results[1:3]
    assert first.message.pk > second.message.pk  # equal rank: the newer one first


def test_snippets_mark_the_matched_words_only(room, alice):
    post_message(room, alice, "The <b>parser</b> broke & we fixed the parsers")
    [result] = message_search(text="parser", user=AnonymousUser()).results
    marked = [text for text, is_match in result.snippet if is_match]
    assert marked and all(text.lower().startswith("parser") for text in marked)
    assert "".join(text for text, _ in result.snippet) == "The <b>parser</b> broke & we fixed the parsers"


def test_a_message_cannot_forge_a_match_with_the_marker_characters(room, alice):
    post_message(room, alice, "budget \ue000forged\ue001 plan")
    [result] = message_search(text="budget", user=AnonymousUser()).results
    assert [text for text, is_match in result.snippet if is_match] == ["budget"]
    assert "".join(text for text, _ in result.snippet) == "budget forged plan"


def test_each_result_of_a_page_has_its_own_snippet(room, alice):
    for n in range(25):
        post_message(room, alice, f"message {n} about the quarterly roadmap review")
    results = message_search(text='"roadmap review"', user=AnonymousUser()).results
    assert len(results) == RESULTS_PER_PAGE
    for result in results:
        assert "".join(text for text, _ in result.snippet) == result.message.body
        assert [text for text, is_match in result.snippet if is_match] in (["roadmap", "review"], ["roadmap review"])


def test_an_edited_message_is_found_by_its_new_text_only(room, alice):
    message = post_message(room, alice, "the old wording")
    services.message_edit(room=room, message_id=message.pk, editor=alice, data={"message": "a fresh phrasing"})
    assert found("wording") == []
    assert found("fresh phrasing") == ["a fresh phrasing"]


def test_a_deleted_message_is_never_found(room, alice):
    message = post_message(room, alice, "confidential figures")
    services.message_delete(room=room, message_id=message.pk, actor=alice)
    assert found("confidential") == []


def test_a_removed_users_deleted_messages_are_gone(room, alice, bob):
    staff = User.objects.create_user("staff", is_staff=True)
    post_message(room, bob, "spam spam wonderful spam")
    post_message(room, alice, "I like spam")
    services.user_deactivate(user=bob, by=staff, delete_messages=True)
    assert found("spam") == ["I like spam"]


def test_private_rooms_and_direct_messages_are_searched_by_their_members_only(room, alice, bob):
    carol = User.objects.create_user("carol")
    post_message(room, carol, "public roadmap")
    private = services.room_create(name="plans", creator=alice, private=True)
    post_message(private, alice, "secret roadmap")
    direct = services.direct_room_get_or_create(user=alice, other=carol)
    post_message(direct, carol, "direct roadmap")
    assert sorted(found("roadmap", user=alice)) == ["direct roadmap", "public roadmap", "secret roadmap"]
    assert sorted(found("roadmap", user=carol)) == ["direct roadmap", "public roadmap"]
    assert found("roadmap", user=bob) == ["public roadmap"]
    assert found("roadmap") == ["public roadmap"]
    services.member_add(room=private, by=alice, username="bob")
    assert sorted(found("roadmap", user=bob)) == ["public roadmap", "secret roadmap"]


def test_without_public_reading_a_visitor_finds_nothing(room, alice, settings):
    settings.CHAT_PUBLIC_READ = False
    post_message(room, alice, "public roadmap")
    assert found("roadmap") == []
    assert found("roadmap", user=alice) == ["public roadmap"]


def test_within_one_room(room, alice):
    other = Room.objects.create(name="elsewhere")
    post_message(room, alice, "standup notes")
    post_message(other, alice, "standup elsewhere")
    assert found("standup", room=room) == ["standup notes"]
    assert found("standup", room=Room(name="never-posted")) == []


def test_pages_follow_one_another_without_repeats(room, alice):
    for n in range(RESULTS_PER_PAGE + 5):
        post_message(room, alice, f"report number {n}")
    first = message_search(text="report", user=AnonymousUser())
    second = message_search(text="report", user=AnonymousUser(), page=2)
    assert first.has_next and not second.has_next
    ids = [r.message.pk for r in first.results + second.results]
    assert len(ids) == len(set(ids)) == RESULTS_PER_PAGE + 5


def test_a_word_in_very_many_messages_ranks_its_newest_matches(room, alice, monkeypatch):
    monkeypatch.setattr("chat.search.results.CANDIDATES", 3)
    post_message(room, alice, "status status status status")  # the best match, but older than 3 others
    for n in range(3):
        post_message(room, alice, f"status {n}")
    post_message(room, alice, "unrelated chatter")  # newer, and no match: not one of the candidates
    assert found("status") == ["status 2", "status 1", "status 0"]


@pytest.mark.parametrize("text", ["a", " ", "x" * 201, "---", '"" -"x"', "-only"])
def test_no_search_gets_a_reason(text):
    with pytest.raises(QueryError):
        message_search(text=text, user=AnonymousUser())


def test_the_index_follows_edits_in_the_database_itself(room, alice):
    """The index is kept by the database (FTS5 triggers / a generated column), not by the Python that saves."""
    message = post_message(room, alice, "original text")
    type(message).objects.filter(pk=message.pk).update(body="replaced words")
    assert found("original") == []
    assert found("replaced") == ["replaced words"]
    assert connection.vendor in {"sqlite", "postgresql"}
