"""An htmx request that finds the session gone gets a note out of band, never a log-in page in the page."""

import pytest

from tests.support.in_process import post_message

HTMX = {"HTTP_HX_REQUEST": "true", "HTTP_HX_CURRENT_URL": "http://testserver/chat/general/?before=9"}


@pytest.fixture
def message(room, alice):
    return post_message(room, alice, "mine")


def test_an_htmx_edit_after_signing_out_answers_a_note_and_swaps_nothing_in_place(client, message):
    answer = client.get(f"/chat/lobby-talk/messages/{message.pk}/edit/", **HTMX)

    assert answer.status_code == 200
    assert answer["HX-Reswap"] == "none"
    page = answer.content.decode()
    assert '<div id="page-note" class="page-note" role="alert" hx-swap-oob="true">' in page
    assert "You have been signed out." in page
    # Back to the page the reader was on (as htmx reports it), not to the fragment's URL.
    assert 'href="/accounts/login/?next=/chat/general/%3Fbefore%3D9"' in page
    assert '<div id="viewer-css" hx-swap-oob="delete">' in page
    assert "<form" not in page.split('id="account"')[0]  # no log-in form, no page in the page
    assert "<html" not in page


def test_an_htmx_post_after_signing_out_stores_nothing_and_answers_the_note(client, message):
    answer = client.post(f"/chat/lobby-talk/messages/{message.pk}/edit/", {"message": "changed"}, **HTMX)

    assert answer.status_code == 200 and answer["HX-Reswap"] == "none"
    message.refresh_from_db()
    assert message.body == "mine"


def test_without_htmx_the_log_in_redirect_stands(client, message):
    answer = client.get(f"/chat/lobby-talk/messages/{message.pk}/edit/")

    assert answer.status_code == 302
    assert answer["Location"].startswith("/accounts/login/?next=")


def test_a_foreign_current_url_is_not_followed_after_log_in(client, message):
    answer = client.get(
        f"/chat/lobby-talk/messages/{message.pk}/edit/",
        HTTP_HX_REQUEST="true",
        HTTP_HX_CURRENT_URL="https://evil.example/phish",
    )
    assert 'href="/accounts/login/?next=/"' in answer.content.decode()


def test_a_signed_in_htmx_request_is_untouched(client, alice, message):
    client.force_login(alice)
    answer = client.get(f"/chat/lobby-talk/messages/{message.pk}/edit/", **HTMX)

    assert answer.status_code == 200 and "HX-Reswap" not in answer
    assert "page-note" not in answer.content.decode()
