"""`python -m tests.bench`: run every selected configuration for both apps and print one table.

See tests/bench/__init__.py (or --help) for what is measured and how.
"""

import argparse
import asyncio
import json
import os
import resource
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from tests.support.procfile import web_daphne

from . import servers
from .chart import write_chart
from .loadgen import LoadSpec, run_load, stranger_answer

# name: (CHANNEL_LAYER, or None for the in-memory layer; daphne processes; Redis shards)
# One shard: --redis-url. Two: two private redis-servers the bench starts on free ports.
CONFIGS = {
    "memory-1": (None, 1, 0),
    "redis-1": ("redis", 1, 1),
    "redis-2": ("redis", 2, 1),
    "redis-pubsub-1": ("redis-pubsub", 1, 1),
    "redis-pubsub-2": ("redis-pubsub", 2, 1),
    "redis-pubsub-2-shards": ("redis-pubsub", 2, 2),
}
APPS = {"tutorial": "tests.bench.tutorial_asgi:application", "ours": "project.asgi:application"}
LOG_NEEDLES = ("Too many connections", "Traceback", "over capacity")
TUTORIAL_P95_TARGET_MS = 250
OURS_P95_FACTOR = 1.25
# Issue 12: connect storms, fan-out CPU, idle memory.
CONNECT_P95_FACTOR = 1.5
CPU_PER_DELIVERY_FACTOR = 1.1
KIB_PER_SOCKET_TARGET = 40
# Issue 18: a private room's members are checked when a socket connects and when it posts, never per delivery.
ROOM_KINDS = ("public", "private")
PRIVATE_CPU_FACTOR = 1.05
CLOSE_BAD_ROOM = 4404  # how ours closes a room its reader may not read, as one that does not exist


def redis_option(text: str) -> tuple[str, Any]:
    name, _, value = text.partition("=")
    if not name or not value:
        raise argparse.ArgumentTypeError("expected NAME=VALUE")
    try:
        return name, json.loads(value)
    except ValueError:
        return name, value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench",
        description="Fan-out benchmark: N sockets in one room, one sender, ours vs the Channels tutorial consumer.",
    )
    parser.add_argument("--clients", type=int, default=1000, help="receiving sockets, all in one room (1000)")
    parser.add_argument("--rate", type=float, default=1.0, help="messages per second from the one sender (1)")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of sending (20)")
    parser.add_argument(
        "--configs", default=",".join(CONFIGS), help=f"comma-separated, from: {', '.join(CONFIGS)} (all)"
    )
    parser.add_argument("--apps", default="tutorial,ours", help="comma-separated: tutorial, ours (both)")
    parser.add_argument("--database-url", help="e.g. postgres://postgres@127.0.0.1:5432/test (default: fresh SQLite)")
    parser.add_argument(
        "--redis-url", default="redis://127.0.0.1:6379/5", help="a dedicated db index: it is FLUSHDB'd (…/5)"
    )
    parser.add_argument(
        "--redis-option",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        type=redis_option,
        help="merge NAME: VALUE into the product's Redis host entry (tests.bench.settings), "
        "e.g. max_connections=1000 or socket_timeout=null (JSON values; repeatable)",
    )
    parser.add_argument(
        "--redis-plain-url",
        action="store_true",
        help="use the bare REDIS_URL as the host entry (library defaults, as in the Channels tutorial)",
    )
    parser.add_argument("--backlog", type=int, help="override the Procfile's listen backlog (Twisted's default: 50)")
    parser.add_argument(
        "--daphne-defaults",
        action="store_true",
        help="run daphne with its default options (the README's run command) instead of the Procfile's",
    )
    parser.add_argument(
        "--anonymous",
        action="store_true",
        help="ours' receivers without a login (default: each a signed-in user with its own session, "
        "so every connect loads a session and a user; the tutorial's receivers never sign in)",
    )
    parser.add_argument(
        "--room-kind",
        default="public",
        help="comma-separated: public, private (public). private runs ours in a private room whose members "
        "are the sender and every receiver (the tutorial has none: it runs public only); with both, each "
        "config's rows are the same receivers in a public room, then in a private one, and the bench prints "
        "the ratio of server CPU per delivery private / public",
    )
    parser.add_argument(
        "--chart",
        type=Path,
        default=Path("docs/benchmark.png"),
        help="write the PNG chart here (docs/benchmark.png; needs matplotlib from tests/requirements.txt)",
    )
    parser.add_argument("--no-chart", action="store_true", help="do not write the chart")
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="record each server with py-spy (pip install py-spy) into DIR/<config>-<app>-<n>.txt "
        "(collapsed stacks of the thread holding the GIL), from start-up to the end of the run",
    )
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set a product setting in ours' servers, e.g. CHAT_DB_READ_THREADS=4 (repeatable)",
    )
    parser.add_argument("--connect-timeout", type=float, default=30.0, help="per socket, seconds (30)")
    parser.add_argument("--settle", type=float, default=3.0, help="idle seconds before memory is read (3)")
    parser.add_argument("--drain", type=float, default=10.0, help="max seconds to wait for late deliveries (10)")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (database, server logs)")
    args = parser.parse_args(argv)
    args.configs = [name.strip() for name in args.configs.split(",") if name.strip()]
    args.apps = [name.strip() for name in args.apps.split(",") if name.strip()]
    args.room_kind = [name.strip() for name in args.room_kind.split(",") if name.strip()]
    unknown = (
        [name for name in args.configs if name not in CONFIGS]
        + [name for name in args.apps if name not in APPS]
        + [name for name in args.room_kind if name not in ROOM_KINDS]
    )
    if unknown:
        parser.error(f"unknown config, app or room kind: {', '.join(unknown)}")
    if "private" in args.room_kind and ("ours" not in args.apps or args.anonymous):
        parser.error("--room-kind private needs ours (--apps) and signed-in receivers (no --anonymous)")
    if args.clients < 1 or args.rate <= 0 or args.duration <= 0:
        parser.error("--clients, --rate and --duration must be positive")
    return args


