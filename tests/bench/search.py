"""`python -m tests.bench.search`: is search as fast at a million messages as at ten thousand?

Run from the repository root:

    .venv/bin/python -m tests.bench.search                                   # SQLite, 10,000 and 1,000,000
    .venv/bin/python -m tests.bench.search --database-url sqlite \\
        --database-url postgres://postgres@127.0.0.1:5432/chat_bench_search  # both (that database is re-created)
    .venv/bin/python -m tests.bench.search --sizes 10000,100000              # a lighter run

For each database and each size, in a fresh database and a process of its own with production-like
settings (DJANGO_DEBUG=0; the search limits raised out of the way), the bench

1. migrates to 0009 (no search index yet) and stores N messages in 50 rooms with one author, each a
   "sentence" of 4 to 20 words drawn from a 20,000-word vocabulary with Zipf frequencies (s = 1.07, as
   in English text); one message in 1,000 also holds the planted phrase "WORD300 WORD301" (ranks 300 and
   301 side by side); PostgreSQL is then ANALYZEd;
2. times `migrate chat 0010`: building the index for the existing messages (PostgreSQL: the generated
   tsvector column, which rewrites the table, and its GIN index; SQLite: the FTS5 table's 'rebuild');
3. measures the table before the migration and what the index adds (PostgreSQL: the table's growth, the
   tsvector column, plus the GIN index; SQLite: the FTS5 table's pages, from dbstat);
4. requests, through Django's test Client (middleware, view, selector, template), the first page of
   /search/ for a rare word (rank 5,000: ~1 message in 10,000, so 1 result at 10,000 and a full page of
   20 at 1,000,000), a made-up name planted in exactly 5 messages at every size (the same page at both
   sizes: what the index costs alone), a common word (rank 3: in ~1 message in 4),
   the two-word phrase, and the common word within one room (/search/?room=…), after --warmup rounds
   --runs timed rounds, interleaved; prints the median (and the fastest) of each.

Targets (issue 20): rare word and phrase at the big size <= 2x the small size; the common word's first page
at 1,000,000 ≤ 300 ms; the index <= 1.5x the table's size.

No file here is named test_*.py: pytest never collects it. Figures on a shared machine are noisy: read the
medians and rerun when in doubt. The 1,000,000 run takes minutes per database and a few GB of disk.
"""

import argparse
import io
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import servers

ROOMS = 50
VOCABULARY = 20_000
ZIPF_S = 1.07
PHRASE_EVERY = 1000
RARE_RANK, COMMON_RANK, PHRASE_RANKS = 5000, 3, (300, 301)
# A name in exactly PLANTED messages at every size (spread evenly): the index's cost with the page's alike.
PLANTED_WORD, PLANTED = "quorvexian", 5
TARGET_RATIO, TARGET_COMMON_MS, TARGET_INDEX_RATIO = 2.0, 300.0, 1.5
SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in ("a", "e", "i", "o", "u", "ai", "ou")]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.search", description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", action="append", help="'sqlite' (default) or postgres://…/<db>")
    parser.add_argument("--sizes", default="10000,1000000", help="messages in the small and the big database")
    parser.add_argument("--runs", type=int, default=20, help="timed rounds (20)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed rounds first (3)")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    parser.add_argument("--child-size", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.database_url = args.database_url or ["sqlite"]
    args.sizes = [int(size) for size in args.sizes.split(",")]
    if any(url.rstrip("/").endswith("/test") for url in args.database_url):
        parser.error("the database 'test' belongs to CI: name another one")
    return args


# The child: one database of one size, Django set up in this process -------------------------------


def vocabulary() -> list[str]:
    """20,000 made-up words of 2 to 4 syllables (no stop words, no stemming surprises), the same every run;
    rank 1 is the most frequent."""
    import random

    rng = random.Random(20)
    words: list[str] = []
    seen: set[str] = set()
    while len(words) < VOCABULARY:
        word = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4)))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


