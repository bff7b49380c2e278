"""`python -m tests.bench.soak`: a long run of many reconnecting pages, checking that nothing grows or leaks.

Two phases share the time (--minutes, 20 by default, half each): one daphne on SQLite with the
in-memory layer, then two daphne on a private redis-server (layer, presence, limits) and a PostgreSQL
database of the run's own. In each, --clients sockets (1,000): room pages over --rooms rooms (50),
signed-in ones (--users users, two tabs each) and anonymous ones, plus --lobby lobby tabs; each drops
its connection every 20-60 s and reconnects, its sync frame catching it up (tests/bench/clients.py).
Signed-in pages post (--rate, 5/s), type, edit and delete their messages, and a user logs out every
15 s (their tabs are closed with 4401 and log in again with a fresh session).

Every --sample seconds (60) it prints, per process: RSS, the sizes of its registries and caches (read
from /internal/process-stats/, on with CHAT_BENCH_STATS=1), and for Redis its keys, pub/sub channels
(PUBSUB CHANNELS / NUMSUB / NUMPAT, DBSIZE), open-socket counters and presence members. At the end
of a phase the pages stop dropping and settle, every page is checked against the database (every
message once, in order, as stored; cursor at the room's last seq; tests/bench/clients.py verify),
all sockets close, and the counts must return to where they were before the first page opened.

Verdicts: RSS grows at most 5 % after minute 5 (when a phase loads for under 6 minutes, after its first
half); every registry stays bounded; after the close, counters, presence, subscriptions and groups
are back to their baseline; every page whole, no problem seen.
"""

import argparse
import asyncio
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from . import clients, loadgen, servers
from .__main__ import raise_fd_limit

PHASES = {"memory-1": (False, 1), "redis-pg-2": (True, 2)}
RSS_GROWTH = 0.05
BOUND_FACTOR, BOUND_SLACK = 1.25, 50
CAPPED = {"rendered": 4096}  # caches with a cap of their own (chat/fragments.py's LRU): bounded while under it
RELEASED = (  # per-process counts that must be back at their baseline once every socket closed
    "sockets.room",
    "sockets.lobby",
    "sockets.users",
    "presence.rooms",
    "presence.memory_members",
    "presence.to_add",
    "catch_up.seqs",
    "session_listeners",
    "counters.open",
    "layer.groups",
    "layer.members",
    "layer.channels",
)
REDIS_RELEASED = ("channels", "numsub", "numpat", "presence", "counters")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=20.0, help="the whole run, split over the phases (20)")
    parser.add_argument("--clients", type=int, default=1000, help="sockets open at once, lobby tabs included")
    parser.add_argument("--rooms", type=int, default=50)
    parser.add_argument("--users", type=int, default=300, help="signed-in users, two room tabs each (300)")
    parser.add_argument("--lobby", type=int, default=50, help="lobby tabs of signed-in users (50)")
    parser.add_argument("--rate", type=float, default=5.0, help="posts per second, all rooms (5)")
    parser.add_argument("--sample", type=float, default=60.0, help="seconds between two reports (60)")
    parser.add_argument("--phases", default=",".join(PHASES), help=f"comma-separated from: {', '.join(PHASES)}")
    parser.add_argument(
        "--pg-url", default="postgres://postgres@127.0.0.1:5432/postgres", help="a server to make a database on"
    )
    parser.add_argument("--json", type=Path, help="also write every sample to this file")
    args = parser.parse_args(argv)
    args.phases = [name.strip() for name in args.phases.split(",") if name.strip()]
    if any(name not in PHASES for name in args.phases):
        parser.error("unknown phase")
    if args.users * 2 + args.lobby > args.clients:
        parser.error("--clients must hold two tabs per user plus the lobby tabs")
    return args


# --- what is read from the servers and Redis ------------------------------------------------------