def raise_fd_limit(needed: int) -> None:
    """Daphne inherits this limit: each socket is one descriptor on each side."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard == resource.RLIM_INFINITY else min(hard, max(soft, needed))
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < needed:
        print(f"warning: fd limit {resource.getrlimit(resource.RLIMIT_NOFILE)[0]} < {needed} needed", file=sys.stderr)


def room_name(config: str, app: str, run_id: str, kind: str = "public") -> str:
    # \w only: the tutorial's route is ws/chat/(?P<room_name>\w+)/
    middle = app if kind == "public" else f"{app}_{kind}"
    return f"bench_{config.replace('-', '_')}_{middle}_{run_id}"


def row_plan(args: argparse.Namespace) -> list[tuple[str, str, str]]:
    """(config, app, room kind) of every row, in running order: the tutorial has public rooms only."""
    return [
        (config, app, kind)
        for config in args.configs
        for app in args.apps
        for kind in args.room_kind
        if kind == "public" or app == "ours"
    ]


def run_one(
    args: argparse.Namespace,
    *,
    config: str,
    app: str,
    env: dict[str, str],
    cookie: str,
    receiver_cookies: list[str],
    run_id: str,
    log_dir: Path,
    kind: str = "public",
) -> dict[str, Any]:
    layer, processes, shards = CONFIGS[config]
    env = dict(env)
    private_redis: list[servers.subprocess.Popen] = []
    redis_urls = [args.redis_url]
    if shards > 1:
        private_redis, redis_urls = servers.start_private_redis(shards)
    elif layer:
        servers.redis_flush(args.redis_url)
    if layer:
        env.update({"REDIS_URL": ",".join(redis_urls), "CHANNEL_LAYER": layer})
        # Always through tests.bench.settings: it also logs the layer and host entry measured.
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": "tests.bench.settings",
                "BENCH_REDIS_HOST_OPTIONS": json.dumps(dict(args.redis_option)),
                "BENCH_REDIS_PLAIN_URL": "1" if args.redis_plain_url else "0",
            }
        )
    label = f"{config}-{app}" + ("" if kind == "public" else f"-{kind}")
    row: dict[str, Any] = {"config": config, "app": app, "room_kind": kind, "processes": processes}
    started = servers.start_servers(
        app=APPS[app],
        count=processes,
        env=env,
        log_dir=log_dir,
        label=label,
        backlog=args.backlog,
        daphne_defaults=args.daphne_defaults,
    )
    profilers = servers.start_profilers(started, args.profile, label) if args.profile else []
    try:
        servers.wait_ready(started)
        room = room_name(config, app, run_id, kind)
        spec = LoadSpec(
            app=app,
            ports=[server.port for server in started],
            path=f"/ws/chat/{room}/",
            page_url=f"http://{servers.HOST}:{started[0].port}/chat/{room}/",
            cookie=cookie,
            clients=args.clients,
            rate=args.rate,
            duration=args.duration,
            connect_timeout=args.connect_timeout,
            settle=args.settle,
            drain=args.drain,
            receiver_cookies=receiver_cookies if app == "ours" else [],
        )
        budget = args.connect_timeout + args.settle + args.duration + args.drain + 60
        try:

            def sample() -> dict[str, float]:
                figures = servers.sample(started)
                if layer:
                    figures["redis_clients"] = sum(servers.redis_clients(url) for url in redis_urls)
                return figures

            if kind == "private":  # before run_load: its figures start after this socket has gone
                row["stranger"] = asyncio.run(stranger_answer(spec))
            row.update(asyncio.run(asyncio.wait_for(run_load(spec, sample), budget)))
        except Exception as error:  # one broken configuration should not hide the others
            row["error"] = f"{type(error).__name__}: {error}"
            row["traceback"] = traceback.format_exc()
    finally:
        servers.stop_profilers(profilers)
        servers.stop_servers(started)
        servers.stop_private_redis(private_redis)
    row["server_log"] = servers.count_in_logs(started, LOG_NEEDLES)
    row["layer"] = servers.layer_line(started[0]) or "channels.layers.InMemoryChannelLayer"
    return row


def fmt(value: Any, spec: str = "") -> str:
    return "-" if value is None else format(value, spec)


def table(rows: list[dict[str, Any]]) -> str:
    # The room kind gets a column only when a run has private rows: a public-only table stays as it was.
    kinds = any(kind_of(row) != "public" for row in rows)
    head = (
        "config",
        "app",
        *(("room",) if kinds else ()),
        "fail",
        "dropped",
        "connect ms p50/p95/max",
        "delivered",
        "latency ms p50/p95/p99/max",
        "deliv/s",
        "KiB/conn",
        "cpu s",
        "cpu us/deliv",
        "redis conns",
        "server log",
    )
    lines = [head]
    for row in rows:
        if "error" in row and "latency_ms" not in row:
            room = (kind_of(row),) if kinds else ()
            lines.append((row["config"], row["app"], *room, "-", "-", "-", "-", row["error"][:60], *["-"] * 6))
            continue
        c, lat = row["connect_ms"], row["latency_ms"]
        log = ", ".join(f"{n}x {needle}" for needle, n in row["server_log"].items() if n) or "clean"
        lines.append(
            (
                row["config"],
                row["app"],
                *((kind_of(row),) if kinds else ()),
                f"{row['failed_connects']}/{row['clients']}",
                str(sum(row["dropped"].values())),
                f"{fmt(c['p50'])}/{fmt(c['p95'])}/{fmt(c['max'])}",
                "-" if row["delivered_ratio"] is None else f"{row['delivered_ratio'] * 100:.2f}%",
                f"{fmt(lat['p50'])}/{fmt(lat['p95'])}/{fmt(lat['p99'])}/{fmt(lat['max'])}",
                fmt(row["deliveries_per_s"]),
                fmt(row["kib_per_connection"]),
                fmt(row["server_cpu_s_sending"]),
                fmt(row.get("server_cpu_us_per_delivery")),
                fmt(row.get("redis_clients_idle")),
                log,
            )
        )
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(head))]
    out = [" | ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True)) for line in lines]
    out.insert(1, "-+-".join("-" * width for width in widths))
    return "\n".join(out)


def kind_of(row: dict[str, Any]) -> str:
    return row.get("room_kind", "public")


def verdicts(rows: list[dict[str, Any]]) -> list[str]:
    """The targets of issue 4, checked against what was measured (public rooms), then issue 18's."""
    lines = []
    by_key = {(row["config"], row["app"]): row for row in rows if "latency_ms" in row and kind_of(row) == "public"}
    for (config, app), row in by_key.items():
        if app == "ours":
            ok = row["failed_connects"] == 0 and row["deliveries"] == row["expected"]
            lines.append(
                f"{config}: ours zero failed connects and zero lost messages: {'yes' if ok else 'NO'} "
                f"({row['failed_connects']} failed, {row['expected'] - row['deliveries']} lost)"
            )
        else:
            p95 = row["latency_ms"]["p95"]
            ok = p95 is not None and p95 < TUTORIAL_P95_TARGET_MS
            lines.append(f"{config}: tutorial p95 < {TUTORIAL_P95_TARGET_MS} ms: {'yes' if ok else 'NO'} ({p95} ms)")
        tutorial, ours = by_key.get((config, "tutorial")), by_key.get((config, "ours"))
        if app == "ours" and tutorial and ours:
            t95, o95 = tutorial["latency_ms"]["p95"], ours["latency_ms"]["p95"]
            if t95 and o95 is not None:
                ok = o95 <= OURS_P95_FACTOR * t95
                lines.append(
                    f"{config}: ours p95 <= {OURS_P95_FACTOR}x tutorial p95: {'yes' if ok else 'NO'} "
                    f"({o95} vs {t95} ms, {o95 / t95:.2f}x)"
                )
            lines.extend(storm_verdicts(config, tutorial, ours))
    lines.extend(private_verdicts(rows))
    return lines


