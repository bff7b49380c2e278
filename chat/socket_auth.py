"""Who may post on a socket, re-checked on every post, and closing a user's sockets when a session ends.

A socket is authenticated once, at its handshake, and may stay open for days. So every post
re-reads the session (it still exists, its user is active, its password hash still matches:
Django's own `get_user`) and checks the frame's CSRF token against the socket's `csrftoken`
cookie with Django's own CSRF functions. Logging out, deactivating a user or changing their
password also tells that user's sockets at once, on every process: the signals below send
`session.ended` (logout: the socket of that session closes) or `session.check` (the user row
changed: every socket re-checks) to the group `sessions`, in which each process listens with one
channel while it has signed-in room sockets, and passes each notice on to its user's sockets there.
(Before, each signed-in socket joined a group of its user: with Redis, a subscription per socket.)
"""

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable
from importlib import import_module
from types import SimpleNamespace
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.auth import get_user
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.http.cookie import parse_cookie
from django.middleware.csrf import (
    CSRF_TOKEN_LENGTH,
    InvalidTokenFormat,
    _check_token_format,
    _does_token_match,
    _unmask_cipher_token,
)

from . import presence
from .loops import PerLoop

logger = logging.getLogger(__name__)

STALE_PAGE = "This page has expired: reload it to send messages."
# A hung layer must not hold up a logout or an admin save for long.
NOTIFY_TIMEOUT = 2.0
SESSIONS_GROUP = "sessions"
# The listener's channel joins its group again every REJOIN_INTERVAL (the list-based Redis layer
# ends group memberships after a day), and retries after RETRY_INTERVAL while the layer is down.
REJOIN_INTERVAL = 3600.0
RETRY_INTERVAL = 5.0


class SignedOut(Exception):
    """The socket's session has ended: the page is told, and the socket closed for good."""


def session_digest(session_key: str) -> str:
    """What travels over the channel layer instead of the session key itself."""
    return hashlib.sha256(session_key.encode()).hexdigest()[:32]


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


def csrf_token_valid(scope: dict[str, Any], data: dict[str, Any]) -> bool:
    """The frame's `csrfmiddlewaretoken` (htmx sends the form's), or else the `X-CSRFToken` of the
    htmx headers every frame carries, against the socket's `csrftoken` cookie, as Django's
    CsrfViewMiddleware checks a form post."""
    secret = scope_cookies(scope).get(settings.CSRF_COOKIE_NAME, "")
    headers = data.get("HEADERS")
    token = data.get("csrfmiddlewaretoken") or (headers.get("X-CSRFToken") if isinstance(headers, dict) else None)
    if not isinstance(token, str):
        return False
    try:
        _check_token_format(secret)
        _check_token_format(token)
    except InvalidTokenFormat:
        return False
    if len(secret) == CSRF_TOKEN_LENGTH:  # an old-style masked cookie
        secret = _unmask_cipher_token(secret)
    return _does_token_match(token, secret)


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


def notify(user_pk: Any, event: dict[str, Any]) -> None:
    """Send an event to every socket of a user, on every process. Never fails the caller."""

    async def send() -> None:
        notice = {**event, "user": str(user_pk)}
        await asyncio.wait_for(get_channel_layer().group_send(SESSIONS_GROUP, notice), NOTIFY_TIMEOUT)

    try:
        async_to_sync(send)()
    except Exception as exc:  # the per-post check still refuses the socket's next post
        logger.warning("telling the sockets of user %s about %s failed: %r", user_pk, event["type"], exc)


def on_logged_out(sender: Any, request: Any, user: AbstractBaseUser | None, **kwargs: Any) -> None:
    session_key = getattr(getattr(request, "session", None), "session_key", None)
    if user is not None and session_key:
        notify(user.pk, {"type": "session.ended", "session": session_digest(session_key)})


def on_user_saved(sender: Any, instance: AbstractBaseUser, created: bool, update_fields: Any, **kwargs: Any) -> None:
    # A log-in only stamps last_login; anything else (is_active, password, ...) may end sessions.
    if created or (update_fields is not None and set(update_fields) <= {"last_login"}):
        return
    sessions_changed(user_pk=instance.pk)


def sessions_changed(*, user_pk: Any) -> None:
    """The user's row changed in a way that may end their sessions (also for writes that bypass
    `save()`, such as a staff removal's update): once committed, each of their sockets re-checks."""
    transaction.on_commit(lambda: notify(user_pk, {"type": "session.check"}))


class Listener:
    """One event loop's listener for session notices: a channel in SESSIONS_GROUP, open while the loop
    has signed-in room sockets. Each notice goes on to the room sockets of its user here, through the
    layer, so that each socket handles it in order with its other messages."""

    def __init__(self) -> None:
        self.sockets = 0
        self.task: asyncio.Task | None = None

    def follow(self) -> None:
        self.sockets += 1
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self.listen(), name="session notices")

    def unfollow(self) -> None:
        self.sockets = max(self.sockets - 1, 0)
        if not self.sockets and self.task is not None:
            self.task.cancel()
            self.task = None

    async def listen(self) -> None:
        layer = get_channel_layer()
        channel = await retrying("opening the session notices' channel", layer.new_channel)
        member = asyncio.ensure_future(stay_in_group(layer, channel))
        try:
            while True:
                event = await retrying("receiving session notices", layer.receive, channel)
                for entry in presence.sockets_of_user(event.get("user")):
                    try:
                        await layer.send(entry.socket.channel_name, event)
                    except Exception as exc:  # the per-post check still refuses the socket's next post
                        logger.warning("passing on %s failed: %r", event.get("type"), exc)
        finally:
            member.cancel()
            try:
                await layer.group_discard(SESSIONS_GROUP, channel)
            except Exception as exc:
                logger.info("leaving %s failed: %r", SESSIONS_GROUP, exc)


async def retrying(doing: str, call: Callable[..., Awaitable[Any]], *args: Any) -> Any:
    """`call(*args)`, tried again every RETRY_INTERVAL while the layer is down."""
    while True:
        try:
            return await call(*args)
        except Exception as exc:
            logger.warning("%s failed, retrying: %r", doing, exc)
            await asyncio.sleep(RETRY_INTERVAL)


async def stay_in_group(layer: Any, channel: str) -> None:
    while True:
        await retrying(f"joining {SESSIONS_GROUP}", layer.group_add, SESSIONS_GROUP, channel)
        await asyncio.sleep(REJOIN_INTERVAL)


_listeners = PerLoop(Listener)


def listener() -> Listener:
    """The running event loop's listener."""
    return _listeners.get()
