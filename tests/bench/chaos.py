"""`python -m tests.bench.chaos`: faults under load; after each, every page must end with every change once.

Two daphne on a private redis-server and a private PostgreSQL (initdb into a temp dir, on a free port,
so it can be restarted), each with the Procfile's options. --pages room pages (tests/bench/clients.py:
the cursor kept as htmx keeps it, every frame checked) over --rooms rooms, signed-in ones posting at
--rate with edits and deletes mixed in, the lobby tabs open. Then, one after the other:

- kill-daphne: kill -9 of one daphne; the harness restarts it on its port 2 s later;
- redis-restart: redis-server stopped and started again on its port (empty: no persistence);
- redis-pause: redis-server SIGSTOPped for 10 s, then SIGCONT;
- postgres-restart: `pg_ctl restart -m fast`;
- kill-in-catch-up: the pages of a few rooms go away, their rooms get many changes, they all come back
  to one daphne with their old cursors, and that daphne is killed (-9) in the middle of their catch-ups.

Each fault comes with a burst of posts while it lasts. After each, the pages reconnect as htmx does (to
either daphne) and the run waits until every page is whole again: connected, nothing unsent, its cursor
at its room's newest. It prints, per fault, that time (from the fault's start), what the senders saw
(errors, refusals, posts sent again, connects that failed, close codes), and the check of every page
against the database (every message exactly once, as stored; every post the senders made stored once).
"""

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from tests.support.procfile import web_daphne

from . import clients, servers
from .__main__ import raise_fd_limit
from .soak import collect_static

FAULTS = ("kill-daphne", "redis-restart", "redis-pause", "postgres-restart", "kill-in-catch-up")
PAUSE_S = 10.0


# --- the private services --------------------------------------------------------------------------


def pg_bin(name: str) -> str:
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    if not found:
        raise servers.BenchError(f"no {name} under /usr/lib/postgresql/*/bin")
    return str(found[-1])