def private_verdicts(rows: list[dict[str, Any]]) -> list[str]:
    """Issue 18: ours in a private room against ours in a public one, same receivers, same run."""
    lines = []
    measured = {(row["config"], kind_of(row)): row for row in rows if row["app"] == "ours" and "latency_ms" in row}
    for (config, kind), private in measured.items():
        if kind != "private":
            continue
        stranger = private.get("stranger") or {}
        ok = stranger.get("close_code") == CLOSE_BAD_ROOM and stranger.get("frames") == 0
        lines.append(
            f"{config}: the private room closes a socket with no login with {CLOSE_BAD_ROOM} before any frame: "
            f"{'yes' if ok else 'NO'} (closed with {stranger.get('close_code')} after {stranger.get('frames')} frames)"
        )
        ok = private["failed_connects"] == 0 and private["deliveries"] == private["expected"]
        lines.append(
            f"{config}: ours in a private room, zero failed connects and zero lost messages: {'yes' if ok else 'NO'} "
            f"({private['failed_connects']} failed, {private['expected'] - private['deliveries']} lost)"
        )
        public = measured.get((config, "public"))
        pc, oc = private.get("server_cpu_us_per_delivery"), public and public.get("server_cpu_us_per_delivery")
        if pc is not None and oc:
            ok = pc <= PRIVATE_CPU_FACTOR * oc
            lines.append(
                f"{config}: ours server CPU per delivery, private room <= {PRIVATE_CPU_FACTOR}x public room: "
                f"{'yes' if ok else 'NO'} ({pc} vs {oc} us, {pc / oc:.2f}x)"
            )
    return lines