def bodies(count: int, words: list[str]):
    """`count` message bodies with Zipf word frequencies (numpy: a million take seconds)."""
    import numpy

    rng = numpy.random.default_rng(20)
    weights = 1.0 / numpy.arange(1, VOCABULARY + 1) ** ZIPF_S
    lengths = rng.integers(4, 21, size=count)
    drawn = rng.choice(VOCABULARY, size=int(lengths.sum()), p=weights / weights.sum())
    phrase = f"{words[PHRASE_RANKS[0] - 1]} {words[PHRASE_RANKS[1] - 1]}"
    start = 0
    for n, length in enumerate(lengths):
        text = " ".join(words[i] for i in drawn[start : start + length])
        start += length
        if n % PHRASE_EVERY == PHRASE_EVERY // 2:
            text = f"{text} {phrase}"
        if n % (count // PLANTED) == count // PLANTED // 2:
            text = f"{PLANTED_WORD} {text}"
        yield text


def store(count: int, words: list[str]) -> dict[str, Any]:
    """N messages over ROOMS rooms, one author, a minute apart, in bulk (COPY on PostgreSQL)."""
    from django.contrib.auth.models import User
    from django.db import connection, transaction
    from django.utils import timezone

    from chat.models import Room

    author = User.objects.create_user("bench-search")
    rooms = [Room.objects.create(name=f"room-{n}") for n in range(ROOMS)]
    now = timezone.now().timestamp()
    seqs = [0] * ROOMS
    began = time.monotonic()
    rows = []
    for n, body in enumerate(bodies(count, words)):
        slot = n % ROOMS
        seqs[slot] += 1
        created = datetime.fromtimestamp(now - (count - n) * 60, tz=UTC)
        rows.append((rooms[slot].pk, author.pk, body, created, seqs[slot], seqs[slot], f"{n:032x}", "[]"))
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            columns = "room_id, author_id, body, created, seq, posted_seq, token, mentioned"
            with cursor.cursor.copy(f"COPY chat_message ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            cursor.executemany(
                "INSERT INTO chat_message (room_id, author_id, body, created, seq, posted_seq, token, mentioned)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                [(*row[:3], row[3].isoformat(sep=" "), *row[4:]) for row in rows],
            )
        for room, seq in zip(rooms, seqs, strict=True):
            Room.objects.filter(pk=room.pk).update(last_seq=seq)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")  # as autovacuum would
    return {"store_s": time.monotonic() - began, "room": rooms[0].name}


def sizes_mb() -> dict[str, float]:
    """The messages table and the search index as stored now, in MB."""
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT pg_table_size('chat_message'),"
                " coalesce(pg_relation_size(to_regclass('chat_message_search')), 0)"
            )
            table, index = cursor.fetchone()
        else:
            cursor.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name")
            by_name = dict(cursor.fetchall())
            table = by_name.get("chat_message", 0)
            index = sum(size for name, size in by_name.items() if name.startswith("chat_message_fts"))
    return {"table_mb": table / 2**20, "index_mb": index / 2**20}


def run_child(args: argparse.Namespace) -> dict[str, Any]:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.utils.html import escape

    call_command("migrate", verbosity=0, interactive=False)
    call_command("migrate", "chat", "0009", verbosity=0, interactive=False)  # no search index yet
    words = vocabulary()
    stored = store(args.child_size, words)
    before = sizes_mb()
    began = time.monotonic()
    call_command("migrate", "chat", "0010", verbosity=0, interactive=False)
    migrate_s = time.monotonic() - began
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE chat_message")
    after = sizes_mb()
    # What the index costs: the FTS5 tables, or the tsvector column's share of the table plus the GIN index.
    index_mb = after["index_mb"] + max(after["table_mb"] - before["table_mb"], 0)
    phrase = f'"{words[PHRASE_RANKS[0] - 1]} {words[PHRASE_RANKS[1] - 1]}"'
    queries = {
        "rare word": {"q": words[RARE_RANK - 1]},
        "5-message word": {"q": PLANTED_WORD},
        "common word": {"q": words[COMMON_RANK - 1]},
        "phrase": {"q": phrase},
        "common, one room": {"q": words[COMMON_RANK - 1], "room": stored["room"]},
    }
    client = Client()
    timings: dict[str, list[float]] = {name: [] for name in queries}
    shown_by_name: dict[str, int] = {}
    problems: dict[str, str] = {}
    for round_ in range(args.warmup + args.runs):
        for name, params in queries.items():
            began = time.perf_counter()
            response = client.get("/search/", params)
            elapsed = time.perf_counter() - began
            if round_ == 0:
                html = response.content.decode()
                shown = html.count('class="search-result"')
                shown_by_name[name] = shown
                if response.status_code != 200:
                    problems[name] = f"HTTP {response.status_code}"
                elif name != "rare word" and shown == 0:
                    problems[name] = "no results"
                elif name == "phrase" and escape(phrase.strip('"').split()[0]) not in html:
                    problems[name] = "the phrase is not shown"
            if round_ >= args.warmup:
                timings[name].append(elapsed)
    return {
        "database": connection.vendor,
        "size": args.child_size,
        "store_s": stored["store_s"],
        "migrate_s": migrate_s,
        "table_mb": before["table_mb"],
        "index_mb": index_mb,
        "rows": {
            name: {"median_ms": statistics.median(v) * 1000, "min_ms": min(v) * 1000, "shown": shown_by_name[name]}
            for name, v in timings.items()
        },
        "problems": problems,
    }


