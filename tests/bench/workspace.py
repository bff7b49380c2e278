"""`python -m tests.bench.workspace`: a workspace under load (issue 22), ours against the Channels tutorial.

    .venv/bin/python -m tests.bench.workspace                 # the issue's defaults (long: see --help)
    .venv/bin/python -m tests.bench.workspace --quick         # 200 users, 20 rooms, 30 s steady, 20 s idle

Every user is signed in with a login session of their own (made in bulk through Django, as
servers.sender_session makes them) and has --tabs room pages open (distinct rooms, drawn by a Zipf
law over --rooms rooms, so the biggest holds about half the users and most hold under 20) and, with
ours, the lobby. Each room page is a socket that behaves like the htmx page: on every open it sends
the #sync frame with its cursor (the seq of the last change it shows, taken from #sync-after in the
frames it got), so a reconnect gets what it missed. Messages: --rate a second overall, each in a room
drawn by its size, posted by one of its members on their page of it after a typing notice
(--typing-lead seconds before). --reconnect percent of the sockets a minute drop (no close frame, as a
phone loses its network) and come back --reconnect-delay seconds later. The tutorial's consumer
(tutorial_consumer.py) serves the same users' room sockets, rooms and messages: no lobby, no typing,
no presence, no catch-up, no sign-in (it reads no session).

Phases: everyone connects (--connect-concurrency handshakes at a time), --settle seconds, --steady
seconds of posts, typing and reconnects, a --drain for the last deliveries, --idle-settle seconds for
the steady state's last effects, then --idle seconds with everyone connected and nothing happening.
The servers' RSS is sampled every --memory-every seconds from the start of the steady state.

Per configuration (memory-1: one daphne, in-memory layer, SQLite; redis-2: two daphnes, Redis pub/sub
on a private redis-server, PostgreSQL) and app it prints:
connect p95; latency p50/p95/p99 of live deliveries; delivered % (every message to every page of its
room, exactly once, in the room's order); server CPU per process (utime + stime over the phase's length)
and per delivery; RSS per process at the start and end of the steady state; frames and bytes per socket
per minute by kind (message, presence, typing, lobby, status, other); database queries a second (each
server counts its own: tests/bench/query_count.py, through tests.bench.settings); Redis commands a
second (INFO commandstats of the private redis-server, INFO itself left out). The same for the idle
phase, where only the non-message frames, queries and Redis commands matter (issue 22's targets).
"""

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import servers
from .__main__ import APPS, raise_fd_limit
from .loadgen import HandshakeError, WebSocket, htmx_frame, percentiles, ws_connect

# name: (CHANNEL_LAYER or None for the in-memory layer, daphne processes, PostgreSQL?)
CONFIGS = {"memory-1": (None, 1, False), "redis-2": ("redis-pubsub", 2, True)}
KINDS = ("message", "presence", "typing", "lobby", "status", "other")
POSTGRES = "postgres://postgres@127.0.0.1:5432/"

BODY_RE = re.compile(r"ws#(\d+)#(\d+)@([0-9.]+)")
OURS_BODY_RE = re.compile(r'<p class="body[^"]*">ws#(\d+)#(\d+)@([0-9.]+)</p>')
CURSOR_RE = re.compile(r'id="sync-after" name="after" value="(\d+)"')

SETUP_SCRIPT = """
import os
from django.contrib.auth.models import User
from django.db import transaction
from django.middleware.csrf import _get_new_csrf_string
from chat.models import Room
from tests.bench.login_sessions import login_session
prefix, count = os.environ["BENCH_PREFIX"], int(os.environ["BENCH_USERS"])
with transaction.atomic():
    Room.objects.bulk_create([Room(name=name) for name in os.environ["BENCH_ROOMS"].split(",")])
    User.objects.bulk_create([User(username=f"{prefix}{i}") for i in range(count)])
    users = {u.username: u for u in User.objects.filter(username__startswith=prefix)}
    print("CSRFSECRET=" + _get_new_csrf_string())
    for i in range(count):
        print("SESSION=" + login_session(users[f"{prefix}{i}"]))
"""


# --- the workspace -----------------------------------------------------------------------------------


