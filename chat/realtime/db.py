"""Database work for sockets: bounded thread pools sized to the database, off asgiref's single thread.

Channels' `database_sync_to_async` (and its auth middleware) runs every call of a
process on asgiref's one thread-sensitive thread: one slow query, or a write
waiting for SQLite's lock, stalls every socket of the process, and a reconnect
storm queues thousands of session loads behind each other. Here socket work runs
on two small pools of our own instead:

- reads (auth on connect, catch-up, resync): `settings.CHAT_DB_READ_THREADS`
  threads (PostgreSQL: the psycopg pool size; SQLite: readers, which WAL lets run
  while another connection writes);
- writes (posting): `settings.CHAT_DB_WRITE_THREADS` threads (SQLite: one, as
  SQLite has one writer anyway). A write never waits longer than
  `settings.CHAT_DB_LOCK_TIMEOUT` in all, queueing included: on SQLite the lock
  wait of a write that queued is cut to what is left of that budget, so a held
  lock gives each sender its error in time instead of a growing queue.

Each call is one unit of work for Django's connection handling, as in Channels:
old connections are closed before and after it (with CONN_MAX_AGE=0 that closes
the connection, which psycopg's pool takes back), so no thread keeps one. SQLite
has no pool: opening a file connection (and setting WAL on it) per unit cost more
than the queries of a connect, so each of these few long-lived threads keeps its
own connection, closed after any error (a file connection holds no server slot).
"""

import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections, connection

P = ParamSpec("P")
R = TypeVar("R")

_pools: dict[str, ThreadPoolExecutor] = {}


def pool(lane: str) -> ThreadPoolExecutor:
    """The process's pool for `lane` ("read" or "write"), created on first use."""
    if lane not in _pools:
        size = settings.CHAT_DB_READ_THREADS if lane == "read" else settings.CHAT_DB_WRITE_THREADS
        _pools[lane] = ThreadPoolExecutor(max_workers=size, thread_name_prefix=f"chat-db-{lane}")
    return _pools[lane]


def _unit(fn: Callable[..., R], args: tuple, kwargs: dict, deadline: float | None) -> R:
    keep = connection.vendor == "sqlite"
    if not keep:
        close_old_connections()
    try:
        if deadline is not None:
            _limit_lock_wait(deadline)
        return fn(*args, **kwargs)
    finally:
        if not keep:
            close_old_connections()
        elif connection.errors_occurred or connection.in_atomic_block:
            connection.close()


def _limit_lock_wait(deadline: float) -> None:
    """SQLite: wait for the write lock only for what is left of the budget (at least 1 ms)."""
    if connection.vendor != "sqlite" or connection.is_in_memory_db():
        return
    connection.ensure_connection()
    left_ms = max(1, int((deadline - time.monotonic()) * 1000))
    connection.connection.execute(f"PRAGMA busy_timeout = {left_ms}")


def reads(fn: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """`fn` as a coroutine function run on the read pool: `await db.reads(fn)(...)`."""

    async def call(*args: P.args, **kwargs: P.kwargs) -> R:
        return await sync_to_async(_unit, thread_sensitive=False, executor=pool("read"))(fn, args, kwargs, None)

    return call


def writes(fn: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """`fn` as a coroutine function run on the write pool, within the lock-wait budget."""

    async def call(*args: P.args, **kwargs: P.kwargs) -> R:
        deadline = time.monotonic() + settings.CHAT_DB_LOCK_TIMEOUT
        return await sync_to_async(_unit, thread_sensitive=False, executor=pool("write"))(fn, args, kwargs, deadline)

    return call
