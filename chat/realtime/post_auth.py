"""Who may post on a socket: its session, re-read on every post, and the frame's CSRF token.

A socket is authenticated once, at its handshake, and may stay open for days. So every post
re-reads the session (it still exists, its user is active, its password hash still matches:
Django's own `get_user`) and checks the frame's CSRF token against the socket's `csrftoken`
cookie with Django's own CsrfViewMiddleware. Sessions that end also close their sockets at once:
chat/realtime/session_notices.py.
"""

from importlib import import_module
from types import SimpleNamespace
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user, get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest, QueryDict
from django.http.cookie import parse_cookie
from django.middleware.csrf import CsrfViewMiddleware

STALE_PAGE = "This page has expired: reload it to send messages."


class SignedOut(Exception):
    """The socket's session has ended: the page is told, and the socket closed for good."""


def scope_cookies(scope: dict[str, Any]) -> dict[str, str]:
    """The handshake's cookies (Channels' CookieMiddleware puts them in the scope; parsed here otherwise)."""
    if "cookies" in scope:
        return scope["cookies"]
    header = b"; ".join(value for name, value in scope.get("headers", []) if name == b"cookie")
    return parse_cookie(header.decode("latin-1"))


def scope_session_key(scope: dict[str, Any]) -> str:
    return scope_cookies(scope).get(settings.SESSION_COOKIE_NAME, "")


def session_user(scope: dict[str, Any]) -> AbstractBaseUser | None:
    """The socket's user if its session is still theirs: it exists, the user is active, and the
    password has not changed since (Django's session auth hash). Synchronous: it queries."""
    connected = scope.get("user")
    session_key = scope_session_key(scope)
    if connected is None or not connected.is_authenticated or not session_key:
        return None
    session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    # The very function Django's AuthenticationMiddleware uses (it also flushes a session whose hash is stale).
    user = get_user(SimpleNamespace(session=session))
    if not user.is_authenticated or user.pk != connected.pk:
        return None
    return user


def user_removed(scope: dict[str, Any]) -> bool:
    """Whether the socket's user was removed (deactivated or deleted), not just signed out. Synchronous."""
    connected = scope.get("user")
    if connected is None or not connected.is_authenticated:
        return False
    return not get_user_model().objects.filter(pk=connected.pk, is_active=True).exists()


_csrf = CsrfViewMiddleware(lambda request: None)  # only its process_view runs, on a request of our own


def _post(request: HttpRequest) -> None:
    """The view a frame's check stands for: a post, not exempt from CSRF."""


def csrf_token_valid(scope: dict[str, Any], data: dict[str, Any]) -> bool:
    """The frame's `csrfmiddlewaretoken` (htmx sends the form's), or else the `X-CSRFToken` of the
    htmx headers every frame carries, against the socket's `csrftoken` cookie: Django's
    CsrfViewMiddleware checks a POST that carries them as a form post would (the cookie's format,
    an old-style masked cookie, the token's format and its match; a refusal is logged as Django logs one).

    The request carries no Origin, Referer or proxy scheme header, so the middleware checks only the
    token: a socket's frames have no headers of their own, and the handshake's Origin (the same for
    the socket's whole life) was already held to exactly this site by chat/protection/origins.py.
    """
    headers = data.get("HEADERS")
    field = data.get("csrfmiddlewaretoken")
    token = field or (headers.get("X-CSRFToken") if isinstance(headers, dict) else None)
    if not isinstance(token, str):
        return False
    request = HttpRequest()
    request.method = "POST"
    request.path = request.path_info = scope.get("path", "")
    request.COOKIES = scope_cookies(scope)
    if field:
        request.POST = QueryDict(mutable=True)
        request.POST["csrfmiddlewaretoken"] = token
    else:
        request.META[settings.CSRF_HEADER_NAME] = token
    return _csrf.process_view(request, _post, (), {}) is None


def current_user(scope: dict[str, Any]) -> AbstractBaseUser | None:
    """Who posts from this socket: None if it is anonymous (the service answers "Log in to chat.").

    Raises SignedOut if the socket was signed in and its session no longer holds. Synchronous: it queries.
    """
    connected = scope.get("user")
    if connected is None or not connected.is_authenticated:
        return None
    user = session_user(scope)
    if user is None:
        raise SignedOut
    return user