@dataclass
class Workspace:
    rooms: list[str]
    tabs: list[list[int]]  # user → the rooms they have open
    members: list[list[int]]  # room → its users

    @classmethod
    def draw(cls, *, users: int, rooms: int, tabs: int, zipf: float, run_id: str, seed: int) -> "Workspace":
        rng = random.Random(seed)
        weights = [1 / (k + 1) ** zipf for k in range(rooms)]
        tabs_of = []
        for _ in range(users):
            chosen: list[int] = []
            while len(chosen) < min(tabs, rooms):
                k = rng.choices(range(rooms), weights)[0]
                if k not in chosen:
                    chosen.append(k)
            tabs_of.append(chosen)
        members: list[list[int]] = [[] for _ in range(rooms)]
        for user, chosen in enumerate(tabs_of):
            for k in chosen:
                members[k].append(user)
        # \w only: the tutorial's route is ws/chat/(?P<room_name>\w+)/
        return cls([f"ws_{run_id}_{k}" for k in range(rooms)], tabs_of, members)

    def sizes(self) -> list[int]:
        return [len(m) for m in self.members]


def sign_in_everyone(env: dict[str, str], workspace: Workspace, *, prefix: str) -> list[str]:
    """Create the rooms, the users and one login session each, in bulk; each user's Cookie header."""
    setup_env = {
        **env,
        "BENCH_PREFIX": prefix,
        "BENCH_USERS": str(len(workspace.tabs)),
        "BENCH_ROOMS": ",".join(workspace.rooms),
    }
    output = servers.manage(setup_env, "shell", "-c", SETUP_SCRIPT, timeout=900)
    secret = next(line.removeprefix("CSRFSECRET=") for line in output.splitlines() if line.startswith("CSRFSECRET="))
    cookies = [
        f"sessionid={line.removeprefix('SESSION=')}; csrftoken={secret}"
        for line in output.splitlines()
        if line.startswith("SESSION=")
    ]
    if len(cookies) != len(workspace.tabs):
        raise servers.BenchError(f"sessions missing in: {output[:2000]!r}")
    return cookies


# --- the pages ---------------------------------------------------------------------------------------


@dataclass
class Tally:
    frames: Counter = field(default_factory=Counter)  # kind → frames
    bytes: Counter = field(default_factory=Counter)  # kind → characters
    latencies: list[float] = field(default_factory=list)
    deliveries: int = 0
    duplicates: int = 0
    dropped: Counter = field(default_factory=Counter)  # close codes of sockets the server ended
    measuring_latency: bool = True


def kind_of(text: str) -> str:
    if 'id="rooms"' in text or 'id="lobby-' in text:  # the lists whole, or the items that changed
        return "lobby"
    if 'id="message-' in text:
        return "message"
    if 'id="presence"' in text:
        return "presence"
    if 'id="typing"' in text:
        return "typing"
    if text.count(' id="') == 1 and 'id="connection-status"' in text:
        return "status"
    return "other"


class Page:
    """One tab: a room page (or, with ours, the lobby). It keeps its cursor and what it was sent across
    reconnects, as the htmx page does."""

    def __init__(self, run: "Run", user: int, room: int | None) -> None:
        self.run, self.user, self.room = run, user, room
        self.port = run.ports[(user + (room or 0)) % len(run.ports)]
        self.cursor = 0
        self.got: list[int] = []  # the room's message numbers, in the order they arrived
        self.seen: set[int] = set()
        self.ws: WebSocket | None = None
        self.task: asyncio.Task | None = None
        self.opened_at = 0.0
        self.closing = False
        self.reconnecting = False

    @property
    def path(self) -> str:
        return "/ws/lobby/" if self.room is None else f"/ws/chat/{self.run.workspace.rooms[self.room]}/"

    async def open(self) -> float | None:
        """Connect (and, for ours' room pages, sync); the handshake's seconds, or None if it failed."""
        run = self.run
        started = time.perf_counter()
        try:
            self.ws = await asyncio.wait_for(
                ws_connect(
                    servers.HOST,
                    self.port,
                    self.path,
                    origin=f"http://{servers.HOST}:{self.port}",
                    cookie=run.cookies[self.user] if run.app == "ours" else "",
                ),
                run.args.connect_timeout,
            )
        except (TimeoutError, HandshakeError, OSError, asyncio.IncompleteReadError) as error:
            run.failures[type(error).__name__] += 1
            return None
        took = time.perf_counter() - started
        self.opened_at = time.time()
        self.task = asyncio.create_task(self.read(self.ws))
        if run.app == "ours" and self.room is not None:
            await self.send(htmx_frame({"after": str(self.cursor)}, "sync", self.page_url))
        return took

    @property
    def page_url(self) -> str:
        return f"http://{servers.HOST}:{self.port}/chat/{self.run.workspace.rooms[self.room]}/"

    async def send(self, text: str) -> bool:
        if self.ws is None or self.ws.close_code is not None:
            return False
        try:
            await self.ws.send_text(text)
        except (OSError, RuntimeError):
            return False
        return True

    async def read(self, ws: WebSocket) -> None:
        tally = self.run.tally
        ours = self.run.app == "ours"
        while (text := await ws.recv()) is not None:
            now = time.time()
            kind = kind_of(text) if ours else "message"
            tally.frames[kind] += 1
            tally.bytes[kind] += len(text)
            if kind != "message":
                continue
            if ours:
                found = OURS_BODY_RE.findall(text)
                if cursor := CURSOR_RE.search(text):
                    self.cursor = max(self.cursor, int(cursor[1]))
            else:
                try:
                    found = BODY_RE.findall(json.loads(text).get("message", ""))
                except (ValueError, AttributeError):
                    found = []
            for room, number, sent_at in found:
                number = int(number)
                if int(room) != self.room:
                    continue
                if number in self.seen:
                    tally.duplicates += 1
                    continue
                self.seen.add(number)
                self.got.append(number)
                tally.deliveries += 1
                sent = float(sent_at)
                if sent >= self.opened_at and tally.measuring_latency:  # live, not caught up after a reconnect
                    tally.latencies.append(now - sent)
        if not self.closing:
            tally.dropped[ws.close_code] += 1

    def drop(self) -> None:
        """Lose the connection without a close frame, as a phone that loses its network."""
        self.closing = True
        if self.ws is not None:
            self.ws.writer.transport.abort()
        if self.task is not None:
            self.task.cancel()

    def close(self) -> None:
        self.closing = True
        if self.ws is not None:
            self.ws.close()
        if self.task is not None:
            self.task.cancel()


