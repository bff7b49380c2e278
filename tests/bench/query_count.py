"""Bench-only: count a server's database queries and write the running total to a file the bench reads.

Installed by tests.bench.settings when BENCH_QUERY_COUNT_DIR is set (never by the product): every
connection Django opens gets an execute wrapper that adds one per query (and per executemany), and a
daemon thread writes the total to <dir>/<pid> twice a second. The wrapper is one Python call per query.
"""

import itertools
import os
import threading
import time
from pathlib import Path

WRITE_EVERY = 0.5

_count = itertools.count()
_total = 0


def _counting(execute, sql, params, many, context):
    global _total
    _total = next(_count) + 1  # itertools.count is atomic under the GIL
    return execute(sql, params, many, context)


def _wrap(sender, connection, **kwargs) -> None:
    # Pooled connections connect again on every checkout: wrap each wrapper once.
    if _counting not in connection.execute_wrappers:
        connection.execute_wrappers.append(_counting)


def _writer(path: Path) -> None:
    while True:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(str(_total))
        tmp.replace(path)
        time.sleep(WRITE_EVERY)


def install(directory: str) -> None:
    from django.db.backends.signals import connection_created

    connection_created.connect(_wrap, weak=False)
    path = Path(directory) / str(os.getpid())
    threading.Thread(target=_writer, args=(path,), name="bench query count", daemon=True).start()


def read(directory: Path, pid: int) -> int:
    """The total a server process wrote last (0 before its first write)."""
    try:
        return int((directory / str(pid)).read_text() or 0)
    except (OSError, ValueError):
        return 0
