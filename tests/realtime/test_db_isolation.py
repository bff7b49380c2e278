"""Isolation: a SQLite write lock held by another process stalls only the writers, each for its bounded wait.

A real daphne (the Procfile's options, its own SQLite file in WAL mode) with
DJANGO_DB_LOCK_TIMEOUT=3; this test holds the write lock from its own connection
(another process, as far as SQLite is concerned) for the whole check, so what
arrives while it is held arrived despite it. No timing is asserted.
"""

import asyncio
import sqlite3
import urllib.error
import urllib.request
from urllib.parse import urlparse

import pytest
import websockets

from tests.support.in_process import CSRF_SECRET, message_frame, sync_frame

SETUP = """
from uuid import uuid4
from django.contrib.auth.models import User
from django.test import Client
from chat import services
reader, sender = User.objects.create_user("reader"), User.objects.create_user("sender")
quiet = services.room_get_or_create(name="quiet")
services.room_get_or_create(name="busy")
services.message_post(room=quiet, author=reader, data={"message": "said before the lock", "token": str(uuid4())})
for user in (reader, sender):
    client = Client()
    client.force_login(user)
    print(user.username + "=sessionid=" + client.cookies["sessionid"].value)
"""

# Each browser's cookies: its session, and the CSRF cookie its page's forms carry a token of.


async def frame_with(ws, text: str) -> str:
    """The first frame containing `text` (status frames and the like come and go), within 10 s."""
    async with asyncio.timeout(10):
        while text not in (frame := await ws.recv()):
            pass
    return frame


@pytest.fixture
def server(live_server_factory):
    return live_server_factory(DJANGO_DB_LOCK_TIMEOUT="3")


def get_page(url: str, cookie: str) -> str:
    request = urllib.request.Request(url, headers={"Cookie": cookie})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.read().decode()
    except urllib.error.HTTPError as error:
        raise AssertionError(error.read().decode()[:3000]) from None


async def test_a_held_write_lock_stalls_neither_readers_nor_other_rooms_and_senders_get_an_error(server):
    cookies = {
        name: f"{cookie}; csrftoken={CSRF_SECRET}"
        for name, cookie in (
            line.split("=", 1) for line in server.manage("shell", "-c", SETUP).splitlines() if "=" in line
        )
    }
    database = urlparse(server.env["DATABASE_URL"]).path[1:]
    origin = {"Origin": server.url}
    ws_url = f"ws://127.0.0.1:{server.port}/ws/chat/"

    # The reader has had the page before (its session then took its time zone: that first visit writes).
    assert "said before the lock" in await asyncio.to_thread(get_page, f"{server.url}/chat/quiet/", cookies["reader"])

    holder = sqlite3.connect(database, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # the write lock, until the rollback below
    try:
        headers = {**origin, "Cookie": cookies["sender"]}
        async with websockets.connect(f"{ws_url}busy/", additional_headers=headers) as sender:
            await sender.send(sync_frame(after=0))  # as its page does on open
            # The sender's write now waits for the lock (up to DJANGO_DB_LOCK_TIMEOUT) ...
            await sender.send(message_frame("while locked"))

            # ... and meanwhile a reader in another room gets its page and its socket history.
            page = await asyncio.to_thread(get_page, f"{server.url}/chat/quiet/", cookies["reader"])
            assert "said before the lock" in page
            headers = {**origin, "Cookie": cookies["reader"]}
            async with websockets.connect(f"{ws_url}quiet/", additional_headers=headers) as reader:
                await reader.send(sync_frame(after=0))
                await frame_with(reader, "said before the lock")

            await frame_with(sender, "could not be saved")
            assert holder.in_transaction  # all of the above happened while the lock was held

            holder.rollback()
            await sender.send(message_frame("after the lock"))
            await frame_with(sender, "after the lock")
    finally:
        if holder.in_transaction:
            holder.rollback()
        holder.close()
