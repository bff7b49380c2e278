"""`python -m tests.bench.history`: is an old page of a huge room served as fast as one of a small room?

Run from the repository root:

    .venv/bin/python -m tests.bench.history                       # a fresh SQLite file
    .venv/bin/python -m tests.bench.history --database-url sqlite \\
        --database-url postgres://postgres@127.0.0.1:5432/chat_bench  # both, one table

For each database (`sqlite`: a fresh SQLite file in a temp dir; a postgres:// URL: that database,
migrated; the rooms made here are deleted afterwards), in its own process with production-like
settings (DJANGO_DEBUG=0, WhiteNoise's hashed static files), the bench

1. builds two rooms, 1,000 and 1,000,000 messages (--sizes), with one SQL statement each
   (INSERT … SELECT over a generated series: explicit seq and posted_seq 1…N, one message every 30 s up to now,
   a body of ~90 characters with a link, the same in every room); PostgreSQL is then ANALYZEd,
   as autovacuum would;
2. requests, through Django's test Client (the whole stack: middleware, view, selectors,
   templates; no network), for each room the latest page `GET /chat/<room>/` and the page half
   way back `GET /chat/<room>/?before=<id>` (the 50 messages before seq N/2 + 1: 500,000
   messages back in the big room, 500 in the small one), checking each shows the messages it
   should;
3. after --warmup rounds, times --runs rounds, the four requests interleaved in each round so
   that the machine's noise falls on all of them alike, and prints the median (and the fastest)
   of each and the ratio big/small per page. The target (issue 8) is a ratio of at most 1.2.

No file here is named test_*.py: pytest never collects it. This is a benchmark, not a test:
figures on a shared machine are noisy, so read the medians and rerun when in doubt.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from . import servers

TARGET_RATIO = 1.2
INTERVAL_SECONDS = 30  # between two messages of a room
BODY = "Message {n}: the quick brown fox jumps over the lazy dog, see https://example.com/{n}"
SQLITE_INSERT = """
WITH RECURSIVE series(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM series WHERE n < %(count)s)
INSERT INTO chat_message (room_id, author_id, body, created, seq, posted_seq, token)
SELECT %(room)s, %(author)s,
       'Message ' || n || ': the quick brown fox jumps over the lazy dog, see https://example.com/' || n,
       strftime('%%Y-%%m-%%d %%H:%%M:%%f', 'now', '-' || ((%(count)s - n) * %(interval)s) || ' seconds'),
       n, n, printf('%%016x%%016x', %(room)s, n)
FROM series
"""
POSTGRES_INSERT = """
INSERT INTO chat_message (room_id, author_id, body, created, seq, posted_seq, token)
SELECT %(room)s, %(author)s,
       'Message ' || n || ': the quick brown fox jumps over the lazy dog, see https://example.com/' || n,
       now() - (%(count)s - n) * %(interval)s * interval '1 second',
       n, n, (lpad(to_hex(%(room)s::bigint), 16, '0') || lpad(to_hex(n::bigint), 16, '0'))::uuid
FROM generate_series(1, %(count)s) AS n
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench.history",
        description="History pages: the latest page and one half way back, in a small and a huge room.",
    )
    parser.add_argument(
        "--database-url",
        action="append",
        help="'sqlite' (a fresh file, the default) or postgres://…/<db> (never the CI's 'test'); repeatable",
    )
    parser.add_argument("--sizes", default="1000,1000000", help="messages in the small and the big room")
    parser.add_argument("--runs", type=int, default=30, help="timed rounds (30)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed rounds first (5)")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (SQLite file) and the rooms")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.database_url = args.database_url or ["sqlite"]
    try:
        args.sizes = [int(size) for size in args.sizes.split(",")]
    except ValueError:
        parser.error("--sizes: two numbers, e.g. 1000,1000000")
    if len(args.sizes) != 2 or min(args.sizes) < 102 or args.runs < 1 or args.warmup < 0:
        parser.error("--sizes needs two sizes of at least 102 messages; --runs at least 1")
    if any(url.rstrip("/").endswith("/test") for url in args.database_url):
        parser.error("the database 'test' belongs to CI: name another one")
    return args


# The child: one database, Django set up in this process ------------------------------------------


def build_room(*, name: str, count: int, author_id: int) -> dict[str, Any]:
    """A room of `count` messages by one author, made in one statement; its message ids by seq."""
    from django.db import connection, transaction

    from chat.models import Message, Room

    began = time.monotonic()
    with transaction.atomic():
        room = Room.objects.create(name=name, last_seq=count)
        sql = POSTGRES_INSERT if connection.vendor == "postgresql" else SQLITE_INSERT
        with connection.cursor() as cursor:
            cursor.execute(sql, {"room": room.pk, "author": author_id, "count": count, "interval": INTERVAL_SECONDS})
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE chat_message")
    half = count // 2
    before = Message.objects.get(room=room, seq=half + 1).pk
    return {
        "room": name,
        "id": room.pk,
        "count": count,
        "before": before,
        "half": half,
        "build_s": time.monotonic() - began,
    }


def expected_pages(room: dict[str, Any]) -> dict[str, tuple[str, list[str]]]:
    """Each page's URL and the bodies it must show first and last."""
    count, half = room["count"], room["half"]
    return {
        "latest": (f"/chat/{room['room']}/", [BODY.format(n=count - 49), BODY.format(n=count)]),
        "half way back": (
            f"/chat/{room['room']}/?before={room['before']}",
            [BODY.format(n=half - 49), BODY.format(n=half)],
        ),
    }