def as_postgres(command: list[str]) -> list[str]:
    """initdb and pg_ctl refuse to run as root: run them as the postgres user then."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


class PrivatePostgres:
    def __init__(self, directory: Path) -> None:
        self.dir = directory / "pg"
        self.data = self.dir / "data"
        self.dir.mkdir()
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self.port = servers.free_port()
        self.log = directory / "pg.log"
        self.log.touch()
        if os.geteuid() == 0:
            shutil.chown(self.log, "postgres", "postgres")
        subprocess.run(
            as_postgres(
                [pg_bin("initdb"), "-D", str(self.dir / "data"), "-U", "postgres", "--auth=trust", "-E", "UTF8"]
            ),
            check=True,
            capture_output=True,
            timeout=120,
        )

    @property
    def url(self) -> str:
        return f"postgres://postgres@{servers.HOST}:{self.port}/postgres"

    def ctl(self, *args: str) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses={servers.HOST} -c max_connections=200"
        subprocess.run(
            as_postgres(
                [pg_bin("pg_ctl"), "-D", str(self.dir / "data"), "-l", str(self.log), "-o", options, "-w", *args]
            ),
            check=True,
            capture_output=True,
            timeout=120,
        )

    def start(self) -> None:
        self.ctl("start")

    def restart(self) -> None:
        self.ctl("restart", "-m", "fast")

    def stop(self) -> None:
        try:
            self.ctl("stop", "-m", "immediate")
        except subprocess.CalledProcessError:
            pass


class PrivateRedis:
    def __init__(self) -> None:
        self.port = servers.free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://{servers.HOST}:{self.port}/0"

    def start(self) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", servers.HOST, "--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while servers.port_is_free(self.port):
            if time.monotonic() > deadline:
                raise servers.BenchError("redis-server did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            self.process.wait(timeout=10)


def restart_daphne(server: servers.Server, env: dict[str, str]) -> None:
    """The same daphne again, on the same port (as a platform restarts a crashed process)."""
    options, application = web_daphne(port=server.port, host=servers.HOST)
    deadline = time.monotonic() + 30
    while not servers.port_is_free(server.port) and time.monotonic() < deadline:
        time.sleep(0.1)
    with server.log_path.open("ab") as log:
        server.process = subprocess.Popen(
            [sys.executable, "-m", "daphne", *options, application],
            cwd=servers.REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


# --- the run ---------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.chaos", description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=300, help="room pages (300)")
    parser.add_argument("--rooms", type=int, default=10)
    parser.add_argument("--users", type=int, default=60, help="signed-in users, two room tabs each (60)")
    parser.add_argument("--lobby", type=int, default=20, help="lobby tabs (20)")
    parser.add_argument("--rate", type=float, default=2.0, help="steady posts per second (2)")
    parser.add_argument("--burst", type=int, default=40, help="extra posts during each fault (40)")
    parser.add_argument("--faults", default=",".join(FAULTS), help=f"comma-separated from: {', '.join(FAULTS)}")
    parser.add_argument("--whole-timeout", type=float, default=150.0, help="longest wait for the pages (150 s)")
    args = parser.parse_args(argv)
    args.faults = [name.strip() for name in args.faults.split(",") if name.strip()]
    if any(name not in FAULTS for name in args.faults):
        parser.error("unknown fault")
    return args


async def burst(site: clients.Site, users: list[clients.User], count: int, seconds: float) -> None:
    """`count` posts spread over `seconds`, from random signed-in pages (held until their socket is open)."""
    for index in range(count):
        user = site.rng.choice(users)
        page = site.rng.choice(user.pages)
        await page.post(f"burst {user.name} {index} {os.urandom(3).hex()}")
        await asyncio.sleep(seconds / count)


async def fault(
    name: str,
    *,
    started: list[servers.Server],
    env: dict[str, str],
    redis: PrivateRedis,
    pg: PrivatePostgres,
    site: clients.Site,
    pages: list[clients.Page],
    users: list[clients.User],
    args: argparse.Namespace,
) -> dict[str, Any]:
    before = snapshot(site.tally)
    t0 = time.monotonic()
    burst_task = asyncio.ensure_future(burst(site, users, args.burst, 8.0))
    detail = ""
    if name == "kill-daphne":
        victim = started[1]
        victim.process.kill()
        await asyncio.sleep(2.0)
        await asyncio.to_thread(restart_daphne, victim, env)
        await asyncio.to_thread(servers.wait_ready, [victim])
        detail = f"daphne on {victim.port} killed, back after {time.monotonic() - t0:.1f} s"
    elif name == "redis-restart":
        await asyncio.to_thread(redis.stop)
        await asyncio.sleep(1.0)
        await asyncio.to_thread(redis.start)
        detail = f"redis-server down {time.monotonic() - t0:.1f} s"
    elif name == "redis-pause":
        redis.process.send_signal(signal.SIGSTOP)
        await asyncio.sleep(PAUSE_S)
        redis.process.send_signal(signal.SIGCONT)
        detail = f"redis-server stopped for {PAUSE_S:.0f} s"
    elif name == "postgres-restart":
        await asyncio.to_thread(pg.restart)
        detail = f"PostgreSQL restarted in {time.monotonic() - t0:.1f} s"
    elif name == "kill-in-catch-up":
        detail = await kill_in_catch_up(started=started, env=env, site=site, pages=pages, users=users)
    over_s = time.monotonic() - t0
    await burst_task
    fault_s = time.monotonic() - t0
    whole_after = await clients.settle(site, pages, timeout=args.whole_timeout)
    # Posts the senders still hold are sent again by them now (as a writer does who sees no message).
    return {
        "fault": name,
        "detail": detail,
        "fault_s": fault_s,
        "over_s": over_s,
        "whole_s": None if whole_after is None else fault_s + whole_after,
        "saw": diff(before, snapshot(site.tally)),
    }


async def kill_in_catch_up(
    *,
    started: list[servers.Server],
    env: dict[str, str],
    site: clients.Site,
    pages: list[clients.Page],
    users: list[clients.User],
) -> str:
    rooms = sorted({page.room for page in pages})[:3]
    away = [page for page in pages if page.room in rooms]
    site.held_rooms.update(rooms)
    for page in away:
        if page.ws is not None:
            page.ws.writer.transport.abort()
    await asyncio.sleep(2.0)
    # Many changes while they are away: each page has a catch-up of a few hundred KiB to read.
    posters = [user for user in users if any(page.room in rooms for page in user.pages)]
    for index in range(150):
        user = posters[index % len(posters)]
        page = next(page for page in user.pages if page.room in rooms)
        fields = {
            "csrfmiddlewaretoken": user.csrf,
            "token": str(uuid.uuid4()),
            "message": f"away {index} " + "x" * 1500,
        }
        await clients.http(started[0].port, "POST", f"/chat/{page.room}/", cookie=user.cookie, form=fields)
    victim = started[0]
    for room in rooms:
        site.pinned[room] = victim.port
    site.held_rooms.difference_update(rooms)
    await asyncio.sleep(0.6)  # they connect and sync: the catch-ups are being read and sent
    connected = sum(1 for page in away if page.ws is not None)
    victim.process.kill()
    for room in rooms:
        site.pinned.pop(room, None)
    await asyncio.sleep(2.0)
    await asyncio.to_thread(restart_daphne, victim, env)
    await asyncio.to_thread(servers.wait_ready, [victim])
    return f"{len(away)} pages of {len(rooms)} rooms away for 150 changes; {connected} reconnected when killed"


def snapshot(tally: clients.Tally) -> dict[str, Counter]:
    return {
        "sender": Counter(tally.sender),
        "failures": Counter(tally.failures),
        "closes": Counter({str(k): v for k, v in tally.closes.items()}),
        "problems": Counter(tally.problems),
        "notes": Counter(tally.notes),
        "posts": Counter(posts=tally.posts, shown=tally.acked, edits=tally.edits, deletes=tally.deletes),
    }


def diff(before: dict[str, Counter], after: dict[str, Counter]) -> dict[str, dict[str, int]]:
    return {key: dict(after[key] - before[key]) for key in after if after[key] - before[key]}


async def run(args: argparse.Namespace, env: dict[str, str], started, redis, pg, run_id: str) -> list[dict[str, Any]]:
    rooms = [f"chaos-{run_id}-{index}" for index in range(args.rooms)]
    users = await asyncio.to_thread(
        clients.make_users, env, prefix=f"chaos-{run_id}-u", count=args.users, sessions=1, rooms=rooms
    )
    site = clients.Site(ports=[server.port for server in started])
    site.steady = True  # no drops on purpose: every reconnect here is the fault's
    pages: list[clients.Page] = []
    for index, user in enumerate(users):
        for tab in range(2):
            pages.append(clients.Page(site, rooms[(2 * index + tab) % len(rooms)], user))
    for index in range(max(0, args.pages - 2 * args.users)):
        pages.append(clients.Page(site, rooms[index % len(rooms)], None))
    lobbies = [clients.LobbyPage(site, users[index % len(users)]) for index in range(args.lobby)]
    tasks = []
    for page in [*pages, *lobbies]:
        tasks.append(asyncio.ensure_future(page.live()))
        await asyncio.sleep(10.0 / (len(pages) + len(lobbies)))
    paused = asyncio.Event()
    paused.set()
    work = clients.Workload(
        posts_per_s=args.rate, edits_per_s=args.rate * 0.15, deletes_per_s=args.rate * 0.05, logout_every_s=0
    )
    driver = asyncio.ensure_future(clients.drive(site, users, work, until=time.monotonic() + 3600, paused=paused))
    results = []
    try:
        ready = await clients.settle(site, pages, timeout=120)
        shown = "-" if ready is None else f"{ready:.1f}"
        print(f"{len(pages)} pages and {len(lobbies)} lobby tabs whole after {shown} s; load running", flush=True)
        for name in args.faults:
            await asyncio.sleep(5.0)
            result = await fault(
                name, started=started, env=env, redis=redis, pg=pg, site=site, pages=pages, users=users, args=args
            )
            # Checked with the load paused, every page caught up: the truth is what the database holds.
            paused.clear()
            await clients.settle(site, pages, timeout=60)
            facts = await asyncio.to_thread(clients.truth, env, rooms)
            result["checked"] = clients.verify(pages, facts)
            result["examples"] = list(clients.EXAMPLES)
            clients.EXAMPLES.clear()
            result["unstored"] = unstored_posts(pages, facts)
            paused.set()
            results.append(result)
            print(report_line(result), flush=True)
    finally:
        site.stopping = True
        driver.cancel()
        for page in [*pages, *lobbies]:
            if page.ws is not None:
                page.ws.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(driver, *tasks, return_exceptions=True)
    return results


def unstored_posts(pages: list[clients.Page], facts: dict[str, Any]) -> int:
    """Posts a sender still holds (never shown to them): their text is not in the database either."""
    stored = {body for _, _, body in facts["messages"] if body}
    return sum(1 for page in pages for text, _, _ in page.pending.values() if text not in stored)


def report_line(result: dict[str, Any]) -> str:
    checked = result["checked"]
    whole = "never (within the timeout)" if result["whole_s"] is None else f"{result['whole_s']:.1f} s"
    ok = checked["pages not whole"] == 0 and checked["texts stored twice"] == 0 and not result["unstored"]
    problems = result["saw"].get("problems", {})
    lines = [
        f"{result['fault']}: {result['detail']}; every page whole again {whole} after the fault began "
        f"(the fault over at {result['over_s']:.1f} s, its burst at {result['fault_s']:.1f} s); "
        f"every message exactly once on every page: {'yes' if ok and not problems else 'NO'} "
        f"({checked['pages checked']} pages, {checked['messages stored']} messages; {checked['pages not whole']} "
        f"not whole, {checked['messages missing from a page']} missing, "
        f"{checked['messages shown with another text than stored']} stale, {checked['texts stored twice']} stored "
        f"twice, {result['unstored']} posts never stored, problems {problems or 'none'})",
        f"  senders and pages saw: {json.dumps({k: v for k, v in result['saw'].items() if k != 'problems'})}",
    ]
    lines.extend(f"  not whole: {example}" for example in result["examples"])
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    raise_fd_limit(4 * (args.pages + args.lobby) + 512)
    run_id = os.urandom(3).hex()
    workdir = Path(tempfile.mkdtemp(prefix="chat-chaos-"))
    os.chmod(workdir, 0o755)
    print(f"chaos {run_id} on {servers.code_version()}: logs in {workdir}", flush=True)
    pg = PrivatePostgres(workdir)
    redis = PrivateRedis()
    started: list[servers.Server] = []
    try:
        pg.start()
        redis.start()
        env = servers.base_env(run_id=run_id, database_url=pg.url)
        collect_static(env)
        env.update(
            {
                "REDIS_URL": redis.url,
                "CHAT_BENCH_STATS": "1",
                "CHAT_LIMIT_SOCKETS_PER_IP": str(10 * (args.pages + args.lobby)),
                "CHAT_LIMIT_POSTS_PER_IP": "100000/60",
                # The away burst of kill-in-catch-up posts 150 long messages from a few users at once.
                "CHAT_LIMIT_POSTS_PER_USER": "600/60",
            }
        )
        servers.manage(env, "migrate", "--noinput", "--verbosity", "0")
        started = servers.start_servers(
            app="project.asgi:application", count=2, env=env, log_dir=workdir, label="chaos", backlog=None
        )
        servers.wait_ready(started)
        print(
            f"{args.pages} room pages ({args.users} users x 2 tabs, the rest anonymous) and {args.lobby} lobby tabs "
            f"over {args.rooms} rooms on 2 daphne, Redis {redis.url}, PostgreSQL {pg.url}; {args.rate:g} posts/s "
            f"with edits and deletes; a burst of {args.burst} posts during each fault",
            flush=True,
        )
        results = asyncio.run(run(args, env, started, redis, pg, run_id))
        log = servers.count_in_logs(started, ("Traceback", "Disconnected", "OperationalError", "ConnectionError"))
        print()
        print("| fault | over / burst over / all pages whole (s) | exactly once | seen |")
        print("|---|---|---|---|")
        for result in results:
            checked = result["checked"]
            ok = checked["pages not whole"] == 0 and checked["texts stored twice"] == 0 and not result["unstored"]
            whole = "never" if result["whole_s"] is None else f"{result['whole_s']:.1f} s"
            saw = result["saw"]
            shown = "; ".join(
                f"{key}: " + ", ".join(f"{k} {v}" for k, v in value.items()) for key, value in saw.items() if value
            )
            times = f"{result['over_s']:.1f} / {result['fault_s']:.1f} / {whole}"
            print(f"| {result['fault']} ({result['detail']}) | {times} | {'yes' if ok else 'NO'} | {shown} |")
        print(f"server logs: {log}")
    finally:
        servers.stop_servers(started)
        redis.stop()
        pg.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
