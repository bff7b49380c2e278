"""`python -m tests.bench.presence`: N sockets joining one room at once, with presence and without.

For each configuration it starts one daphne (the Procfile's options, DEBUG off, a fresh SQLite file;
with Redis, a private redis-server of its own for REDIS_URL), opens N anonymous sockets to one room
together (each sends the page's sync frame, as htmx does on open), then listens until no frame has
come for --settle seconds. Per configuration it prints: sockets connected, frames received in all
and presence frames among them, the most presence frames one socket got, the bytes received, the
time from the first connect to the last frame, and the server's CPU seconds from the first connect
until the run settled (before the sockets close).

Without coalescing, N joins would cost every socket a frame per join: N * (N + 1) / 2 frames.
"""

import argparse
import asyncio
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import servers
from .loadgen import ws_connect

CONFIGS = {
    # name: (CHAT_PRESENCE, Redis for the channel layer and presence?)
    "memory-off": ("0", False),
    "memory-on": ("1", False),
    "redis-off": ("0", True),
    "redis-on": ("1", True),
}
ROOM = "bench-presence"


@dataclass
class Counts:
    connected: int = 0
    failed: int = 0
    frames: int = 0
    status_only: int = 0  # the liveness task's connection status for an idle socket
    presence: int = 0
    bytes: int = 0
    per_socket: list[int] = field(default_factory=list)
    last_frame: float = 0.0


async def listen(socket, counts: Counts, index: int) -> None:
    while (text := await socket.recv()) is not None:
        counts.frames += 1
        counts.bytes += len(text)
        if text.count(' id="') == 1 and 'id="connection-status"' in text:
            counts.status_only += 1  # on connect, then every 10 s on an idle socket, presence or not
            continue
        counts.last_frame = time.monotonic()
        if 'id="presence"' in text:
            counts.presence += 1
            counts.per_socket[index] += 1


async def join_all(port: int, clients: int, settle: float, limit: float, cpu) -> tuple[Counts, float, float]:
    counts = Counts(per_socket=[0] * clients)
    origin = f"http://{servers.HOST}:{port}"
    sockets, tasks = [], []

    async def one(index: int) -> None:
        try:
            socket = await asyncio.wait_for(
                ws_connect(servers.HOST, port, f"/ws/chat/{ROOM}/", origin=origin), timeout=30
            )
        except Exception:
            counts.failed += 1
            return
        counts.connected += 1
        sockets.append(socket)
        tasks.append(asyncio.create_task(listen(socket, counts, index)))
        await socket.send_text('{"after": "0", "HEADERS": {"HX-Request": "true", "HX-Trigger": "sync"}}')

    started = time.monotonic()
    counts.last_frame = started
    cpu_before = cpu()
    await asyncio.gather(*(one(index) for index in range(clients)))
    counts.last_frame = max(counts.last_frame, time.monotonic())  # settling starts once all are in
    # Polls a clock the listeners move (no event to wait for: quiet is the absence of one).
    while time.monotonic() - counts.last_frame < settle and time.monotonic() - started < limit:  # noqa: ASYNC110
        await asyncio.sleep(0.2)
    elapsed = counts.last_frame - started
    cpu_used = cpu() - cpu_before  # before the sockets close: the joins and what they caused
    for socket in sockets:
        socket.close()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return counts, elapsed, cpu_used


def start_redis(directory: Path) -> tuple[subprocess.Popen, str]:
    port = servers.free_port()
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", servers.HOST, "--save", "", "--appendonly", "no"],
        cwd=directory,
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while servers.port_is_free(port):
        if time.monotonic() > deadline:
            raise servers.BenchError("redis-server did not start")
        time.sleep(0.05)
    return process, f"redis://{servers.HOST}:{port}/0"


def run(name: str, args: argparse.Namespace, directory: Path) -> dict:
    presence, redis = CONFIGS[name]
    database = directory / f"{name}.sqlite3"
    env = servers.base_env(run_id="presence", database_url=f"sqlite:///{database}")
    env["CHAT_PRESENCE"] = presence
    env["CHAT_LIMIT_SOCKETS_PER_IP"] = str(2 * args.clients + 100)  # every socket comes from this machine
    redis_process = None
    if redis:
        redis_process, env["REDIS_URL"] = start_redis(directory)
    try:
        servers.manage(env, "migrate", "--noinput", "--verbosity", "0")
        [server] = servers.start_servers(
            app="project.asgi:application", count=1, env=env, log_dir=directory, label=name, backlog=None
        )
        try:
            servers.wait_ready([server])
            counts, elapsed, cpu = asyncio.run(
                join_all(server.port, args.clients, args.settle, args.limit, lambda: servers.sample([server])["cpu_s"])
            )
        finally:
            servers.stop_servers([server])
    finally:
        if redis_process is not None:
            redis_process.send_signal(signal.SIGTERM)
            redis_process.wait(10)
    return {"name": name, "counts": counts, "elapsed": elapsed, "cpu": cpu}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.presence", description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1000, help="sockets joining one room at once (1000)")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds without a frame that end a run (5)")
    parser.add_argument("--limit", type=float, default=120.0, help="longest a run may take, seconds (120)")
    parser.add_argument("--configs", default=",".join(CONFIGS), help=f"comma-separated from: {', '.join(CONFIGS)}")
    args = parser.parse_args()
    names = [name.strip() for name in args.configs.split(",") if name.strip()]
    if any(CONFIGS[name][1] for name in names) and shutil.which("redis-server") is None:
        raise SystemExit("redis-server is needed for the Redis configurations")
    print(f"{args.clients} anonymous sockets joining one room at once; one daphne; settle {args.settle} s")
    print(f"without coalescing, presence alone would be {args.clients * (args.clients + 1) // 2:,} frames")
    header = "| configuration | connected | frames | presence frames | max per socket | MiB received | first connect → last frame | server CPU |"  # noqa: E501
    print(header)
    print("|---|---|---|---|---|---|---|---|")
    # Frames: everything but the bare connection-status frames (counted apart, below the table).
    idle = []
    with tempfile.TemporaryDirectory(prefix="bench-presence-") as tmp:
        for name in names:
            result = run(name, args, Path(tmp))
            c = result["counts"]
            idle.append(f"{name}: {c.status_only:,}")
            print(
                f"| {name} | {c.connected} ({c.failed} failed) | {c.frames - c.status_only:,} | {c.presence:,} | "
                f"{max(c.per_socket, default=0)} | {c.bytes / 2**20:.1f} | {result['elapsed']:.1f} s | "
                f"{result['cpu']:.1f} s |",
                flush=True,
            )
    print(f"bare connection-status frames (on connect, idle refreshes; not in the table): {'; '.join(idle)}")


if __name__ == "__main__":
    main()