def check_page(html: str, bodies: list[str]) -> str | None:
    """None if the page shows the first and the last body expected, else what is wrong."""
    from django.utils.html import escape

    missing = [body for body in bodies if escape(body).split(", see")[0] + "," not in html]
    if missing:
        return f"missing {missing[0][:30]}…"
    return None


def run_child(args: argparse.Namespace) -> dict[str, Any]:
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from chat.models import Room

    call_command("migrate", verbosity=0, interactive=False)
    run_id = os.urandom(4).hex()
    author = User.objects.create_user(f"bench-history-{run_id}")
    rooms = []
    try:
        for size in args.sizes:
            rooms.append(build_room(name=f"history-{run_id}-{size}", count=size, author_id=author.pk))
            print(
                f"  {connection.vendor}: built a room of {size:,} messages in {rooms[-1]['build_s']:.1f} s",
                file=sys.stderr,
                flush=True,
            )
        client = Client()
        requests = [
            (room["count"], page, url, bodies) for room in rooms for page, (url, bodies) in expected_pages(room).items()
        ]
        timings: dict[tuple[int, str], list[float]] = {(size, page): [] for size, page, _, _ in requests}
        problems: dict[str, str] = {}
        for round_ in range(args.warmup + args.runs):
            for size, page, url, bodies in requests:
                began = time.perf_counter()
                response = client.get(url)
                elapsed = time.perf_counter() - began
                if round_ == 0:
                    if response.status_code != 200:
                        problems[f"{size} {page}"] = f"HTTP {response.status_code}"
                    elif problem := check_page(response.content.decode(), bodies):
                        problems[f"{size} {page}"] = problem
                if round_ >= args.warmup:
                    timings[(size, page)].append(elapsed)
        rows = [
            {
                "size": size,
                "page": page,
                "median_ms": statistics.median(values) * 1000,
                "min_ms": min(values) * 1000,
                "runs": len(values),
            }
            for (size, page), values in timings.items()
        ]
        return {
            "database": connection.vendor,
            "rows": rows,
            "problems": problems,
            "build_s": {room["count"]: room["build_s"] for room in rooms},
        }
    finally:
        if not args.keep:
            # Plain deletes: the ORM's cascade would load a million messages into Python first.
            with connection.cursor() as cursor:
                for room in rooms:
                    cursor.execute("DELETE FROM chat_message WHERE room_id = %s", [room["id"]])
            Room.objects.filter(pk__in=[room["id"] for room in rooms]).delete()
            author.delete()


# The parent: one child process per database, one table --------------------------------------------


def run_database(args: argparse.Namespace, url: str, workdir: Path) -> dict[str, Any]:
    database_url = f"sqlite:///{workdir / 'history.sqlite3'}" if url == "sqlite" else url
    env = servers.base_env(run_id="history", database_url=database_url)
    env["DJANGO_ALLOWED_HOSTS"] = "testserver"
    command = [sys.executable, "-m", "tests.bench.history", "--child", "--runs", str(args.runs)]
    command += ["--warmup", str(args.warmup), "--sizes", ",".join(map(str, args.sizes))]
    if args.keep:
        command.append("--keep")
    completed = subprocess.run(
        command, cwd=servers.REPO, env=env, stdout=subprocess.PIPE, text=True, timeout=3600, check=False
    )
    if completed.returncode:
        raise servers.BenchError(f"the run on {url} failed (exit {completed.returncode})")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def table(results: list[dict[str, Any]], sizes: list[int]) -> tuple[str, list[str]]:
    small, big = sizes
    lines = [f"{'database':<11}{'page':<15}{f'{small:,} msgs':>20}{f'{big:,} msgs':>20}{'big/small':>11}"]
    lines.append(f"{'':<11}{'':<15}{'median (fastest) ms':>20}{'median (fastest) ms':>20}")
    verdicts = []
    for result in results:
        by_key = {(row["size"], row["page"]): row for row in result["rows"]}
        for page in ("latest", "half way back"):
            a, b = by_key[(small, page)], by_key[(big, page)]
            ratio = b["median_ms"] / a["median_ms"]
            cells = [f"{row['median_ms']:.2f} ({row['min_ms']:.2f})" for row in (a, b)]
            lines.append(f"{result['database']:<11}{page:<15}{cells[0]:>20}{cells[1]:>20}{ratio:>10.2f}x")
            verdicts.append(
                f"{result['database']} {page}: big/small <= {TARGET_RATIO}x: "
                f"{'yes' if ratio <= TARGET_RATIO else 'NO'} ({ratio:.2f}x)"
            )
        for page, problem in result["problems"].items():
            verdicts.append(f"{result['database']} {page}: WRONG PAGE: {problem}")
    return "\n".join(lines), verdicts


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        print(json.dumps(run_child(args)))
        return 0
    workdir = Path(tempfile.mkdtemp(prefix="chat-history-bench-"))
    print(
        f"history bench on {servers.code_version()}: rooms of {args.sizes[0]:,} and {args.sizes[1]:,} messages, "
        f"{args.warmup} warm-up + {args.runs} timed rounds, Django test Client, DEBUG off",
        flush=True,
    )
    results = []
    try:
        servers.manage(
            servers.base_env(run_id="history", database_url="sqlite:///unused"), "collectstatic", "--noinput"
        )
        for url in args.database_url:
            results.append(run_database(args, url, workdir))
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    text, verdicts = table(results, args.sizes)
    print(f"\n{text}\n\n" + "\n".join(verdicts), flush=True)
    if args.json:
        args.json.write_text(json.dumps({"settings": vars(args) | {"json": None}, "results": results}, default=str))
    return 0 if all(not result["problems"] for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