# --- one run: a configuration and an app ------------------------------------------------------------


class Run:
    def __init__(self, args: argparse.Namespace, app: str, ports: list[int], workspace: Workspace, cookies: list[str]):
        self.args, self.app, self.ports, self.workspace, self.cookies = args, app, ports, workspace, cookies
        self.tally = Tally()
        self.failures: Counter = Counter()
        self.pages: dict[tuple[int, int | None], Page] = {}
        for user, rooms in enumerate(workspace.tabs):
            for room in rooms:
                self.pages[(user, room)] = Page(self, user, room)
            if app == "ours":
                self.pages[(user, None)] = Page(self, user, None)
        self.posted: list[list[int]] = [[] for _ in workspace.rooms]  # room → numbers sent
        self.numbers = [0] * len(workspace.rooms)  # room → the last number given to a message
        self.send_failures = 0
        self.reconnects = 0
        self.rng = random.Random(args.seed + 1)
        self.background: set[asyncio.Task] = set()

    async def connect_all(self) -> list[float]:
        gate = asyncio.Semaphore(self.args.connect_concurrency)
        times: list[float] = []

        async def one(page: Page) -> None:
            async with gate:
                took = await page.open()
            if took is not None:
                times.append(took)

        await asyncio.gather(*(one(page) for page in self.pages.values()))
        return times

    def spawn(self, coroutine) -> None:
        task = asyncio.create_task(coroutine)
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def post(self, room: int, number: int) -> None:
        """A member types, then posts, on their page of the room."""
        members = self.workspace.members[room]
        page = self.pages[(self.rng.choice(members), room)]
        if self.app == "ours":
            # What the compose input's ws-send sends: no fields (hx-params="none"), the marker in HEADERS.
            typing = json.loads(htmx_frame({}, "compose-message", page.page_url))
            typing["HEADERS"]["Chat-Typing"] = "1"
            await page.send(json.dumps(typing))
            await asyncio.sleep(self.args.typing_lead)
        body = f"ws#{room}#{number}@{time.time():.6f}"
        if self.app == "ours":
            secret = self.cookies[page.user].rpartition("csrftoken=")[2]
            frame = htmx_frame(
                {"csrfmiddlewaretoken": secret, "token": str(uuid.uuid4()), "message": body}, "compose", page.page_url
            )
        else:
            frame = json.dumps({"message": body})
        if await page.send(frame):
            self.posted[room].append(number)
        else:
            self.send_failures += 1

    async def reconnect(self, page: Page) -> None:
        page.reconnecting = True  # one reconnect at a time: a slow handshake must not get a second socket
        try:
            page.drop()
            self.reconnects += 1
            await asyncio.sleep(self.args.reconnect_delay)
            page.closing = False
            await page.open()
        finally:
            page.reconnecting = False

    async def steady(self, seconds: float) -> None:
        """Posts at --rate (rooms drawn by size), typing before each, and --reconnect % of sockets a minute."""
        sizes = self.workspace.sizes()
        rooms = [k for k, size in enumerate(sizes) if size]
        weights = [sizes[k] for k in rooms]
        started = time.monotonic()
        next_post, next_reconnect, count = 0.0, 1.0, 0
        pages = list(self.pages.values())
        while (now := time.monotonic() - started) < seconds:
            if now >= next_post:
                room = self.rng.choices(rooms, weights)[0]
                self.numbers[room] += 1
                self.spawn(self.post(room, self.numbers[room]))
                count += 1
                next_post = count / self.args.rate
            if now >= next_reconnect:
                # Each second, each socket drops with the chance that makes --reconnect % a minute.
                chance = self.args.reconnect / 100 / 60
                for page in pages:
                    if page.ws is not None and not page.reconnecting and self.rng.random() < chance:
                        self.spawn(self.reconnect(page))
                next_reconnect += 1.0
            await asyncio.sleep(max(0.0, min(next_post, next_reconnect) - (time.monotonic() - started)))

    async def drain(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while self.background and time.monotonic() < deadline:  # noqa: ASYNC110 (polls tasks)
            await asyncio.sleep(0.1)
        expected = self.expected()
        while self.tally.deliveries < expected and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.2)

    def expected(self) -> int:
        return sum(len(self.posted[room]) for (_, room) in self.pages if room is not None)

    def check(self) -> dict[str, Any]:
        """Every message to every page of its room: how many missing, doubled, out of the room's order."""
        missing = out_of_order = 0
        for room, numbers in enumerate(self.posted):
            pages = [self.pages[(user, room)] for user in self.workspace.members[room]]
            if not numbers:
                continue
            orders = Counter(tuple(page.got) for page in pages)
            reference = max(orders, key=lambda order: (len(order), orders[order]))
            position = {number: i for i, number in enumerate(reference)}
            for page in pages:
                missing += len(set(numbers) - page.seen)
                ranks = [position.get(number, -1) for number in page.got]
                if ranks != sorted(ranks) or -1 in ranks:
                    out_of_order += 1
        return {"missing": missing, "duplicates": self.tally.duplicates, "pages_out_of_order": out_of_order}

    def close_all(self) -> None:
        for page in self.pages.values():
            page.close()
        for task in list(self.background):
            task.cancel()


