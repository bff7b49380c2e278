"""The server side of the bench: environment, database set-up, daphne processes, their memory and CPU.

Everything runs on loopback; every wait has a deadline. Only processes started
here are ever stopped, by their own pid.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from tests.support.procfile import web_daphne

REPO = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
# Variables that would change the product's configuration: the bench sets its own.
PRODUCT_ENV_PREFIXES = ("DJANGO_", "DATABASE_URL", "REDIS_URL", "CHANNEL_LAYER", "CHAT_", "BENCH_")
CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    pass


def base_env(*, run_id: str, database_url: str) -> dict[str, str]:
    """Production-like settings (DEBUG off, real secret, host list), no SSL redirect on plain loopback HTTP."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(PRODUCT_ENV_PREFIXES)}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "project.settings",
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": f"bench-{run_id}-not-a-real-secret-{os.urandom(16).hex()}",
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DJANGO_SECURE_SSL_REDIRECT": "0",
            "DATABASE_URL": database_url,
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def manage(env: dict[str, str], *args: str, timeout: float = 180) -> str:
    completed = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if completed.returncode:
        raise BenchError(f"manage.py {args[0]} failed:\n{completed.stdout}\n{completed.stderr}")
    return completed.stdout


SETUP_SCRIPT = """
import os
from django.contrib.auth.models import User
from django.db import transaction
from django.middleware.csrf import _get_new_csrf_string
from django.test import Client
from chat import services
from chat.models import Membership, Room
from tests.bench.login_sessions import login_session
user = User.objects.create_user(os.environ["BENCH_USERNAME"])
for name in filter(None, os.environ["BENCH_ROOMS"].split(",")):
    Room.objects.get_or_create(name=name)
client = Client()
client.force_login(user)
print("SESSIONID=" + client.cookies["sessionid"].value)
print("CSRFSECRET=" + _get_new_csrf_string())
# Signed-in receivers: one user and one login session each, as Django's login() stores it.
count = int(os.environ.get("BENCH_RECEIVERS") or 0)
prefix = os.environ["BENCH_USERNAME"] + "-r"
with transaction.atomic():
    User.objects.bulk_create([User(username=f"{prefix}{i}") for i in range(count)])
    receivers = list(User.objects.filter(username__startswith=prefix))
    for receiver in receivers:
        print("RECEIVER=" + login_session(receiver))
# Private rooms: made as the new-room form makes them (the sender, their owner, is the first member),
# with every receiver a member, added in bulk (services.member_add would be a query or two per member).
for name in filter(None, os.environ.get("BENCH_PRIVATE_ROOMS", "").split(",")):
    room = services.room_create(name=name, creator=user, private=True)
    Membership.objects.bulk_create([Membership(room=room, user=receiver) for receiver in receivers])
"""

CLEANUP_SCRIPT = """
import os
from django.contrib.auth.models import User
from chat.models import Room
User.objects.filter(username=os.environ["BENCH_USERNAME"]).delete()
User.objects.filter(username__startswith=os.environ["BENCH_USERNAME"] + "-r").delete()
Room.objects.filter(name__in=os.environ["BENCH_ROOMS"].split(",")).delete()
"""


def sender_session(
    env: dict[str, str],
    *,
    username: str,
    rooms: list[str],
    receivers: int = 0,
    private_rooms: Sequence[str] = (),
) -> tuple[str, list[str]]:
    """Create the sender (a real user with a real login session), the public `rooms`, `receivers` signed-in
    users and the `private_rooms` (the sender their owner, every receiver a member); return the sender's Cookie
    header (the session, and a CSRF cookie its posts carry a token of) and one for each receiver."""
    setup_env = {
        **env,
        "BENCH_USERNAME": username,
        "BENCH_ROOMS": ",".join(rooms),
        "BENCH_RECEIVERS": str(receivers),
        "BENCH_PRIVATE_ROOMS": ",".join(private_rooms),
    }
    output = manage(setup_env, "shell", "-c", SETUP_SCRIPT, timeout=600)
    sender, secret, cookies = None, None, []
    for line in output.splitlines():
        if line.startswith("SESSIONID="):
            sender = "sessionid=" + line.removeprefix("SESSIONID=")
        elif line.startswith("CSRFSECRET="):
            secret = line.removeprefix("CSRFSECRET=")
        elif line.startswith("RECEIVER="):
            cookies.append("sessionid=" + line.removeprefix("RECEIVER="))
    if sender is None or secret is None or len(cookies) != receivers:
        raise BenchError(f"sessions missing in: {output[:2000]!r}")
    return f"{sender}; csrftoken={secret}", cookies


def cleanup(env: dict[str, str], *, username: str, rooms: list[str]) -> None:
    manage({**env, "BENCH_USERNAME": username, "BENCH_ROOMS": ",".join(rooms)}, "shell", "-c", CLEANUP_SCRIPT)


def redis_flush(url: str) -> None:
    """Empty the bench's own Redis database (never db 0, never another host)."""
    import redis

    parts = urlsplit(url)
    db = int((parts.path or "/0").strip("/") or 0)
    if parts.hostname not in ("127.0.0.1", "localhost", "::1") or db == 0:
        raise BenchError(f"refusing to FLUSHDB {url}: give a loopback URL with a dedicated db index, e.g. /5")
    client = redis.Redis.from_url(url, socket_timeout=10)
    try:
        client.flushdb()
    finally:
        client.close()


