"""Closing a user's sockets when a session ends, on every process; the same way reaches a user's pages with
their mentions (chat/realtime/mention_notices.py).

Logging out, deactivating a user or changing their password tells that user's sockets at once:
the signals below send `session.ended` (logout: the socket of that session closes) or
`session.check` (the user row changed: every socket re-checks) to the group `sessions`, in which
each process listens with one channel while it has signed-in room sockets, and passes each notice
on to its user's sockets there. A notice that is lost changes nothing for safety: every post
re-checks the session (chat/realtime/post_auth.py).
"""

import asyncio
import hashlib
import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from chat.realtime import db, post_auth
from chat.realtime.group_listener import GroupListener
from chat.realtime.loops import PerLoop
from chat.realtime.registry import Entry, sockets

logger = logging.getLogger(__name__)

# A hung layer must not hold up a logout or an admin save for long.
NOTIFY_TIMEOUT = 2.0
SESSIONS_GROUP = "sessions"


def session_digest(session_key: str) -> str:
    """What travels over the channel layer instead of the session key itself."""
    return hashlib.sha256(session_key.encode()).hexdigest()[:32]


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


class Listener(GroupListener):
    """One event loop's listener for session notices: a channel in SESSIONS_GROUP, open while the loop
    has signed-in room sockets. Each notice goes on to the room sockets of its user here, through the
    layer, so that each socket handles it in order with its other messages."""

    group = SESSIONS_GROUP
    name = "session notices"

    async def handle(self, layer: Any, event: dict[str, Any]) -> None:
        # A notice for one user ("user"), or for several at once ("users": a message's mentions).
        users = event["users"] if isinstance(event.get("users"), list) else [event.get("user")]
        targets = [
            target
            for user in users
            for target in (
                *(e.channel for e in sockets.of_user(user)),
                *(s.channel_name for s in sockets.lobby_of_user(user)),
            )
        ]
        for target in targets:
            try:
                await layer.send(target, event)
            except Exception as exc:  # the per-post check still refuses the socket's next post
                logger.warning("passing on %s failed: %r", event.get("type"), exc)


_listeners = PerLoop(Listener)


def listener() -> Listener:
    """The running event loop's listener."""
    return _listeners.get()


class SessionEvents:
    """The handlers of a room or lobby consumer for the notices this listener passes on; the consumer says
    what signing out shows (`sign_out`)."""

    scope: dict[str, Any]

    async def session_ended(self, event: dict[str, Any]) -> None:
        """A logout: close if it was this socket's session."""
        if event["session"] == session_digest(post_auth.scope_session_key(self.scope)):
            await self.sign_out()

    async def session_check(self, event: dict[str, Any]) -> None:
        """The user changed (deactivated, new password, ...): close if this session no longer holds."""
        if await db.reads(post_auth.session_user)(self.scope) is None:
            await self.sign_out(removed=await db.reads(post_auth.user_removed)(self.scope))

    async def sign_out(self, *, removed: bool = False) -> None:
        """Show the page its session ended (`removed`: the account itself is gone), then close."""
        raise NotImplementedError


class Follower:
    """Follows the registry: a process listens while it has signed-in room or lobby sockets."""

    def joined(self, entry: Entry) -> None:
        if entry.user_id is not None:
            listener().follow()

    def left(self, entry: Entry) -> None:
        if entry.user_id is not None:
            listener().unfollow()

    def reset(self) -> None:
        for made in _listeners.all():
            if made.task is not None:
                made.task.cancel()
        _listeners.clear()


follower = Follower()


class LobbyFollower:
    """A signed-in lobby socket also follows its session: it shows private rooms' names and previews."""

    def joined(self, socket: Any) -> None:
        if socket.user_id is not None:
            listener().follow()

    def left(self, socket: Any) -> None:
        if socket.user_id is not None:
            listener().unfollow()


lobby_follower = LobbyFollower()
