"""Helpers for tests that run the app in this process: stored messages, the frames a page sends,
login cookies, and reading what a `WebsocketCommunicator` receives."""

import json
import time
from uuid import uuid4

from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.middleware.csrf import _get_new_csrf_string, _mask_cipher_secret
from django.test import Client

from chat import services
from chat.models import Message, Room

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


async def receive_all(communicator: WebsocketCommunicator, timeout: float = 0.3, first: float = 3.0) -> list[str]:
    """The frames that arrive: waits up to `first` seconds for one, then until none comes for `timeout`."""
    if await communicator.receive_nothing(timeout=first):
        return []
    frames = [await communicator.receive_from()]
    while not await communicator.receive_nothing(timeout=timeout):
        frames.append(await communicator.receive_from())
    return frames


async def frames_until(communicator: WebsocketCommunicator, needle: str, seconds: float = 5.0) -> list[str]:
    """The frames received until one contains `needle` (or `seconds` pass): a wait for that frame, with no
    quiet tail after it."""
    frames: list[str] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await communicator.receive_nothing(timeout=0.2):
            continue
        frames.append(await communicator.receive_from())
        if needle in frames[-1]:
            break
    return frames


async def open_socket(path: str, user: User | None = None) -> WebsocketCommunicator:
    """A socket on the real ASGI app (origin check, auth, routing) at `path` ("/ws/chat/<room>/", "/ws/lobby/"),
    as a page of `user` opens it (a new login session of theirs; None: anonymous), with the csrftoken cookie.
    The test closes it (unlike the `connect` fixture's, which are closed after the test)."""
    from project.asgi import application

    cookies = [CSRF_COOKIE]
    if user is not None:
        cookies.append(await database_sync_to_async(session_cookie)(user))
    headers = [(b"origin", b"http://localhost"), (b"host", b"localhost"), (b"cookie", b"; ".join(cookies))]
    communicator = WebsocketCommunicator(application, path, headers=headers)
    assert (await communicator.connect())[0]
    return communicator