# The parent: a fresh database per size, one child each, one table --------------------------------


def fresh_postgres(url: str) -> None:
    import psycopg

    name = url.rstrip("/").rsplit("/", 1)[1]
    admin = url.rstrip("/").rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')


def run_one(args: argparse.Namespace, url: str, size: int, workdir: Path) -> dict[str, Any]:
    if url == "sqlite":
        database_url = f"sqlite:///{workdir / f'search-{size}.sqlite3'}"
    else:
        fresh_postgres(url)
        database_url = url
    env = servers.base_env(run_id="search", database_url=database_url)
    env.update(
        {
            "DJANGO_ALLOWED_HOSTS": "testserver",
            "CHAT_LIMIT_SEARCHES_PER_USER": "1000000/60",
            "CHAT_LIMIT_SEARCHES_PER_IP": "1000000/60",
        }
    )
    command = [sys.executable, "-m", "tests.bench.search", "--child-size", str(size)]
    command += ["--runs", str(args.runs), "--warmup", str(args.warmup)]
    print(f"  {url.split('@')[-1]}: {size:,} messages…", file=sys.stderr, flush=True)
    completed = subprocess.run(
        command, cwd=servers.REPO, env=env, stdout=subprocess.PIPE, text=True, timeout=7200, check=False
    )
    if url == "sqlite":
        Path(database_url.removeprefix("sqlite:///")).unlink(missing_ok=True)
    if completed.returncode:
        raise servers.BenchError(f"the run on {url} at {size} failed (exit {completed.returncode})")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def table(results: list[dict[str, Any]], sizes: list[int]) -> tuple[str, list[str]]:
    out = io.StringIO()
    small, big = sizes[0], sizes[-1]
    print(
        f"{'database':<11}{'query':<18}" + "".join(f"{f'{s:,} msgs ms':>22}" for s in sizes) + "  big/small", file=out
    )
    verdicts = []
    for database in dict.fromkeys(result["database"] for result in results):
        by_size = {r["size"]: r for r in results if r["database"] == database}
        for name in by_size[small]["rows"]:
            cells = [by_size[s]["rows"][name] for s in sizes]
            ratio = cells[-1]["median_ms"] / cells[0]["median_ms"]
            text = "".join(
                format(f"{c['median_ms']:.1f} ({c['min_ms']:.1f}) [{c.get('shown', '?')}]", ">26") for c in cells
            )
            print(f"{database:<11}{name:<18}{text}  {ratio:.2f}x", file=out)
            if name in {"rare word", "5-message word", "phrase"}:
                verdict = "yes" if ratio <= TARGET_RATIO else "NO"
                verdicts.append(f"{database} {name}: big/small <= {TARGET_RATIO}x: {verdict}")
            if name == "common word" and big >= 1_000_000:
                ms = cells[-1]["median_ms"]
                verdicts.append(
                    f"{database} common word at {big:,} ≤ {TARGET_COMMON_MS} ms: {'yes' if ms <= 300 else 'NO'}"
                )
        for size in sizes:
            r = by_size[size]
            ratio = r["index_mb"] / r["table_mb"]
            print(
                f"{database:<11}{size:>12,} msgs: table {r['table_mb']:.1f} MB, index {r['index_mb']:.1f} MB"
                f" ({ratio:.2f}x), stored in {r['store_s']:.1f} s, index built by migration in {r['migrate_s']:.1f} s",
                file=out,
            )
            verdicts.append(
                f"{database} index at {size:,} ≤ {TARGET_INDEX_RATIO}x the table: {'yes' if ratio <= 1.5 else 'NO'}"
            )
            verdicts += [f"{database} {size:,} {name}: WRONG: {problem}" for name, problem in r["problems"].items()]
    return out.getvalue(), verdicts


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child_size:
        print(json.dumps(run_child(args)))
        return 0
    workdir = Path(tempfile.mkdtemp(prefix="chat-search-bench-"))
    print(
        f"search bench on {servers.code_version()}: sizes {args.sizes}, {args.warmup} + {args.runs} rounds", flush=True
    )
    results = []
    try:
        servers.manage(servers.base_env(run_id="search", database_url="sqlite:///unused"), "collectstatic", "--noinput")
        for url in args.database_url:
            for size in args.sizes:
                results.append(run_one(args, url, size, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    text, verdicts = table(results, args.sizes)
    print(f"\n{text}\n" + "\n".join(verdicts), flush=True)
    if args.json:
        args.json.write_text(json.dumps({"settings": vars(args) | {"json": None}, "results": results}, default=str))
    return 0 if all(not r["problems"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
