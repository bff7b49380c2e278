"""Shared fixtures: users, rooms, and WebSocket communicators on the real ASGI app.

Helpers live in tests/support: `in_process` (frames, cookies, stored messages) and `live` (the harness
that starts daphne, redis-server and Chromium, what a test does in a page, and the `slow` marker).
"""

from collections.abc import AsyncIterator, Callable, Iterator
from uuid import uuid4

import pytest
from channels.db import database_sync_to_async
from channels.layers import channel_layers
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.test import Client, override_settings

from chat.models import Room
from chat.realtime import process
from tests.support.in_process import CSRF_COOKIE, LATEST, room_seq, session_cookie, sync_frame

pytest_plugins = ["tests.support.live"]


@pytest.fixture(autouse=True, scope="session")
def fast_password_hashing() -> Iterator[None]:
    """Accounts made in this process hash their passwords with one MD5 round: PBKDF2's million iterations on
    every `create_user` and log-in would dominate the in-process tests. Live servers keep production's hashers."""
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        yield


@pytest.fixture(autouse=True, scope="session")
def own_redis_channel_names() -> Iterator[None]:
    """With REDIS_URL (CI's PostgreSQL + Redis pass), this process's channel layer prefixes its channel and
    group names with a token of its own: Redis pub/sub ignores the database number, so parallel workers (and
    other runs on the same server) would otherwise hear each other's rooms."""
    from django.conf import settings

    layer = settings.CHANNEL_LAYERS["default"]
    if "CONFIG" not in layer:  # the in-memory layer: this process's own already
        yield
        return
    config = {**layer["CONFIG"], "prefix": f"test-{uuid4().hex[:12]}"}
    with override_settings(CHANNEL_LAYERS={"default": {**layer, "CONFIG": config}}):
        yield


@pytest.fixture(autouse=True)
def fresh_channel_layer():
    """Each test gets its own in-memory layer (no groups left over from another test), and the process's
    memory of sockets, rooms and rendered fragments starts empty (another test's database had other rows)."""
    channel_layers.backends.clear()
    process.reset()
    yield
    process.reset()
    channel_layers.backends.clear()


@pytest.fixture(autouse=True)
def fresh_limits(settings):
    """Each test counts its limits in a cache of its own (never the machine's Redis, which others share)."""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": uuid4().hex}}
    # Some tests store many messages of one user at once; tests of the limits set their own.
    settings.CHAT_LIMITS = {**settings.CHAT_LIMITS, "posts_per_user": "1000/60", "sockets_per_ip": "1000"}


@pytest.fixture(autouse=True)
def presence_quiet(request, settings):
    """Presence frames arrive whenever anyone joins: tests of other concerns read exact frames, so only
    tests marked `presence` get them."""
    settings.CHAT_PRESENCE = request.node.get_closest_marker("presence") is not None


@pytest.fixture
def alice(db) -> User:
    return User.objects.create_user("alice", password="correct-horse-battery")


@pytest.fixture
def bob(db) -> User:
    return User.objects.create_user("bob", password="correct-horse-battery")


@pytest.fixture
def room(db) -> Room:
    return Room.objects.create(name="lobby-talk")


@pytest.fixture
async def connect(transactional_db) -> AsyncIterator[Callable]:
    """Open communicators on the real ASGI app (origin check, auth, routing) and close them after the test.

    Like a page that was just loaded: the status frame every socket gets on connect is read, then the
    page's sync frame is sent with the room's current seq (`cursor=LATEST`), a given cursor, or none
    (`cursor=None`).
    """
    from project.asgi import application

    opened: list[WebsocketCommunicator] = []

    async def _connect(
        room_name: str,
        user: User | None = None,
        cursor: int | str | None = LATEST,
        *,
        client: Client | None = None,
        headers: list[tuple[bytes, bytes]] | None = None,
        csrf_cookie: bool = True,
    ) -> WebsocketCommunicator:
        """`user`: a new login session of theirs; `client`: the session of that logged-in test client;
        `headers`: replace the default origin and host headers."""
        cookies = [CSRF_COOKIE] if csrf_cookie else []
        if user is not None:
            cookies.append(await database_sync_to_async(session_cookie)(user))
        if client is not None:
            cookies.append(f"sessionid={client.cookies['sessionid'].value}".encode())
        headers = [*(headers or [(b"origin", b"http://localhost"), (b"host", b"localhost")])]
        if cookies:
            headers.append((b"cookie", b"; ".join(cookies)))
        communicator = WebsocketCommunicator(application, f"/ws/chat/{room_name}/", headers=headers)
        connected, _ = await communicator.connect()
        assert connected
        opened.append(communicator)
        assert 'id="connection-status"' in await communicator.receive_from()
        if cursor == LATEST:
            cursor = await room_seq(room_name) or 0
        if cursor is not None:
            await communicator.send_to(text_data=sync_frame(cursor))
        return communicator

    yield _connect
    for communicator in opened:
        await communicator.disconnect()