# --- the servers' side --------------------------------------------------------------------------------


def redis_calls(url: str) -> int:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=10)
    try:
        stats = client.info("commandstats")
    finally:
        client.close()
    return sum(entry["calls"] for name, entry in stats.items() if name not in ("cmdstat_info",))


def postgres_counters(url: str) -> tuple[int, int]:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(POSTGRES + "postgres", autocommit=True) as connection:
        row = connection.execute(
            "SELECT xact_commit, tup_returned FROM pg_stat_database WHERE datname = %s", (name,)
        ).fetchone()
    return int(row[0]), int(row[1])


def postgres_database(name: str, *, drop: bool = False) -> str:
    import psycopg

    with psycopg.connect(POSTGRES + "postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop:
            connection.execute(f'CREATE DATABASE "{name}"')
    return POSTGRES + name


@dataclass
class Probe:
    """What the servers had done at one instant."""

    at: float
    cpu: list[float]
    rss_kib: list[int]
    queries: list[int]
    gc_seconds: list[float]
    redis: int | None
    postgres: tuple[int, int] | None
    frames: Counter
    bytes: Counter
    deliveries: int


def probe(run: Run, started: list[servers.Server], query_dir: Path, redis_url: str | None, db_url: str) -> Probe:
    cpu, rss = [], []
    for server in started:
        figures = servers.sample([server])
        cpu.append(figures["cpu_s"])
        rss.append(int(figures["rss_kib"]))
    counts = [servers_query_count(query_dir, server) for server in started]
    return Probe(
        at=time.monotonic(),
        cpu=cpu,
        rss_kib=rss,
        queries=[counted[0] for counted in counts],
        gc_seconds=[counted[1] for counted in counts],
        redis=redis_calls(redis_url) if redis_url else None,
        postgres=postgres_counters(db_url) if db_url.startswith("postgres") else None,
        frames=Counter(run.tally.frames),
        bytes=Counter(run.tally.bytes),
        deliveries=run.tally.deliveries,
    )


def servers_query_count(query_dir: Path, server: servers.Server) -> tuple[int, float]:
    from .query_count import read

    return read(query_dir, server.process.pid)


def phase_figures(run: Run, a: Probe, b: Probe) -> dict[str, Any]:
    seconds = b.at - a.at
    sockets = len(run.pages)
    per_min = 60 / seconds / sockets
    deliveries = b.deliveries - a.deliveries
    cpu = [round(y - x, 2) for x, y in zip(a.cpu, b.cpu, strict=True)]
    figures: dict[str, Any] = {
        "seconds": round(seconds, 1),
        "sockets": sockets,
        "cpu_s": cpu,
        "cpu_share": [round(c / seconds, 3) for c in cpu],  # utime + stime / the phase's length, per process
        "cpu_us_per_delivery": round(1e6 * sum(cpu) / deliveries, 1) if deliveries else None,
        # Of that, in the garbage collector (per process, of one core).
        "gc_share": [round((y - x) / seconds, 3) for x, y in zip(a.gc_seconds, b.gc_seconds, strict=True)],
        "deliveries": deliveries,
        "rss_kib_start": a.rss_kib,
        "rss_kib_end": b.rss_kib,
        "frames_per_socket_min": {kind: round((b.frames[kind] - a.frames[kind]) * per_min, 2) for kind in KINDS},
        "bytes_per_socket_min": round(sum((b.bytes - a.bytes).values()) * per_min),
        "queries_per_s": round(sum(y - x for x, y in zip(a.queries, b.queries, strict=True)) / seconds, 2),
    }
    if a.redis is not None and b.redis is not None:
        figures["redis_commands_per_s"] = round((b.redis - a.redis) / seconds, 2)
    if a.postgres and b.postgres:
        figures["pg_xact_commit_per_s"] = round((b.postgres[0] - a.postgres[0]) / seconds, 2)
        figures["pg_tup_returned_per_s"] = round((b.postgres[1] - a.postgres[1]) / seconds, 1)
    return figures


async def drive(run: Run, sample, profile: Callable[[bool], None] = lambda on: None) -> dict[str, Any]:
    """Join, settle, the steady state (profiled by `profile(True)` ... `profile(False)`), then idle."""
    args = run.args
    row: dict[str, Any] = {"sockets": len(run.pages)}
    began = time.perf_counter()
    times = await run.connect_all()
    row["connect_s"] = round(time.perf_counter() - began, 1)
    row["connected"] = len(times)
    row["failed_connects"] = dict(run.failures)
    row["connect_ms"] = percentiles(times, (50, 95, 100), 1000)
    await asyncio.sleep(args.settle)
    start = await asyncio.to_thread(sample)
    timeline: list[tuple[float, list[int]]] = []  # (seconds into the steady state, RSS MiB per process)

    async def watch_memory() -> None:
        while True:
            await asyncio.sleep(args.memory_every)
            probe = await asyncio.to_thread(sample)
            timeline.append((round(probe.at - start.at), [round(kib / 1024) for kib in probe.rss_kib]))

    watcher = asyncio.create_task(watch_memory())
    await asyncio.to_thread(profile, True)
    await run.steady(args.steady)
    end = await asyncio.to_thread(sample)
    await asyncio.to_thread(profile, False)
    await run.drain(args.drain)
    row["steady"] = phase_figures(run, start, end)
    row["rss_timeline_mib"] = timeline
    row["posted"] = sum(len(numbers) for numbers in run.posted)
    row["send_failures"] = run.send_failures
    row["reconnects"] = run.reconnects
    row["expected"] = run.expected()
    row["deliveries"] = run.tally.deliveries
    row["delivered_ratio"] = round(run.tally.deliveries / row["expected"], 5) if row["expected"] else None
    row.update(run.check())
    row["latency_ms"] = percentiles(run.tally.latencies, (50, 95, 99, 100), 1000)
    row["dropped"] = {str(code): n for code, n in run.tally.dropped.items()}
    if args.idle > 0:
        # The steady state's last effects pass first: typing clears (4.5 s), lost connections leave (5 s), the
        # read marks are written and the lobbies read once more.
        await asyncio.sleep(args.idle_settle)
        run.tally.measuring_latency = False
        quiet = await asyncio.to_thread(sample)
        await asyncio.sleep(args.idle)
        row["idle"] = phase_figures(run, quiet, await asyncio.to_thread(sample))
    watcher.cancel()
    return row


def run_one(args, *, config: str, app: str, workdir: Path, run_id: str) -> dict[str, Any]:
    layer, processes, postgres = CONFIGS[config]
    label = f"{config}-{app}"
    workspace = Workspace.draw(
        users=args.users, rooms=args.rooms, tabs=args.tabs, zipf=args.zipf, run_id=run_id, seed=args.seed
    )
    query_dir = workdir / f"{label}-queries"
    query_dir.mkdir()
    database = f"workspace_bench_{run_id}_{config.replace('-', '_')}_{app}"
    db_url = postgres_database(database) if postgres else f"sqlite:///{workdir / f'{label}.sqlite3'}"
    env = servers.base_env(run_id=run_id, database_url=db_url)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "tests.bench.settings",
            "BENCH_QUERY_COUNT_DIR": str(query_dir),
            # Every client comes from this machine's one address.
            "CHAT_LIMIT_SOCKETS_PER_IP": str(len(workspace.tabs) * (args.tabs + 1) + 100),
            "CHAT_LIMIT_POSTS_PER_IP": f"{int(2 * args.rate * 60) + 60}/60",
        }
    )
    for setting in args.server_env:
        name, _, value = setting.partition("=")
        env[name] = value
    redis_processes, redis_urls = servers.start_private_redis(1) if layer else ([], [])
    if layer:
        env.update({"REDIS_URL": redis_urls[0], "CHANNEL_LAYER": layer})
    row: dict[str, Any] = {"config": config, "app": app, "processes": processes, "sizes": workspace.sizes()}
    started: list[servers.Server] = []
    profilers: list[subprocess.Popen] = []
    try:
        cookies: list[str] = []
        if app == "ours":
            servers.manage(env, "migrate", "--noinput", "--verbosity", "0")
            began = time.monotonic()
            cookies = sign_in_everyone(env, workspace, prefix=f"ws{run_id}u")
            row["sign_in_s"] = round(time.monotonic() - began, 1)
        started = servers.start_servers(
            app=APPS[app], count=processes, env=env, log_dir=workdir, label=label, backlog=None
        )
        servers.wait_ready(started)
        run = Run(args, app, [s.port for s in started], workspace, cookies)

        def sample() -> Probe:
            return probe(run, started, query_dir, redis_urls[0] if layer else None, db_url)

        def profile(on: bool) -> None:
            """py-spy on ours' servers for the steady state only (not the joins, not the idle phase)."""
            nonlocal profilers
            if not (args.profile and app == "ours"):
                return
            if on:
                profilers = servers.start_profilers(started, args.profile, label)
            else:
                servers.stop_profilers(profilers)
                profilers = []

        async def main() -> dict[str, Any]:
            try:
                return await drive(run, sample, profile)
            finally:
                run.close_all()
                await asyncio.sleep(0.5)

        row.update(asyncio.run(main()))
    except Exception as error:  # one broken configuration should not hide the others
        import traceback

        row["error"] = f"{type(error).__name__}: {error}"
        row["traceback"] = traceback.format_exc()
    finally:
        servers.stop_profilers(profilers)
        servers.stop_servers(started)
        servers.stop_private_redis(redis_processes)
        if postgres:
            postgres_database(database, drop=True)
    row["server_log"] = servers.count_in_logs(started, ("Traceback", "over capacity", "Too many connections"))
    return row


