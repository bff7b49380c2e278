"""Sockets and database connections: socket work off asgiref's single thread (chat/realtime/db.py), and
long-lived consumers sharing a bounded pool (PostgreSQL: CI runs this file with DATABASE_URL set)."""

import asyncio
import threading

import pytest
from asgiref.sync import SyncToAsync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.db import connection

from chat.realtime import db
from tests.support.in_process import CSRF_COOKIE, message_frame, receive_all, session_cookie, sync_frame

postgres_only = pytest.mark.skipif(
    settings.DATABASES["default"]["ENGINE"] != "chat.backends.postgres",
    reason="connection pooling is a PostgreSQL setting (set DATABASE_URL=postgres://…)",
)


async def open_socket(room_name: str, cookie: bytes | None = None, cursor: int = 0) -> WebsocketCommunicator:
    """A page's socket: connected, its status frame read, its sync frame sent (`cursor`: what the page shows)."""
    from project.asgi import application

    cookies = b"; ".join([CSRF_COOKIE, *([cookie] if cookie else [])])
    headers = [(b"origin", b"http://localhost"), (b"host", b"localhost"), (b"cookie", cookies)]
    communicator = WebsocketCommunicator(application, f"/ws/chat/{room_name}/", headers=headers)
    connected, _ = await communicator.connect(timeout=10)
    assert connected
    assert 'id="connection-status"' in await communicator.receive_from(timeout=10)
    await communicator.send_to(text_data=sync_frame(cursor))
    return communicator


@pytest.fixture
def cookies(transactional_db, alice, bob) -> dict[str, bytes]:
    return {"alice": session_cookie(alice), "bob": session_cookie(bob)}


@pytest.fixture
def single_thread_busy(cookies):
    """asgiref's one thread-sensitive thread, busy for the whole test (as a slow query or a held lock kept it)."""
    started, release = threading.Event(), threading.Event()

    def hold() -> None:
        started.set()
        release.wait(60)

    held = SyncToAsync.single_thread_executor.submit(hold)
    assert started.wait(10)
    yield
    release.set()
    held.result(timeout=10)


async def test_sockets_sign_in_catch_up_and_post_while_the_single_thread_is_busy(single_thread_busy, cookies):
    reader = await open_socket("busy", cookies["bob"])
    sender = await open_socket("busy", cookies["alice"])

    await receive_all(reader, first=1)  # what the page's sync frame brought (the room is empty)
    await sender.send_to(text_data=message_frame("past the busy thread"))
    delivered = "".join(await receive_all(reader, first=10))
    assert "past the busy thread" in delivered
    assert '<span class="author">alice</span>' in delivered  # the sender's session and user were loaded

    late = await open_socket("busy", cookies["bob"], cursor=0)  # a page that missed it catches up
    assert "past the busy thread" in "".join(await receive_all(late, first=10))
    for socket in (reader, sender, late):
        await socket.disconnect()


@database_sync_to_async
def open_connections() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


@postgres_only
async def test_many_sockets_posting_share_a_bounded_pool_of_connections(connect, alice, bob):
    sockets = [await connect("pooled", user) for user in (alice, bob) * 10]

    for round_ in range(3):
        await asyncio.gather(*(s.send_to(text_data=message_frame(f"r{round_}")) for s in sockets))
        for s in sockets:
            await receive_all(s, timeout=0.1)

    pool_size = settings.DATABASES["default"]["OPTIONS"]["pool"]["max_size"]
    assert settings.DATABASES["default"]["CONN_MAX_AGE"] == 0
    assert await open_connections() <= pool_size


def connections_held_by_socket_threads() -> list[str]:
    """Ask every thread of both socket pools (a barrier puts one probe on each) whether it holds a connection."""
    held = []
    for lane in ("read", "write"):
        pool = db.pool(lane)
        barrier = threading.Barrier(pool._max_workers)

        def probe(barrier: threading.Barrier) -> str | None:
            barrier.wait(timeout=10)
            return threading.current_thread().name if connection.connection is not None else None

        held += [name for name in pool.map(probe, [barrier] * pool._max_workers) if name]
    return held


@postgres_only
async def test_hundreds_of_signed_in_connects_leave_no_connection_held(cookies, settings):
    # 150 pages of one user at once: far over the per-user cap, which is not what this test is about.
    settings.CHAT_LIMITS = {**settings.CHAT_LIMITS, "sockets_per_user": "1000"}

    async def visit() -> None:
        socket = await open_socket("storm", cookies["alice"])
        await socket.receive_nothing(timeout=0.2)
        await socket.disconnect()

    for _ in range(3):
        await asyncio.gather(*(visit() for _ in range(150)))

    # Each unit of work gave its connection back to psycopg's pool: no socket thread keeps one.
    assert await asyncio.to_thread(connections_held_by_socket_threads) == []


@database_sync_to_async
def terminate_other_connections() -> int:
    """What a database restart or failover does to the connections a process holds."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


@pytest.fixture
def main_thread_reconnects(transactional_db):
    """The test's own connection is dropped too: let the database teardown open a fresh one."""
    yield
    connection.close()


@postgres_only
async def test_a_socket_keeps_posting_after_the_database_dropped_its_connections(
    main_thread_reconnects, connect, alice, bob
):
    sender = await connect("stale", alice)
    reader = await connect("stale", bob)
    await sender.send_to(text_data=message_frame("before"))
    assert "before" in (await receive_all(reader))[0]

    assert await terminate_other_connections() >= 1
    await sender.send_to(text_data=message_frame("after the drop"))

    assert "after the drop" in (await receive_all(reader))[0]
