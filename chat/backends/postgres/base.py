"""Django's PostgreSQL backend, with a pool check that replaces every idle connection after a failover.

After a database restart or failover every idle connection in psycopg's pool is
dead. psycopg checks them one checkout at a time and backs off between failed
checks (1 s, 2 s, 4 s…), so a request that draws several dead ones in a row runs
out of its pool timeout (10 s here for 5 dead ones). The more threads use the
pool (chat/realtime/db.py), the more idle connections there are to go stale. So the first
failed check drains the pool: idle connections are replaced at once, the ones in
use are closed when returned, and the waiting request gets a fresh connection.
Selected in settings (ENGINE "chat.backends.postgres") when CONN_HEALTH_CHECKS is on.
"""

import time

from django.db.backends.postgresql import base
from psycopg_pool import ConnectionPool

MIN_DRAIN_INTERVAL = 1.0


class DatabaseWrapper(base.DatabaseWrapper):
    @property
    def pool(self):
        pool = super().pool
        # Django builds the pool with check=ConnectionPool.check_connection (CONN_HEALTH_CHECKS);
        # psycopg keeps it as `_check` and offers no other way to set it afterwards. Read without a
        # default: a psycopg_pool without `_check` fails here, not by quietly never draining
        # (tests/backends/test_postgres_pool.py pins the version).
        if pool is not None and pool._check is ConnectionPool.check_connection:
            pool._check = DrainingCheck(pool)
        return pool


class DrainingCheck:
    def __init__(self, pool: ConnectionPool) -> None:
        self.pool = pool
        self.last_drain = 0.0

    def __call__(self, conn) -> None:
        try:
            ConnectionPool.check_connection(conn)
        except Exception:
            now = time.monotonic()
            if now - self.last_drain >= MIN_DRAIN_INTERVAL:
                self.last_drain = now
                self.pool.drain()
            raise