# --- the report ------------------------------------------------------------------------------------


def fmt(value: Any) -> str:
    return "-" if value is None else str(value)


def kib_to_mib(values: list[int]) -> str:
    return "/".join(f"{v / 1024:.0f}" for v in values)


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        "config",
        "app",
        "sockets",
        "connect p95 ms",
        "latency p50/p95/p99 ms",
        "delivered",
        "missing/dup/out of order",
        "CPU per process",
        "of it GC",
        "CPU us/deliv",
        "RSS MiB start→end",
        "frames/socket/min msg/pres/typ/lobby/status/other",
        "KiB/socket/min",
        "queries/s",
        "redis cmd/s",
    )
    lines = [head]
    for row in rows:
        if "steady" not in row:
            lines.append((row["config"], row["app"], row.get("error", "?")[:80], *["-"] * (len(head) - 3)))
            continue
        s, lat = row["steady"], row["latency_ms"]
        growth = [f"{(e - b) / b * 100:+.1f}%" for b, e in zip(s["rss_kib_start"], s["rss_kib_end"], strict=True)]
        lines.append(
            (
                row["config"],
                row["app"],
                f"{row['connected']}/{row['sockets']}",
                fmt(row["connect_ms"]["p95"]),
                f"{fmt(lat['p50'])}/{fmt(lat['p95'])}/{fmt(lat['p99'])}",
                "-" if row["delivered_ratio"] is None else f"{row['delivered_ratio'] * 100:.2f}%",
                f"{row['missing']}/{row['duplicates']}/{row['pages_out_of_order']}",
                "/".join(f"{c * 100:.0f}%" for c in s["cpu_share"]),
                "/".join(f"{c * 100:.0f}%" for c in s["gc_share"]),
                fmt(s["cpu_us_per_delivery"]),
                f"{kib_to_mib(s['rss_kib_start'])}→{kib_to_mib(s['rss_kib_end'])} ({'/'.join(growth)})",
                "/".join(f"{s['frames_per_socket_min'][k]:g}" for k in KINDS),
                f"{s['bytes_per_socket_min'] / 1024:.1f}",
                fmt(s["queries_per_s"]),
                fmt(s.get("redis_commands_per_s")),
            )
        )
    return render(lines)