def flatten(stats: dict[str, Any], prefix: str = "") -> dict[str, float]:
    flat: dict[str, float] = {}
    for key, value in stats.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, name + "."))
        elif isinstance(value, int | float) and key != "pid":
            flat[name] = value
    return flat


async def process_stats(port: int) -> dict[str, float]:
    status, body = await clients.http(port, "GET", "/internal/process-stats/", timeout=15)
    if status != 200:
        return {}
    return flatten(json.loads(body))


def rss_mib(server: servers.Server) -> float:
    try:
        for line in Path(f"/proc/{server.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def redis_figures(url: str | None) -> dict[str, int]:
    if not url:
        return {}
    import redis

    client = redis.Redis.from_url(url, socket_timeout=10)
    try:
        channels = client.pubsub_channels()
        numsub = sum(count for _, count in client.pubsub_numsub(*channels)) if channels else 0
        presence = sum(client.zcard(key) for key in client.scan_iter("chat:presence:*", count=1000))
        counters = sum(int(client.get(key) or 0) for key in client.scan_iter("chat:*:limit:sockets_per_*", count=1000))
        kinds = Counter(re.sub(r"[0-9a-f]{8,}", "*", name.decode(errors="replace")) for name in channels)
        return {
            "dbsize": client.dbsize(),
            "kinds": dict(kinds.most_common(4)) if len(channels) < 50 else {},
            "channels": len(channels),
            "numsub": numsub,
            "numpat": client.pubsub_numpat(),
            "presence": presence,
            "counters": counters,
        }
    finally:
        client.close()


async def sample(started: list[servers.Server], redis_url: str | None) -> dict[str, Any]:
    stats = await asyncio.gather(*(process_stats(server.port) for server in started))
    return {
        "rss": [rss_mib(server) for server in started],
        "stats": list(stats),
        "redis": await asyncio.to_thread(redis_figures, redis_url),
    }


SHOWN = (
    ("sockets.room", "room"),
    ("sockets.lobby", "lobby"),
    ("sockets.users", "users"),
    ("presence.rooms", "pres rooms"),
    ("presence.memory_members", "pres members"),
    ("typing.relayed", "typing"),
    ("catch_up.seqs", "seqs"),
    ("catch_up.reads", "reads"),
    ("unread.written", "unread"),
    ("public_rooms", "public"),
    ("rendered", "rendered"),
    ("session_listeners", "listeners"),
    ("layer.channels", "layer ch"),
    ("layer.groups", "groups"),
    ("layer.members", "members"),
    ("counters.open", "counters"),
    ("tasks", "tasks"),
)


def line(label: str, figures: dict[str, Any], tally: clients.Tally | None) -> str:
    parts = [label]
    for index, (rss, stats) in enumerate(zip(figures["rss"], figures["stats"], strict=True)):
        shown = " ".join(f"{short} {stats[key]:g}" for key, short in SHOWN if stats.get(key) is not None)
        parts.append(f"  p{index}: RSS {rss:.0f} MiB | {shown}")
    if figures["redis"]:
        parts.append("  redis: " + " ".join(f"{key} {value}" for key, value in figures["redis"].items()))
    if tally is not None:
        parts.append(
            f"  pages: connects {tally.connects} drops {tally.reconnects} loads {tally.page_loads} "
            f"frames {tally.frames} "
            f"posts {tally.posts} shown {tally.acked} edits {tally.edits} deletes {tally.deletes} "
            f"typing {tally.typing} logouts {tally.logouts} lobby frames {tally.lobby_frames} "
            f"problems {sum(tally.problems.values())}"
        )
    return "\n".join(parts)


# --- one phase -------------------------------------------------------------------------------------


def collect_static(env: dict[str, str]) -> None:
    """The pages are loaded with DEBUG off: WhiteNoise's manifest needs the hashed files (./staticfiles, ignored
    by git)."""
    servers.manage(env, "collectstatic", "--noinput", "--verbosity", "0", timeout=600)


def make_database(pg_url: str, name: str) -> str:
    subprocess.run(["psql", pg_url, "-qc", f'CREATE DATABASE "{name}"'], check=True, capture_output=True, timeout=60)
    return pg_url.rsplit("/", 1)[0] + "/" + name


def drop_database(pg_url: str, name: str) -> None:
    subprocess.run(
        ["psql", pg_url, "-qc", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'], capture_output=True, timeout=60
    )


async def run_phase(
    args: argparse.Namespace,
    name: str,
    env: dict[str, str],
    started: list[servers.Server],
    redis_url: str | None,
    seconds: float,
    run_id: str,
) -> dict[str, Any]:
    rooms = [f"soak-{run_id}-{index}" for index in range(args.rooms)]
    logouts = math.ceil(seconds / 15.0)
    users = await asyncio.to_thread(
        clients.make_users,
        env,
        prefix=f"soak-{run_id}-u",
        count=args.users,
        sessions=2 + math.ceil(logouts / args.users),
        rooms=rooms,
    )
    site = clients.Site(ports=[server.port for server in started])
    pages: list[clients.Page] = []
    for index, user in enumerate(users):
        for tab in range(2):
            pages.append(clients.Page(site, rooms[(2 * index + tab) % len(rooms)], user))
    anonymous = args.clients - 2 * args.users - args.lobby
    for index in range(anonymous):
        pages.append(clients.Page(site, rooms[index % len(rooms)], None))
    lobbies = [clients.LobbyPage(site, users[index % len(users)]) for index in range(args.lobby)]
    samples: list[dict[str, Any]] = []

    await warm_up(started, users[0], rooms[0])
    baseline = await sample(started, redis_url)
    print(line(f"{name} baseline (no socket yet)", baseline, None), flush=True)
    began = time.monotonic()
    tasks = []
    ramp = min(30.0, seconds / 4)
    for page in [*pages, *lobbies]:
        tasks.append(asyncio.ensure_future(page.live()))
        await asyncio.sleep(ramp / (len(pages) + len(lobbies)))

    paused = asyncio.Event()
    paused.set()
    work = clients.Workload(posts_per_s=args.rate, edits_per_s=args.rate * 0.15, deletes_per_s=args.rate * 0.05)
    # Log-outs go round the users, so nobody runs out of sessions made in advance.
    order = iter(users * (2 + logouts // max(1, len(users))))

    load_until = began + seconds - min(90.0, seconds / 5)  # the rest: settle, check, close
    driver = asyncio.ensure_future(
        clients.drive(site, users, work, until=load_until, paused=paused, pick_logout=lambda: next(order))
    )
    next_sample = began + args.sample
    while time.monotonic() < load_until:
        await asyncio.sleep(max(0.0, min(next_sample, load_until) - time.monotonic()))
        if time.monotonic() >= next_sample:
            figures = await sample(started, redis_url)
            figures["t"] = time.monotonic() - began
            samples.append(figures)
            print(line(f"{name} minute {figures['t'] / 60:.1f}", figures, site.tally), flush=True)
            next_sample += args.sample
    await driver

    site.steady = True
    settled = await clients.settle(site, pages, timeout=120)
    facts = await asyncio.to_thread(clients.truth, env, rooms)
    checked = clients.verify(pages, facts)
    site.stopping = True
    for page in [*pages, *lobbies]:
        if page.ws is not None:
            page.ws.close()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.sleep(8)  # presence leaves are written on the next tick; counters and groups on close
    after = await sample(started, redis_url)
    print(line(f"{name} all closed", after, site.tally), flush=True)
    return {
        "name": name,
        "baseline": baseline,
        "samples": samples,
        "after": after,
        "tally": site.tally,
        "settled_s": settled,
        "checked": checked,
        "seconds": seconds,
    }


async def warm_up(started: list[servers.Server], user: clients.User, room: str) -> None:
    """One signed-in socket opened and closed on each process before the baseline: what a process keeps once it
    has served a socket (its layer probe's channel, its pools) is not a leak of the load's."""
    for server in started:
        origin = f"http://{servers.HOST}:{server.port}"
        ws = await loadgen.ws_connect(servers.HOST, server.port, f"/ws/chat/{room}/", origin=origin, cookie=user.cookie)
        await ws.send_text(loadgen.htmx_frame({"after": "0"}, "sync", origin))
        await asyncio.sleep(3.0)  # the layer probe runs every 2 s while a socket is open
        ws.close()
    await asyncio.sleep(3.0)


def verdicts(result: dict[str, Any]) -> list[str]:
    name, samples, tally = result["name"], result["samples"], result["tally"]
    lines = []
    # RSS: after minute 5 (or, in a short run, after the first half of the load).
    load_s = samples[-1]["t"] if samples else 0
    reference_t = 300.0 if load_s >= 360 else load_s / 2
    reference = next((s for s in samples if s["t"] >= reference_t - 1), None)
    if reference is None or reference is samples[-1]:
        lines.append(f"{name}: RSS growth: too few samples to judge")
    else:
        growths = [(last / ref - 1) for ref, last in zip(reference["rss"], samples[-1]["rss"], strict=True)]
        ok = all(growth <= RSS_GROWTH for growth in growths)
        shown = ", ".join(
            f"p{i} {ref:.0f}→{last:.0f} MiB ({g * 100:+.1f} %)"
            for i, (ref, last, g) in enumerate(zip(reference["rss"], samples[-1]["rss"], growths, strict=True))
        )
        lines.append(
            f"{name}: RSS grows <= {RSS_GROWTH * 100:.0f} % from minute {reference['t'] / 60:.1f} to "
            f"{samples[-1]['t'] / 60:.1f}: {'yes' if ok else 'NO'} ({shown})"
        )
        unbounded = []
        for index in range(len(reference["stats"])):
            before = [s["stats"][index] for s in samples if s["t"] <= reference["t"]]
            later = [s["stats"][index] for s in samples if s["t"] > reference["t"]]
            for key in later[0] if later else ():
                top_before = max((stats.get(key, 0) for stats in before), default=0)
                top_later = max(stats.get(key, 0) for stats in later)
                if key in CAPPED:
                    if top_later > CAPPED[key]:
                        unbounded.append(f"p{index} {key} {top_later:g} > its cap {CAPPED[key]}")
                elif top_later > top_before * BOUND_FACTOR + BOUND_SLACK:
                    unbounded.append(f"p{index} {key} {top_before:g}→{top_later:g}")
        lines.append(
            f"{name}: every registry bounded (later max <= {BOUND_FACTOR}x earlier max + {BOUND_SLACK}, or its cap): "
            f"{'yes' if not unbounded else 'NO'}{' (' + '; '.join(unbounded) + ')' if unbounded else ''}"
        )
    base, after = result["baseline"], result["after"]
    left = []
    for index, stats in enumerate(after["stats"]):
        for key in RELEASED:
            if key in stats and stats[key] != base["stats"][index].get(key, 0):
                left.append(f"p{index} {key} {base['stats'][index].get(key, 0):g}→{stats[key]:g}")
    for key in REDIS_RELEASED:
        if key in after["redis"] and after["redis"][key] != base["redis"].get(key):
            left.append(f"redis {key} {base['redis'].get(key)}→{after['redis'][key]}")
    lines.append(
        f"{name}: after every socket closed, counters, presence, subscriptions and groups back at baseline: "
        f"{'yes' if not left else 'NO'}{' (' + '; '.join(left) + ')' if left else ''}"
    )
    checked = result["checked"]
    problems = sum(tally.problems.values())
    ok = checked["pages not whole"] == 0 and problems == 0 and checked["texts stored twice"] == 0
    lines.append(
        f"{name}: every page saw every change of its room once, in order, and ends whole: {'yes' if ok else 'NO'} "
        f"({checked['pages checked']} pages, {checked['messages stored']} messages; "
        f"{checked['pages not whole']} not whole, {checked['messages missing from a page']} missing, "
        f"{checked['messages shown with another text than stored']} stale, {problems} order/duplicate problems, "
        f"{checked['texts stored twice']} texts stored twice; settled in "
        f"{'-' if result['settled_s'] is None else format(result['settled_s'], '.1f')} s)"
    )
    extras = {
        "problems": dict(tally.problems),
        "notes": dict(tally.notes),
        "closes": {str(k): v for k, v in tally.closes.items()},
        "failures": dict(tally.failures),
        "senders saw": dict(tally.sender),
    }
    lines.extend(f"{name}: not whole: {example}" for example in clients.EXAMPLES)
    clients.EXAMPLES.clear()
    lines.append(f"{name}: " + json.dumps({key: value for key, value in extras.items() if value}))
    return lines


# --- the run ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    raise_fd_limit(4 * args.clients + 512)
    run_id = os.urandom(3).hex()
    workdir = Path(tempfile.mkdtemp(prefix="chat-soak-"))
    per_phase = args.minutes * 60 / len(args.phases)
    print(
        f"soak {run_id} on {servers.code_version()}: {args.clients} sockets ({args.users} users x 2 room tabs, "
        f"{args.clients - 2 * args.users - args.lobby} anonymous room tabs, {args.lobby} lobby tabs) over "
        f"{args.rooms} rooms, each dropping every 20-60 s; {args.rate:g} posts/s with edits and deletes, typing, "
        f"a log-out every 15 s; {per_phase / 60:.1f} min per phase; logs in {workdir}",
        flush=True,
    )
    results = []
    collect_static(servers.base_env(run_id=run_id, database_url=f"sqlite:///{workdir / 'static.sqlite3'}"))
    for name in args.phases:
        redis_backed, count = PHASES[name]
        database = f"soak_{run_id}_{name.replace('-', '_')}"
        redis_processes: list[subprocess.Popen] = []
        redis_url = None
        if redis_backed:
            database_url = make_database(args.pg_url, database)
            redis_processes, (redis_url,) = servers.start_private_redis(1)
        else:
            database_url = f"sqlite:///{workdir / (name + '.sqlite3')}"
        env = servers.base_env(run_id=run_id, database_url=database_url)
        env.update(
            {
                "CHAT_BENCH_STATS": "1",
                # Every page comes from this machine's one address: the per-address caps would count them all.
                "CHAT_LIMIT_SOCKETS_PER_IP": str(4 * args.clients),
                "CHAT_LIMIT_POSTS_PER_IP": f"{int(args.rate * 120) + 600}/60",
            }
        )
        if redis_url:
            env["REDIS_URL"] = redis_url
        started: list[servers.Server] = []
        try:
            servers.manage(env, "migrate", "--noinput", "--verbosity", "0")
            started = servers.start_servers(
                app="project.asgi:application", count=count, env=env, log_dir=workdir, label=name, backlog=None
            )
            servers.wait_ready(started)
            result = asyncio.run(run_phase(args, name, env, started, redis_url, per_phase, run_id))
            result["server_log"] = servers.count_in_logs(started, ("Traceback", "Error"))
            results.append(result)
        finally:
            servers.stop_servers(started)
            servers.stop_private_redis(redis_processes)
            if redis_backed:
                drop_database(args.pg_url, database)
    print()
    for result in results:
        for verdict in verdicts(result):
            print(verdict)
        print(f"{result['name']}: server log: {result['server_log']}")
    if args.json:
        args.json.write_text(json.dumps([{**r, "tally": vars(r["tally"])} for r in results], default=str, indent=1))
    if not any(sum(r["server_log"].values()) for r in results):
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