def storm_verdicts(config: str, tutorial: dict[str, Any], ours: dict[str, Any]) -> list[str]:
    """The targets of issue 12: connect storms, fan-out CPU per delivery, idle memory."""
    lines = []
    t95, o95 = tutorial["connect_ms"]["p95"], ours["connect_ms"]["p95"]
    if t95 and o95 is not None:
        ok = ours["failed_connects"] == 0 and o95 <= CONNECT_P95_FACTOR * t95
        lines.append(
            f"{config}: ours zero refused and connect p95 <= {CONNECT_P95_FACTOR}x tutorial's: {'yes' if ok else 'NO'} "
            f"({ours['failed_connects']} refused; {o95} vs {t95} ms, {o95 / t95:.2f}x)"
        )
    tc, oc = tutorial.get("server_cpu_us_per_delivery"), ours.get("server_cpu_us_per_delivery")
    if tc and oc is not None:
        ok = oc <= CPU_PER_DELIVERY_FACTOR * tc
        lines.append(
            f"{config}: ours server CPU per delivery <= {CPU_PER_DELIVERY_FACTOR}x tutorial's: {'yes' if ok else 'NO'} "
            f"({oc} vs {tc} us, {oc / tc:.2f}x)"
        )
    kib = ours.get("kib_per_connection")
    if kib is not None:
        lines.append(
            f"{config}: ours memory per idle socket <= {KIB_PER_SOCKET_TARGET} KiB: "
            f"{'yes' if kib <= KIB_PER_SOCKET_TARGET else 'NO'} "
            f"({kib} KiB; tutorial {tutorial.get('kib_per_connection')})"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    raise_fd_limit(2 * args.clients + 512)
    run_id = os.urandom(4).hex()
    workdir = Path(tempfile.mkdtemp(prefix="chat-bench-"))
    database_url = args.database_url or f"sqlite:///{workdir / 'bench.sqlite3'}"
    env = servers.base_env(run_id=run_id, database_url=database_url)
    # The one sender stands in for many users: lift the per-socket flood guard above its rate.
    env["CHAT_SOCKET_RATE"] = str(max(1.0, 2 * args.rate))
    # All clients come from this machine's one address, and the sender is one user: lift the shared limits.
    env["CHAT_LIMIT_SOCKETS_PER_IP"] = str(2 * args.clients + 100)
    env["CHAT_LIMIT_POSTS_PER_USER"] = env["CHAT_LIMIT_POSTS_PER_IP"] = f"{int(2 * args.rate * 60) + 60}/60"
    for setting in args.server_env:
        name, _, value = setting.partition("=")
        env[name] = value
    username = f"bench-{run_id}"
    plan = row_plan(args)
    public_rooms = [room_name(config, app, run_id) for config, app, kind in plan if kind == "public"]
    private_rooms = [room_name(config, app, run_id, kind) for config, app, kind in plan if kind == "private"]
    rooms = public_rooms + private_rooms
    rows: list[dict[str, Any]] = []
    code = servers.code_version()
    daphne_options = (
        f"-b {servers.HOST} -p <port> (daphne's defaults)"
        if args.daphne_defaults
        else " ".join(web_daphne(port=0, host=servers.HOST, backlog=args.backlog)[0])
    )
    print(
        f"bench {run_id} on {code}: {args.clients} clients, {args.rate:g} msg/s for {args.duration:g} s, "
        f"database {'given URL' if args.database_url else 'fresh SQLite'}, logs in {workdir}\n"
        f"daphne options (port 0: each server's own): {daphne_options}\n"
        f"ours' receivers: {'anonymous' if args.anonymous else 'each signed in with its own session'}; "
        f"the tutorial's: anonymous; rooms: {', '.join(args.room_kind)}; "
        f"load average before: {Path('/proc/loadavg').read_text().split()[0]}",
        flush=True,
    )
    try:
        servers.manage(env, "migrate", "--noinput")
        receivers = 0 if args.anonymous or "ours" not in args.apps else args.clients
        cookie, receiver_cookies = servers.sender_session(
            env, username=username, rooms=public_rooms, receivers=receivers, private_rooms=private_rooms
        )
        for config, app, kind in plan:
            began = time.monotonic()
            load = Path("/proc/loadavg").read_text().split()[0]
            row = run_one(
                args,
                config=config,
                app=app,
                env=env,
                cookie=cookie,
                receiver_cookies=receiver_cookies,
                run_id=run_id,
                log_dir=workdir,
                kind=kind,
            )
            row["loadavg_before"] = float(load)
            rows.append(row)
            summary = row.get("error") or (
                f"{row['failed_connects']} failed, delivered {row['deliveries']}/{row['expected']}, "
                f"p95 {row['latency_ms']['p95']} ms"
            )
            took = time.monotonic() - began
            shown = app if kind == "public" else f"{app} {kind}"
            print(f"  {config:<15} {shown:<13} {summary} ({took:.0f} s, load before {load})", flush=True)
    finally:
        if args.database_url:
            try:
                servers.cleanup(env, username=username, rooms=rooms)
            except servers.BenchError as error:
                print(f"cleanup failed: {error}", file=sys.stderr)
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print()
    print(table(rows))
    print()
    for line in verdicts(rows):
        print(line)
    layers_shown: set[tuple[str, str]] = set()
    for row in rows:
        if row["config"] != "memory-1" and (row["config"], row["layer"]) not in layers_shown:
            layers_shown.add((row["config"], row["layer"]))
            print(f"{row['config']}: {row['layer']}")
    for row in rows:
        keys = ("failure_reasons", "dropped", "sender_errors", "sender_reconnects", "unsent", "duplicates")
        extras = {key: row[key] for key in keys if row.get(key)}
        if extras:
            shown = row["app"] if kind_of(row) == "public" else f"{row['app']} {kind_of(row)}"
            print(f"{row['config']} {shown}: {json.dumps(extras)}")
    # The chart compares the apps in public rooms (the tutorial has no private ones).
    charted = [row for row in rows if kind_of(row) == "public"]
    if not args.no_chart and any("latency_ms" in row for row in charted):
        try:
            write_chart(
                charted,
                args.chart,
                title=f"python -m tests.bench: {args.clients} sockets, {args.rate:g} msg/s for {args.duration:g} s, "
                f"{'daphne defaults' if args.daphne_defaults else 'Procfile daphne options'}, {code}",
            )
            print(f"chart: {args.chart}")
        except ImportError:
            print("no chart: matplotlib is not installed (pip install -r tests/requirements.txt)", file=sys.stderr)
    if args.json:
        settings = {key: value for key, value in vars(args).items() if key != "json"}
        settings["database_url"] = "given" if args.database_url else "sqlite"
        settings["daphne_options"] = daphne_options
        report = {"run": run_id, "code": code, "settings": settings, "rows": rows}
        args.json.write_text(json.dumps(report, indent=2, default=str))
    return 0 if rows and all("error" not in row for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