def idle_table(rows: list[dict[str, Any]]) -> str:
    head = (
        "config",
        "app",
        "idle s",
        "non-message frames/socket/min (pres/typ/lobby/status/other)",
        "CPU per process",
        "queries/s",
        "redis cmd/s",
    )
    lines = [head]
    for row in rows:
        idle = row.get("idle")
        if not idle:
            continue
        frames = idle["frames_per_socket_min"]
        non_message = round(sum(v for k, v in frames.items() if k != "message"), 2)
        lines.append(
            (
                row["config"],
                row["app"],
                fmt(idle["seconds"]),
                f"{non_message:g} ({'/'.join(f'{frames[k]:g}' for k in KINDS[1:])})",
                "/".join(f"{c * 100:.1f}%" for c in idle["cpu_share"]),
                fmt(idle["queries_per_s"]),
                fmt(idle.get("redis_commands_per_s")),
            )
        )
    return render(lines)


def render(lines: list[tuple]) -> str:
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(lines[0]))]
    out = [" | ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True)) for line in lines]
    out.insert(1, "-+-".join("-" * width for width in widths))
    return "\n".join(out)


def verdicts(rows: list[dict[str, Any]]) -> list[str]:
    """Issue 22's targets, checked for ours against the tutorial of the same configuration."""
    lines = []
    by_key = {(row["config"], row["app"]): row for row in rows if "steady" in row}
    for config in CONFIGS:
        ours, tutorial = by_key.get((config, "ours")), by_key.get((config, "tutorial"))
        if not ours:
            continue

        def say(text: str, ok: bool, detail: str, config: str = config) -> None:
            lines.append(f"{config}: {text}: {'yes' if ok else 'NO'} ({detail})")

        if tutorial:
            o, t = sum(ours["steady"]["cpu_s"]), sum(tutorial["steady"]["cpu_s"])
            say("ours server CPU <= 2x the tutorial's", o <= 2 * t, f"{o:.1f} vs {t:.1f} s, {o / t:.2f}x" if t else "-")
            o95, t95 = ours["latency_ms"]["p95"], tutorial["latency_ms"]["p95"]
            if o95 is not None and t95:
                say("ours latency p95 <= the tutorial's", o95 <= t95, f"{o95} vs {t95} ms")
        if idle := ours.get("idle"):
            frames = idle["frames_per_socket_min"]
            non_message = sum(v for k, v in frames.items() if k != "message")
            say("idle: non-message frames <= 2 per socket per minute", non_message <= 2, f"{non_message:.2f}")
            say("idle: 0 queries/s", idle["queries_per_s"] == 0, f"{idle['queries_per_s']}/s")
            if "redis_commands_per_s" in idle:
                rc = idle["redis_commands_per_s"]
                say("idle: 0 Redis commands/s", rc == 0, f"{rc}/s")
        s = ours["steady"]
        growth = max((e - b) / b for b, e in zip(s["rss_kib_start"], s["rss_kib_end"], strict=True))
        say("RSS flat in the steady state (<= 5 % growth)", growth <= 0.05, f"{growth * 100:+.1f}% at most")
        ok = ours["missing"] == 0 and ours["duplicates"] == 0 and ours["pages_out_of_order"] == 0
        say(
            "100 % delivered, exactly once, in order",
            ok,
            f"{ours['missing']} missing, {ours['duplicates']} doubled, {ours['pages_out_of_order']} pages out of order",
        )
    return lines


# --- the command -----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.workspace", description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--users", type=int, default=2000, help="signed-in users, each with a session of their own (2000)")
    add("--rooms", type=int, default=200, help="rooms, sizes by a Zipf law (200)")
    add("--tabs", type=int, default=3, help="room pages each user has open, besides the lobby (3)")
    add("--zipf", type=float, default=1.0, help="the Zipf exponent of the rooms' weights (1.0)")
    add("--rate", type=float, default=2.0, help="messages a second, over all rooms (2)")
    add("--typing-lead", type=float, default=1.0, help="seconds between a typing notice and its message (1)")
    add("--reconnect", type=float, default=5.0, help="percent of the sockets that reconnect each minute (5)")
    add("--reconnect-delay", type=float, default=1.0, help="seconds a dropped socket stays away (1)")
    add("--steady", type=float, default=180.0, help="seconds of steady state after the joins (180)")
    add("--idle", type=float, default=60.0, help="seconds of the idle phase after it (60; 0: none)")
    add("--settle", type=float, default=10.0, help="seconds between the joins and the steady state (10)")
    add("--idle-settle", type=float, default=10.0, help="seconds from the steady state's end to the idle phase (10)")
    add("--memory-every", type=float, default=15.0, help="seconds between two RSS samples, steady and idle (15)")
    add("--drain", type=float, default=15.0, help="at most this long for the last deliveries (15)")
    add("--connect-concurrency", type=int, default=200, help="handshakes in flight at once while joining (200)")
    add("--connect-timeout", type=float, default=60.0, help="per handshake, seconds (60)")
    add("--configs", default=",".join(CONFIGS), help=f"comma-separated from: {', '.join(CONFIGS)} (all)")
    add("--apps", default="tutorial,ours", help="comma-separated: tutorial, ours (both)")
    add("--seed", type=int, default=22, help="the workspace's and the load's random seed (22)")
    add("--quick", action="store_true", help="200 users, 20 rooms, 30 s steady, 20 s idle (for iterating)")
    add("--server-env", action="append", default=[], metavar="NAME=VALUE", help="a setting for the servers")
    add(
        "--profile",
        type=Path,
        metavar="DIR",
        help="py-spy ours' servers over the steady state: DIR/<config>-ours-<n>.txt",
    )
    add("--chart", type=Path, default=Path("docs/workspace.png"), help="the PNG chart (docs/workspace.png)")
    add("--no-chart", action="store_true")
    add("--json", type=Path, help="also write every figure to this file")
    add("--keep", action="store_true", help="keep the temp dir (databases, server logs)")
    args = parser.parse_args(argv)
    if args.quick:
        args.users, args.rooms, args.steady, args.idle, args.settle = 200, 20, 30.0, 20.0, 5.0
    args.configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    args.apps = [a.strip() for a in args.apps.split(",") if a.strip()]
    if unknown := [c for c in args.configs if c not in CONFIGS] + [a for a in args.apps if a not in APPS]:
        parser.error(f"unknown config or app: {', '.join(unknown)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    raise_fd_limit(2 * args.users * (args.tabs + 1) + 1024)
    if any(CONFIGS[c][0] for c in args.configs) and shutil.which("redis-server") is None:
        raise SystemExit("redis-server is needed for the Redis configuration")
    run_id = os.urandom(3).hex()
    workdir = Path(tempfile.mkdtemp(prefix="chat-workspace-"))
    sizes = Workspace.draw(
        users=args.users, rooms=args.rooms, tabs=args.tabs, zipf=args.zipf, run_id=run_id, seed=args.seed
    ).sizes()
    ordered = sorted(sizes, reverse=True)
    print(
        f"workspace {run_id} on {servers.code_version()}: {args.users} users, {args.rooms} rooms (biggest "
        f"{ordered[:5]}, median {ordered[len(ordered) // 2]}, {sum(s < 20 for s in sizes)} under 20), "
        f"{args.tabs} room tabs + lobby each, {args.rate:g} msg/s with typing, {args.reconnect:g} %/min "
        f"reconnects, {args.steady:g} s steady, {args.idle:g} s idle; logs in {workdir}; "
        f"load average {Path('/proc/loadavg').read_text().split()[0]}",
        flush=True,
    )
    rows = []
    try:
        for config in args.configs:
            for app in args.apps:
                began = time.monotonic()
                row = run_one(args, config=config, app=app, workdir=workdir, run_id=run_id)
                rows.append(row)
                summary = row.get("error") or (
                    f"{row['connected']}/{row['sockets']} sockets, delivered {row['deliveries']}/{row['expected']}, "
                    f"p95 {row['latency_ms']['p95']} ms"
                )
                print(f"  {config:<9} {app:<9} {summary} ({time.monotonic() - began:.0f} s)", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print("\nsteady state:")
    print(table(rows))
    print("\nidle (everyone connected, nobody posts, types or reconnects):")
    print(idle_table(rows))
    print()
    for line in verdicts(rows):
        print(line)
    print("\nRSS MiB per process (seconds into the steady state: each process), steady state then idle:")
    for row in rows:
        if row.get("rss_timeline_mib"):
            points = ", ".join(f"{at}s: {'/'.join(map(str, mib))}" for at, mib in row["rss_timeline_mib"])
            print(f"  {row['config']} {row['app']}: {points}")
    for row in rows:
        extras = {k: row[k] for k in ("failed_connects", "dropped", "send_failures", "server_log") if row.get(k)}
        extras = {k: v for k, v in extras.items() if not isinstance(v, dict) or any(v.values())}
        if extras:
            print(f"{row['config']} {row['app']}: {json.dumps(extras)}")
    if not args.no_chart and any("steady" in row for row in rows):
        try:
            from .chart import write_workspace_chart

            write_workspace_chart(rows, args.chart, title=f"python -m tests.bench.workspace ({servers.code_version()})")
            print(f"chart: {args.chart}")
        except ImportError:
            print("no chart: matplotlib is not installed", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps({"run": run_id, "settings": vars(args), "rows": rows}, indent=2, default=str))
    return 0 if rows and all("error" not in row for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
