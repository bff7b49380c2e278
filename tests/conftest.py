"""Shared fixtures: users, rooms, and WebSocket communicators on the real ASGI app."""

import json
from collections.abc import AsyncIterator, Callable
from uuid import uuid4

import pytest
from channels.db import database_sync_to_async
from channels.layers import channel_layers
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.middleware.csrf import _get_new_csrf_string, _mask_cipher_secret
from django.test import Client

from chat import services
from chat.models import Message, Room
from chat.realtime import process

pytest_plugins = ["tests.support.live"]


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


# The `csrftoken` cookie every test socket carries; each frame carries a token masked from it, as the page's form does.
CSRF_SECRET = _get_new_csrf_string()
CSRF_COOKIE = f"csrftoken={CSRF_SECRET}".encode()


def message_frame(text: str, token: str | None = None, csrf: str | None = None) -> str:
    """What htmx's ws-send sends for the compose form."""
    return json.dumps(
        {
            "message": text,
            "token": token or str(uuid4()),
            "csrfmiddlewaretoken": _mask_cipher_secret(CSRF_SECRET) if csrf is None else csrf,
            "HEADERS": {"HX-Request": "true", "HX-Trigger": "compose", "HX-Current-URL": "http://testserver/"},
        }
    )


def post_message(room: Room, author: User, body: str) -> Message:
    """A message stored the way both paths store one."""
    return services.message_post(room=room, author=author, data={"message": body, "token": str(uuid4())}).message


def session_cookie(user: User) -> bytes:
    """A real login session for `user`, as the browser's Cookie header."""
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


def sync_frame(after) -> str:
    """What the page's hidden #sync form sends each time the socket opens: the seq of the last change it shows."""
    return json.dumps({"after": str(after), "HEADERS": {"HX-Request": "true", "HX-Trigger": "sync"}})


room_seq = database_sync_to_async(
    lambda name: Room.objects.filter(name=name).values_list("last_seq", flat=True).first()
)

LATEST = "latest"


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


async def receive_all(communicator: WebsocketCommunicator, timeout: float = 0.3, first: float = 3.0) -> list[str]:
    """The frames that arrive: waits up to `first` seconds for one, then until none comes for `timeout`."""
    if await communicator.receive_nothing(timeout=first):
        return []
    frames = [await communicator.receive_from()]
    while not await communicator.receive_nothing(timeout=timeout):
        frames.append(await communicator.receive_from())
    return frames
