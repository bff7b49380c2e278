"""Socket auth middleware: the user of a handshake (and the reader's time zone), with the session and user
loaded on our read pool, many handshakes at once (who may post, re-checked on every post, is
chat/session_notices.py).

Channels' AuthMiddleware loads them through `database_sync_to_async`, one thread per process,
two queries per handshake: after a deploy, every tab reconnects at once and each handshake waited
behind all the others. Here the handshakes that arrive while a load is under way wait for the next
one, which reads all their sessions in one query and all their users in another (at most BATCH
per load, as many loads at once as the read pool has threads). A quiet server loads each handshake
at once, alone. The rules are Channels' own `get_user`: a user found in a batch counts only if the
backend is Django's ModelBackend, the user may log in and the session's auth hash matches; anything
else (no session, a stale hash, another backend) goes through `get_user` itself.

One middleware does for a socket what Channels' CookieMiddleware, SessionMiddleware and AuthMiddleware
do: each of those copies the scope and stays suspended in its `await` for the socket's whole life, so
an idle socket held three scopes, three frames, a session wrapper (whose `send` only ever saves a
session on an HTTP response, never on a socket) and the session's decoded data.
"""

import asyncio
from collections import deque
from typing import Any

from channels.auth import get_user
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model, load_backend
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.utils.crypto import constant_time_compare

from chat.backends.sessions import SessionStore
from chat.realtime import db
from chat.realtime.loops import PerLoop
from chat.realtime.post_auth import scope_session_key

BATCH = 200  # handshakes per load: bounds one load's time and the size of its IN lists


def users_of(scopes: list[dict[str, Any]]) -> list[AbstractBaseUser | AnonymousUser]:
    """Each scope's user, as Channels' get_user finds it, with two queries for the whole batch."""
    SessionStore.load_many(scope["session"] for scope in scopes)
    user_model = get_user_model()
    wanted: dict[int, tuple[Any, ModelBackend]] = {}
    for index, scope in enumerate(scopes):
        session = scope["session"]
        try:
            user_id = user_model._meta.pk.to_python(session[SESSION_KEY])
            backend_path = session[BACKEND_SESSION_KEY]
        except KeyError:
            continue
        if backend_path not in settings.AUTHENTICATION_BACKENDS:
            continue
        backend = load_backend(backend_path)
        if isinstance(backend, ModelBackend) and type(backend).get_user is ModelBackend.get_user:
            wanted[index] = (user_id, backend)
    found = user_model._default_manager.in_bulk({user_id for user_id, _ in wanted.values()})
    users = []
    for index, scope in enumerate(scopes):
        user_id, backend = wanted.get(index, (None, None))
        user = found.get(user_id) if backend else None
        if user is not None and backend.user_can_authenticate(user) and _hash_matches(scope["session"], user):
            users.append(user)
        else:
            # Channels' own (it flushes a session whose hash is stale), called on this thread through the sync
            # function inside its database_sync_to_async: there is no public sync one (test_handshake.py pins it).
            users.append(get_user.func(scope))
    return users


def _hash_matches(session, user: AbstractBaseUser) -> bool:
    session_hash = session.get(HASH_SESSION_KEY)
    return bool(session_hash) and constant_time_compare(session_hash, user.get_session_auth_hash())


class Loads:
    """The handshakes of one event loop waiting for their users, and the loads serving them."""

    def __init__(self) -> None:
        self.waiting: deque[tuple[dict[str, Any], asyncio.Future]] = deque()
        self.loaders: set[asyncio.Task] = set()

    async def user(self, scope: dict[str, Any]) -> AbstractBaseUser | AnonymousUser:
        future = asyncio.get_running_loop().create_future()
        self.waiting.append((scope, future))
        if len(self.loaders) < settings.CHAT_DB_READ_THREADS:
            task = asyncio.ensure_future(self.load())
            self.loaders.add(task)
            task.add_done_callback(self.loaders.discard)
        return await future

    async def load(self) -> None:
        while self.waiting:
            batch = [self.waiting.popleft() for _ in range(min(BATCH, len(self.waiting)))]
            batch = [(scope, future) for scope, future in batch if not future.done()]  # gone meanwhile
            if not batch:
                continue
            try:
                users = await db.reads(users_of)([scope for scope, _ in batch])
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), user in zip(batch, users, strict=True):
                if not future.done():
                    future.set_result(user)


_loads = PerLoop(Loads)


async def load_user(scope: dict[str, Any]) -> AbstractBaseUser | AnonymousUser:
    return await _loads.get().user(scope)


class SocketAuthMiddleware:
    """ASGI middleware for sockets: scope["user"] (as Channels' AuthMiddleware names it) and scope["time_zone"]
    (the reader's, which the room page they loaded put in their session), in one copy of the scope.

    The socket keeps no session: each post re-reads it by the key in the cookie header (chat/session_notices.py),
    so an idle socket holds neither a session store nor its decoded data.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        user, time_zone = await handshake(scope)
        inner = self.inner(dict(scope, user=user, time_zone=time_zone), receive, send)
        # This frame stays suspended for as long as the socket lives: it must not keep the scope it was
        # given (the router's copy) alive beside the socket's own.
        del scope
        return await inner


async def handshake(scope: dict[str, Any]) -> tuple[AbstractBaseUser | AnonymousUser, str | None]:
    session = SessionStore(scope_session_key(scope))
    user = await load_user({"session": session})
    return user, session.get("time_zone")  # read with the user, on the pool (users_of reads every session)
