"""A frame's CSRF token (chat/realtime/post_auth.py): checked by Django's CsrfViewMiddleware against the
socket's `csrftoken` cookie, as a form post is. Tokens come from Django's public `get_token`."""

import pytest
from django.http import HttpRequest
from django.middleware.csrf import get_token

from chat.realtime.post_auth import csrf_token_valid


def new_secret() -> tuple[str, HttpRequest]:
    """A fresh CSRF secret (what the cookie holds), and the request that minted it for more tokens."""
    request = HttpRequest()
    get_token(request)
    return request.META["CSRF_COOKIE"], request


def socket_scope(cookie: str | None, origin: bytes = b"http://localhost") -> dict:
    cookies = {} if cookie is None else {"csrftoken": cookie}
    headers = [(b"host", b"localhost"), (b"origin", origin)]
    return {"type": "websocket", "path": "/ws/chat/general/", "headers": headers, "cookies": cookies}


def form_frame(token) -> dict:
    return {"message": "hello", "csrfmiddlewaretoken": token}


def header_frame(token) -> dict:
    return {"message": "hello", "HEADERS": {"X-CSRFToken": token, "HX-Request": "true"}}


@pytest.mark.parametrize("frame", [form_frame, header_frame], ids=["form field", "X-CSRFToken header"])
def test_a_token_masked_from_the_sockets_cookie_passes(frame):
    secret, minted = new_secret()

    assert csrf_token_valid(socket_scope(secret), frame(get_token(minted)))
    assert csrf_token_valid(socket_scope(secret), frame(get_token(minted)))  # every masking of it
    assert csrf_token_valid(socket_scope(secret), frame(secret))  # unmasked, as Django also accepts


@pytest.mark.parametrize("frame", [form_frame, header_frame], ids=["form field", "X-CSRFToken header"])
def test_a_token_for_another_cookie_fails(frame):
    secret, _ = new_secret()
    _, other = new_secret()

    assert not csrf_token_valid(socket_scope(secret), frame(get_token(other)))


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("", id="empty"),
        pytest.param("x", id="too short"),
        pytest.param("a" * 63, id="63 characters"),
        pytest.param("!" * 64, id="not alphanumeric"),
        pytest.param("é" * 64, id="non-ascii"),
        pytest.param(None, id="missing"),
        pytest.param(12345, id="a number"),
        pytest.param(["a" * 64], id="a list"),
    ],
)
def test_a_malformed_or_missing_token_fails(token):
    secret, _ = new_secret()

    assert not csrf_token_valid(socket_scope(secret), form_frame(token))
    assert not csrf_token_valid(socket_scope(secret), header_frame(token))


def test_an_old_style_masked_64_character_cookie_still_works():
    secret, minted = new_secret()
    old_style_cookie = get_token(minted)  # a cookie set before Django 4.1 held a masked token
    assert len(old_style_cookie) == 64

    assert csrf_token_valid(socket_scope(old_style_cookie), form_frame(get_token(minted)))
    assert csrf_token_valid(socket_scope(old_style_cookie), header_frame(secret))
    _, other = new_secret()
    assert not csrf_token_valid(socket_scope(old_style_cookie), form_frame(get_token(other)))


@pytest.mark.parametrize("cookie", [None, "", "short", "!" * 32], ids=["no cookie", "empty", "short", "bad chars"])
def test_a_missing_or_malformed_cookie_fails(cookie):
    _, minted = new_secret()

    assert not csrf_token_valid(socket_scope(cookie), form_frame(get_token(minted)))


def test_the_form_field_wins_over_the_header_as_in_a_form_post():
    secret, minted = new_secret()
    _, other = new_secret()
    frame = {"csrfmiddlewaretoken": get_token(other), "HEADERS": {"X-CSRFToken": get_token(minted)}}

    assert not csrf_token_valid(socket_scope(secret), frame)
    assert csrf_token_valid(socket_scope(secret), {**frame, "csrfmiddlewaretoken": ""})  # empty: the header counts


def test_the_check_is_the_tokens_only_the_origin_is_the_handshakes():
    # The handshake holds the Origin to this site (chat/protection/origins.py); the per-frame check
    # does not repeat it, so an Origin in the scope changes nothing here.
    secret, minted = new_secret()

    assert csrf_token_valid(socket_scope(secret, origin=b"http://evil.example"), form_frame(get_token(minted)))


def test_the_cookie_header_is_read_when_the_scope_has_no_parsed_cookies():
    secret, minted = new_secret()
    scope = {"type": "websocket", "path": "/ws/chat/general/", "headers": [(b"cookie", f"csrftoken={secret}".encode())]}

    assert csrf_token_valid(scope, form_frame(get_token(minted)))
