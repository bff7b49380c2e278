"""The PostgreSQL backend's pool check (chat/backends/postgres/base.py): the first dead connection found
drains the pool, so after a database restart the next checkout gets a live connection at once and the
other idle connections are replaced too, instead of each being found dead, one backoff at a time.

The drain test needs PostgreSQL (CI's PostgreSQL pass runs this file with DATABASE_URL set). It
simulates a restart by terminating only the backends of a pool of its own (found by a unique
application_name): the server itself, which others use, is never restarted.
"""

import copy
import inspect
import time
from uuid import uuid4

import psycopg
import pytest
from django.conf import settings
from django.db import connections
from django.db.backends.postgresql import base as django_postgres
from psycopg_pool import ConnectionPool

from chat.backends.postgres.base import DatabaseWrapper, DrainingCheck

postgres_only = pytest.mark.skipif(
    settings.DATABASES["default"]["ENGINE"] != "chat.backends.postgres",
    reason="the pool is a PostgreSQL setting (set DATABASE_URL=postgres://…)",
)


def pool_settings(**pool) -> dict:
    """The default database's settings with a pool of the given options and CONN_HEALTH_CHECKS on."""
    settings_dict = copy.deepcopy(connections["default"].settings_dict)
    settings_dict.update(ENGINE="chat.backends.postgres", CONN_HEALTH_CHECKS=True)
    settings_dict.setdefault("OPTIONS", {})["pool"] = {"min_size": 1, "max_size": 2, "timeout": 10, **pool}
    return settings_dict


@pytest.fixture
def wrapper():
    """A DatabaseWrapper of the product's backend under an alias of its own; its pool is closed after."""
    made: list[DatabaseWrapper] = []

    def make(settings_dict: dict) -> DatabaseWrapper:
        made.append(DatabaseWrapper(settings_dict, alias=f"pool-test-{uuid4().hex[:8]}"))
        return made[-1]

    yield make
    for each in made:
        if each.alias in DatabaseWrapper._connection_pools:
            each.close_pool()


def test_psycopg_pool_keeps_the_check_django_passes_as_check():
    """Canary, checked against psycopg-pool 3.3.3 and Django 5.2.19: Django builds the pool with
    `check=ConnectionPool.check_connection` when CONN_HEALTH_CHECKS is on; psycopg keeps it as the private
    `_check`, which `_check_connection` calls on every checkout. The backend swaps `_check` for a
    DrainingCheck, as there is no public way to set the check after Django built the pool."""
    assert "check=ConnectionPool.check_connection if enable_checks else None" in inspect.getsource(
        django_postgres.DatabaseWrapper.pool.fget
    )
    assert "check" in inspect.signature(ConnectionPool.__init__).parameters
    assert "self._check(conn)" in inspect.getsource(ConnectionPool._check_connection)
    pool = ConnectionPool("", open=False, check=ConnectionPool.check_connection)
    assert pool._check is ConnectionPool.check_connection
    assert "self._pool.clear()" in inspect.getsource(ConnectionPool.drain)


def test_the_backend_puts_its_draining_check_in_the_pool_django_builds(wrapper):
    """Canary (no database needed: the pool is built closed): the swap still happens on psycopg-pool 3.3.3."""
    pool = wrapper(pool_settings()).pool

    assert isinstance(pool._check, DrainingCheck)
    assert pool._check.pool is pool


@postgres_only
def test_after_a_restart_the_next_checkout_is_live_at_once_and_the_idle_connections_are_replaced(wrapper):
    application_name = f"chat-drain-{uuid4().hex}"
    size = 4
    settings_dict = pool_settings(min_size=size, max_size=size)
    settings_dict["OPTIONS"]["application_name"] = application_name
    pool = wrapper(settings_dict).pool
    pool.open(wait=True, timeout=10)
    held = [pool.getconn() for _ in range(size)]
    old_pids = {conn.info.backend_pid for conn in held}
    for conn in held:
        pool.putconn(conn)
    assert len(old_pids) == size

    admin_params = {key: value for key, value in pool.kwargs.items() if key not in {"application_name", "autocommit"}}
    with psycopg.connect(pool.conninfo, **admin_params, autocommit=True) as admin:

        def backends() -> set[int]:
            query = "SELECT pid FROM pg_stat_activity WHERE application_name = %s"
            return {pid for (pid,) in admin.execute(query, [application_name]).fetchall()}

        assert backends() == old_pids  # the filter finds this pool's connections and nobody else's
        # The "restart": the server ends this pool's backends, and only them.
        terminated = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s AND pid = ANY(%s)",
            [application_name, list(old_pids)],
        ).fetchall()
        assert terminated == [(True,)] * size
        deadline = time.monotonic() + 10
        while backends() & old_pids and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not backends() & old_pids

        started = time.monotonic()
        conn = pool.getconn()
        took = time.monotonic() - started
        try:
            # Without the drain the next dead connections are found one by one, 1 s then 2 s apart.
            assert took < 0.5, f"the first checkout after the restart took {took:.2f} s"
            assert conn.execute("SELECT 1").fetchone() == (1,)
            assert conn.info.backend_pid not in old_pids
        finally:
            pool.putconn(conn)

        # The idle ones were replaced without waiting for a checkout to find them dead.
        deadline = time.monotonic() + 10
        while (len(backends()) < size or backends() & old_pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(backends()) == size and not backends() & old_pids

    started = time.monotonic()
    held = [pool.getconn() for _ in range(size)]
    try:
        assert time.monotonic() - started < 0.5
        assert all(conn.execute("SELECT 1").fetchone() == (1,) for conn in held)
        assert not {conn.info.backend_pid for conn in held} & old_pids
    finally:
        for conn in held:
            pool.putconn(conn)