def redis_clients(url: str) -> int:
    """Connections to the bench's Redis db (CLIENT LIST shows each client's selected db), this one excluded."""
    import redis

    db = int((urlsplit(url).path or "/0").strip("/") or 0)
    client = redis.Redis.from_url(url, socket_timeout=10)
    try:
        return sum(1 for entry in client.client_list() if int(entry.get("db", -1)) == db) - 1
    finally:
        client.close()


def start_private_redis(count: int) -> tuple[list[subprocess.Popen], list[str]]:
    """`count` redis-servers of the bench's own on free loopback ports (no persistence); their URLs."""
    processes, urls = [], []
    for _ in range(count):
        port = free_port()
        command = ["redis-server", "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no"]
        processes.append(subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT))
        urls.append(f"redis://{HOST}:{port}/0")
        deadline = time.monotonic() + 10
        while port_is_free(port):
            if time.monotonic() > deadline:
                stop_private_redis(processes)
                raise BenchError(f"redis-server on {port} did not start")
            time.sleep(0.05)
    return processes, urls


def stop_private_redis(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        process.terminate()
        process.wait(timeout=10)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Twisted binds
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


@dataclass
class Server:
    port: int
    process: subprocess.Popen
    log_path: Path

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def start_servers(
    *,
    app: str,
    count: int,
    env: dict[str, str],
    log_dir: Path,
    label: str,
    backlog: int | None,
    daphne_defaults: bool = False,
) -> list[Server]:
    servers = []
    for index in range(count):
        port = free_port()
        log_path = log_dir / f"{label}-{index}.log"
        # The Procfile's daphne options (listen backlog included, unless --backlog overrides it),
        # or daphne's defaults as the README's run command has them.
        options, _ = web_daphne(port=port, host=HOST, backlog=backlog)
        if daphne_defaults:
            options = ["-b", HOST, "-p", str(port)]
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "daphne", *options, app],
                cwd=REPO,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        servers.append(Server(port=port, process=process, log_path=log_path))
    return servers


def start_profilers(servers: list[Server], directory: Path, label: str) -> list[subprocess.Popen]:
    """py-spy on each server process (its own pid), until stop_profilers."""
    directory.mkdir(parents=True, exist_ok=True)
    py_spy = Path(sys.executable).with_name("py-spy")
    options = ["-r", "100", "-f", "raw", "--nonblocking", "--gil"]  # --gil: only the thread running Python
    return [
        subprocess.Popen(
            [
                str(py_spy),
                "record",
                *options,
                "-p",
                str(server.process.pid),
                "-o",
                str(directory / f"{label}-{index}.txt"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for index, server in enumerate(servers)
    ]


def stop_profilers(profilers: list[subprocess.Popen]) -> None:
    """SIGINT makes py-spy write its file."""
    for profiler in profilers:
        profiler.send_signal(signal.SIGINT)
    for profiler in profilers:
        try:
            profiler.wait(timeout=30)
        except subprocess.TimeoutExpired:
            profiler.kill()


def http_status(port: int, timeout: float = 5) -> int | None:
    """A plain GET on a path no app serves: any HTTP answer means daphne and Django are up."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as sock:
            sock.sendall(f"GET /bench-ready/ HTTP/1.0\r\nHost: {HOST}:{port}\r\n\r\n".encode())
            status = sock.recv(64).split(b" ")
            return int(status[1]) if len(status) > 1 and status[1].isdigit() else None
    except OSError:
        return None


def wait_ready(servers: list[Server], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    for server in servers:
        while http_status(server.port) is None:
            if server.process.poll() is not None:
                raise BenchError(f"daphne on {server.port} exited:\n{server.log_tail()}")
            if time.monotonic() > deadline:
                raise BenchError(f"daphne on {server.port} not ready after {timeout}s:\n{server.log_tail()}")
            time.sleep(0.2)


def stop_servers(servers: list[Server], timeout: float = 15) -> None:
    """SIGTERM, then SIGKILL after `timeout`; then wait until the ports can be bound again."""
    for server in servers:
        if server.process.poll() is None:
            server.process.send_signal(signal.SIGTERM)
    for server in servers:
        try:
            server.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(timeout=timeout)
    deadline = time.monotonic() + 60
    for server in servers:
        while not port_is_free(server.port):
            if time.monotonic() > deadline:
                raise BenchError(f"port {server.port} still busy a minute after its daphne stopped")
            time.sleep(0.2)


def sample(servers: list[Server]) -> dict[str, float]:
    """Resident memory (VmRSS, KiB) and CPU seconds (user + system), summed over the server processes."""
    rss_kib = 0
    cpu_s = 0.0
    for server in servers:
        pid = server.process.pid
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss_kib += int(line.split()[1])
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()
        cpu_s += (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime
    return {"rss_kib": rss_kib, "cpu_s": cpu_s}


def count_in_logs(servers: list[Server], needles: tuple[str, ...]) -> dict[str, int]:
    counts = dict.fromkeys(needles, 0)
    for server in servers:
        text = server.log_path.read_text(errors="replace")
        for needle in needles:
            counts[needle] += text.count(needle)
    return counts


def layer_line(server: Server) -> str | None:
    """What tests.bench.settings logged: the layer backend and Redis host entry this run measured."""
    for line in server.log_path.read_text(errors="replace").splitlines():
        if line.startswith("bench channel layer: "):
            return line.removeprefix("bench channel layer: ")
    return None


def code_version() -> str:
    """The commit measured, and whether the working tree differs from it (others may be editing)."""

    def git(*args: str) -> str:
        result = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=30, check=False)
        return result.stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    changed = [line for line in git("status", "--porcelain", "--", "chat", "project", "templates").splitlines() if line]
    return f"{head}" + (f" + {len(changed)} uncommitted product files" if changed else "")
