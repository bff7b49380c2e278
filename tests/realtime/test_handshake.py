"""Socket auth on the read pool, many handshakes per load: each socket gets exactly the user Channels'
own get_user would give it, with two queries for a whole batch."""

import asyncio
import gc
import hashlib
import importlib.metadata
import inspect

import pytest
from asgiref.sync import SyncToAsync, sync_to_async
from channels.auth import get_user
from django.contrib.auth.models import User
from django.contrib.sessions.backends.base import SessionBase
from django.contrib.sessions.models import Session
from django.test import Client

from chat.backends.sessions import SessionStore
from chat.realtime import handshake
from chat.realtime.registry import sockets


def logged_in(user: User) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


def scope_of(session_key: str | None) -> dict:
    return {"session": SessionStore(session_key)}


@pytest.mark.django_db
def test_a_batch_of_signed_in_sessions_costs_two_queries(django_assert_num_queries):
    users = [User.objects.create_user(f"reader{i}", password="pw-12345678") for i in range(20)]
    scopes = [scope_of(logged_in(user)) for user in users]

    with django_assert_num_queries(2):
        found = handshake.users_of(scopes)

    assert [user.pk for user in found] == [user.pk for user in users]
    assert all(user.is_authenticated for user in found)
    with django_assert_num_queries(0):  # the sessions were read with the batch
        assert [scope["session"]["_auth_user_id"] for scope in scopes] == [str(user.pk) for user in users]


@pytest.mark.django_db
def test_every_other_case_gets_what_channels_get_user_gives(alice, bob):
    anonymous = scope_of(None)
    unknown = scope_of("no-such-session-key-1234567890ab")
    expired_key = logged_in(bob)
    Session.objects.filter(session_key=expired_key).delete()
    expired = scope_of(expired_key)
    stale_key = logged_in(alice)
    alice.set_password("a-new-password-123")  # logs out her other sessions (their hash no longer matches)
    alice.save()
    stale = scope_of(stale_key)
    inactive_user = User.objects.create_user("gone", password="pw-12345678")
    inactive = scope_of(logged_in(inactive_user))
    inactive_user.is_active = False
    inactive_user.save()
    valid = scope_of(logged_in(bob))

    found = handshake.users_of([anonymous, unknown, expired, stale, inactive, valid])

    assert [user.is_authenticated for user in found] == [False, False, False, False, False, True]
    assert found[-1].pk == bob.pk
    assert not Session.objects.filter(session_key=stale_key).exists()  # flushed, as Channels does


async def test_handshakes_arriving_together_share_one_load(connect, transactional_db, monkeypatch):
    users = [await sync_to_async(User.objects.create_user)(f"storm{i}") for i in range(30)]
    clients = [Client() for _ in users]
    for client, user in zip(clients, users, strict=True):
        await sync_to_async(client.force_login)(user)
    loads = []
    real = handshake.users_of
    monkeypatch.setattr(handshake, "users_of", lambda scopes: loads.append(len(scopes)) or real(scopes))

    await asyncio.gather(*(connect("storm", client=client, cursor=None) for client in clients))

    assert sum(loads) == 30
    assert len(loads) <= 3
    assert sorted(entry.username for entry in sockets.entries()) == sorted(user.username for user in users)


async def test_a_failed_load_refuses_only_its_handshakes(connect, alice, monkeypatch):
    real = handshake.users_of
    failures = iter([True])

    def users_of(scopes):
        if next(failures, False):
            raise RuntimeError("database gone for a moment")
        return real(scopes)

    monkeypatch.setattr(handshake, "users_of", users_of)
    with pytest.raises(RuntimeError):
        await connect("general", alice, cursor=None)

    page = await connect("general", alice, cursor=None)
    assert [entry.username for entry in sockets.entries()] == ["alice"]
    await page.disconnect()


async def test_the_middleware_gives_the_inner_app_the_user_and_time_zone_in_one_scope_copy(transactional_db, alice):
    def logged_in_in_tokyo():
        session = SessionStore(logged_in(alice))
        session["time_zone"] = "Asia/Tokyo"  # as the room page stores it
        session.save()
        return session.session_key

    session_key = await sync_to_async(logged_in_in_tokyo)()
    seen = []

    async def inner(scope, receive, send):
        seen.append(scope)

    cookie = f"sessionid={session_key}; csrftoken=abc".encode()
    scope = {"type": "websocket", "headers": [(b"cookie", cookie)]}
    await handshake.SocketAuthMiddleware(inner)(scope, None, None)
    await handshake.SocketAuthMiddleware(inner)({"type": "websocket", "headers": []}, None, None)

    signed_in, anonymous = seen
    assert signed_in["user"].pk == alice.pk and signed_in["time_zone"] == "Asia/Tokyo"
    assert not anonymous["user"].is_authenticated and anonymous["time_zone"] is None
    assert "session" not in signed_in  # each post re-reads it by the cookie's key
    assert set(scope) == {"type", "headers"}  # the handshake's own scope is left as it was


async def test_open_sockets_keep_no_session_store(connect, alice, bob):
    keys = set()
    for user in (alice, bob):
        client = Client()
        await sync_to_async(client.force_login)(user)
        keys.add(client.cookies["sessionid"].value)
        await connect("general", client=client)

    gc.collect()
    held = [obj for obj in gc.get_objects() if isinstance(obj, SessionBase) and obj.session_key in keys]

    assert sorted(entry.username for entry in sockets.entries()) == ["alice", "bob"]
    assert held == []


@pytest.mark.django_db
def test_channels_get_user_still_wraps_the_sync_rules_the_batch_copies(bob):
    """Canary, checked against channels 4.3.2 (asgiref 3.13.0): users_of calls `get_user.func`, the
    synchronous function inside Channels' `database_sync_to_async(get_user)`, on the read pool's thread,
    and repeats its rules for a batch. Channels has no public synchronous get_user, and Django's
    `django.contrib.auth.get_user` differs (it rotates the session key on a fallback secret, which a
    socket cannot hand to the browser); `async_to_sync(get_user)` would hop to another thread. So this
    fails when the wrapper or the rules change: re-check users_of, then update the digest."""
    assert isinstance(get_user, SyncToAsync)
    assert inspect.isfunction(get_user.func) and not inspect.iscoroutinefunction(get_user.func)
    assert hashlib.sha256(inspect.getsource(get_user.func).encode()).hexdigest()[:16] == "3124b316d7d6472c", (
        f"channels.auth.get_user changed (installed: channels {importlib.metadata.version('channels')}): "
        "re-check chat/realtime/handshake.py's users_of"
    )
    # Called right here, on this thread, it answers as the batch does.
    assert get_user.func(scope_of(logged_in(bob))).pk == bob.pk
    assert not get_user.func(scope_of(None)).is_authenticated
