"""Bench-only: count a server's database queries and its time in the garbage collector, and write the
running totals to a file the bench reads.

Installed by tests.bench.settings when BENCH_QUERY_COUNT_DIR is set (never by the product): every
connection Django opens gets an execute wrapper that adds one per query (and per executemany), a
`gc.callbacks` entry adds up the seconds each collection takes (py-spy does not show them: a
collection is charged to whatever Python line allocated), and a daemon thread writes both totals to
<dir>/<pid> twice a second. The wrapper is one Python call per query, the callback two per collection.
"""

import gc
import itertools
import os
import threading
import time
from pathlib import Path

WRITE_EVERY = 0.5

_count = itertools.count()
_total = 0
_gc_seconds = 0.0
_gc_started = 0.0


def _counting(execute, sql, params, many, context):
    global _total
    _total = next(_count) + 1  # itertools.count is atomic under the GIL
    return execute(sql, params, many, context)


def _wrap(sender, connection, **kwargs) -> None:
    # Pooled connections connect again on every checkout: wrap each wrapper once.
    if _counting not in connection.execute_wrappers:
        connection.execute_wrappers.append(_counting)


def _timing(phase: str, info: dict) -> None:
    global _gc_seconds, _gc_started
    if phase == "start":
        _gc_started = time.perf_counter()
    else:
        _gc_seconds += time.perf_counter() - _gc_started


def _writer(path: Path) -> None:
    while True:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(f"{_total} {_gc_seconds:.4f}")
        tmp.replace(path)
        time.sleep(WRITE_EVERY)


def install(directory: str) -> None:
    from django.db.backends.signals import connection_created

    connection_created.connect(_wrap, weak=False)
    gc.callbacks.append(_timing)
    path = Path(directory) / str(os.getpid())
    threading.Thread(target=_writer, args=(path,), name="bench query count", daemon=True).start()


def read(directory: Path, pid: int) -> tuple[int, float]:
    """The queries and the seconds in the collector a server process wrote last (0 before its first write)."""
    try:
        queries, gc_seconds = (directory / str(pid)).read_text().split()
        return int(queries), float(gc_seconds)
    except (OSError, ValueError):
        return 0, 0.0
