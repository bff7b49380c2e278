"""Long-lived consumers and database connections (PostgreSQL: CI runs this file with DATABASE_URL set)."""

import asyncio

import pytest
from channels.db import database_sync_to_async
from django.conf import settings
from django.db import connection

from .conftest import message_frame, receive_all

pytestmark = pytest.mark.skipif(
    settings.DATABASES["default"]["ENGINE"] != "chat.postgres",
    reason="connection pooling is a PostgreSQL setting (set DATABASE_URL=postgres://…)",
)


@database_sync_to_async
def open_connections() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


async def test_many_sockets_posting_share_a_bounded_pool_of_connections(connect, alice, bob):
    sockets = [await connect("pooled", user) for user in (alice, bob) * 10]

    for round_ in range(3):
        await asyncio.gather(*(s.send_to(text_data=message_frame(f"r{round_}")) for s in sockets))
        for s in sockets:
            await receive_all(s, timeout=0.1)

    pool_size = settings.DATABASES["default"]["OPTIONS"]["pool"]["max_size"]
    assert settings.DATABASES["default"]["CONN_MAX_AGE"] == 0
    assert await open_connections() <= pool_size


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
