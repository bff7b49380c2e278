"""Live fixtures: a real daphne process and a real Chromium driven by Playwright.

`DaphneServer` runs the project the way the Procfile's `web:` line does (its daphne options,
bound to 127.0.0.1 and a free port) in production mode: DEBUG off, hashed static files through
WhiteNoise, secure cookies (Chromium keeps them on http://127.0.0.1), its own SQLite file; only
the password hasher and where static files are collected differ (tests/support/server_settings.py).
It can be stopped and started again on the same port and database, and several can share
one database (and a REDIS_URL) for cross-process tests.

Browser tests are plain sync functions (Playwright's sync API refuses to run inside an
event loop) and never use pytest-django's `db`: the server owns its database. Playwright is
imported only inside the browser fixture (hence the `Any` types), so collecting other tests
never needs it.
"""

import fcntl
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from tests.support.procfile import web_daphne

BASE_DIR = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
PASSWORD = "correct-horse-battery-staple"
# One key for every server of the session, as in a deployment: a session made by one process
# is valid in another that shares the database.
SECRET_KEY = f"test-secret-{uuid4().hex}"
# The fixtures that start server processes: a test that uses one, directly or through another
# fixture, is marked `slow` (`pytest_collection_modifyitems` below).
SERVER_FIXTURES = frozenset({"live_server_factory", "browser", "redis_server", "module_redis_server"})
# Variables of the calling shell that would change what the server runs against.
INHERITED_SETTINGS = ("DATABASE_URL", "REDIS_URL", "DJANGO_", "CHANNEL_LAYER", "CHAT_")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def daphne_command(port: int) -> list[str]:
    """The Procfile's `web:` daphne command (its timeouts and pings), bound to 127.0.0.1:port."""
    options, application = web_daphne(port=port)
    return [sys.executable, "-m", "daphne", *options, application]


def server_env(database: Path, **overrides: str) -> dict[str, str]:
    """Production-mode settings (tests/support/server_settings.py) for a plain-http server on 127.0.0.1 with its
    own SQLite file."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(INHERITED_SETTINGS)}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "tests.support.server_settings",
            "DATABASE_URL": f"sqlite:///{database}",
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": SECRET_KEY,
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DJANGO_SECURE_SSL_REDIRECT": "0",
            "DJANGO_SECURE_HSTS_SECONDS": "0",
            "DJANGO_LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
            # Every test client is 127.0.0.1 and the session's tests sign up many users: the
            # address limits would add up across tests (tests of the limits set their own).
            "CHAT_LIMIT_SIGNUPS_PER_IP": "1000/3600",
            "CHAT_LIMIT_LOGIN_FAILURES_PER_IP": "1000/900",
            "CHAT_LIMIT_POSTS_PER_IP": "1000/60",
            "CHAT_LIMIT_POSTS_PER_USER": "1000/60",
        }
    )
    env.update(overrides)
    return env


def manage(env: Mapping[str, str], *args: str) -> str:
    """Run a management command against the server's settings; its output, or a failure with it."""
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode != 0:
        pytest.fail(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


class DaphneServer:
    """One daphne process on a fixed port; `stop()` and `start()` again keep port and database."""

    def __init__(self, port: int, env: Mapping[str, str], log_path: Path | None = None) -> None:
        self.port = port
        self.env = dict(env)
        # daphne's output (access log and errors), appended to across restarts.
        self.log_path = log_path or Path(tempfile.mkdtemp(prefix="daphne-")) / "daphne.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 20.0) -> "DaphneServer":
        assert not self.running, "already running"
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                daphne_command(self.port),
                cwd=BASE_DIR,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.wait_until_listening(timeout)
        return self

    def wait_until_listening(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                pytest.fail(f"daphne exited during start-up:\n{self.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        pytest.fail(f"daphne did not listen on {self.port} within {timeout} s:\n{self.log_tail()}")

    def stop(self, *, graceful: bool = True, timeout: float = 10.0) -> None:
        """SIGTERM, or SIGKILL to simulate a crash. Either way browsers see close code 1006 and htmx reconnects."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM if graceful else signal.SIGKILL)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def manage(self, *args: str) -> str:
        return manage(self.env, *args)

    def create_users(self, *usernames: str, password: str = PASSWORD) -> None:
        """Create accounts in the server's database (one Django start-up for all of them)."""
        code = (
            "from django.contrib.auth.models import User\n"
            f"for name in {list(usernames)!r}:\n"
            f"    User.objects.create_user(name, password={password!r})\n"
        )
        self.manage("shell", "-c", code)

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def __repr__(self) -> str:
        return f"<DaphneServer {self.url} {'running' if self.running else 'stopped'}>"


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto` (pyproject's addopts): how many pytest-xdist workers. The quick tier's tests mostly wait
    on sockets and timers, so two per core; a run with the slow tier also runs Chromium and daphne
    processes, so one per core plus one (more made the browsers' deadlines miss on two cores)."""
    cores = os.cpu_count() or 1
    if "not slow" in (config.option.markexpr or ""):
        return 2 * cores
    return cores + 1


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that starts a server process (daphne, redis-server, Chromium), directly or through one of
    its fixtures, is `slow`: `pytest -m "not slow"` is the quick tier."""
    for item in items:
        if SERVER_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


def once_a_run(tmp_path_factory: pytest.TempPathFactory, name: str, make: Callable[[Path], None]) -> Path:
    """`make(path)` once for the whole run, in the run's temp directory: under pytest-xdist the first worker
    does it while the others wait on a lock there. Returns the path."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base  # the run's, not an earlier run's
    path = shared / name
    with (shared / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = shared / f"{name}.done"
        if not done.exists():
            make(path)
            done.touch()
    return path


@pytest.fixture(scope="session")
def collected_static(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Hashed static files for WhiteNoise's manifest storage, collected once a run (the servers' STATIC_ROOT)."""

    def collect(static_root: Path) -> None:
        env = server_env(Path("/nonexistent/db.sqlite3"), TESTS_STATIC_ROOT=str(static_root))
        manage(env, "collectstatic", "--noinput", "--verbosity", "0")

    return once_a_run(tmp_path_factory, "static", collect)


@pytest.fixture(scope="session")
def migrated_database(tmp_path_factory: pytest.TempPathFactory, collected_static: Path) -> Path:
    """One migrated SQLite database a run, which each new server's database starts as a copy of (a `migrate`
    is a Django start-up plus every migration)."""

    def migrate(template: Path) -> None:
        manage(
            server_env(template, TESTS_STATIC_ROOT=str(collected_static)), "migrate", "--noinput", "--verbosity", "0"
        )

    return once_a_run(tmp_path_factory, "migrated.sqlite3", migrate)


@pytest.fixture(scope="session")
def live_server_factory(tmp_path_factory, collected_static, migrated_database) -> Iterator[Callable[..., DaphneServer]]:
    """Start migrated daphne servers; every one is stopped at the end of the session.

    `live_server_factory()` gets a new database; `live_server_factory(DATABASE_URL=other.env["DATABASE_URL"],
    REDIS_URL=...)` shares one, e.g. for two processes behind one Redis. Other keyword arguments
    override environment variables.
    """
    servers: list[DaphneServer] = []

    def start(**overrides: str) -> DaphneServer:
        directory = tmp_path_factory.mktemp("daphne")
        database = directory / "db.sqlite3"
        env = server_env(database, TESTS_STATIC_ROOT=str(collected_static), **overrides)
        if env["DATABASE_URL"] == f"sqlite:///{database}":
            shutil.copyfile(migrated_database, database)  # a new database: the run's migrated one
        else:
            manage(env, "migrate", "--noinput", "--verbosity", "0")  # another server's, or another backend
        server = DaphneServer(free_port(), env, log_path=directory / "daphne.log")
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def shared_daphne(live_server_factory) -> DaphneServer:
    return live_server_factory()


@pytest.fixture
def daphne_server(shared_daphne: DaphneServer) -> DaphneServer:
    """The session's shared server (tests use unique room and user names), restarted if a test stopped it."""
    if not shared_daphne.running:
        shared_daphne.start()
    return shared_daphne


@pytest.fixture(scope="session")
def chromium() -> str:
    """The system Chromium (never `playwright install`): skipped without it locally, a failure in CI."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: browser tests must run in CI.")
        pytest.skip(f"{CHROMIUM} is missing (set CHROMIUM_PATH); browser tests need a system Chromium.")
    return CHROMIUM


@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[Any]:
    """One Chromium per test module: module scope keeps Playwright's own event loop away from async tests."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def new_page(chromium: str, browser: Any, daphne_server: DaphneServer) -> Iterator[Callable[..., Any]]:
    """Open a page in a fresh browser context (its own cookies) on the live server.

    Keyword arguments go to `browser.new_context` (e.g. `java_script_enabled=False`, or
    `base_url=other_server.url`). Relative URLs work: `page.goto("/chat/room/")`.
    """
    contexts = []

    def open_page(**context_options: Any) -> Any:
        context_options.setdefault("base_url", daphne_server.url)
        context = browser.new_context(**context_options)
        context.set_default_timeout(5_000)
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()


def unique(prefix: str) -> str:
    """A name no other test uses: rooms and users share the session's database."""
    return f"{prefix}-{uuid4().hex[:8]}"


def sign_up(page: Any, username: str, password: str = PASSWORD) -> None:
    """Create an account through the real sign-up page; the page ends up signed in on the lobby."""
    page.goto("/accounts/signup/")
    page.fill("#id_username", username)
    page.fill("#id_password1", password)
    page.fill("#id_password2", password)
    page.get_by_role("button", name="Sign up").click()
    page.wait_for_url("/")
    assert page.locator("header.site").get_by_text(username).is_visible()


def log_in(page: Any, username: str, password: str = PASSWORD, *, path: str = "/accounts/login/") -> None:
    """Log in through the real login page (optionally one with ?next=)."""
    if path:
        page.goto(path)
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.get_by_role("button", name="Log in").click()
    page.locator("header.site strong", has_text=username).wait_for()


def open_room(page: Any, room: str, timeout: float = 5.0) -> Any:
    """Go to a room page and return once its socket is open and htmx has sent its first frame.

    On open the page sends the id of the last message it shows (the catch-up cursor), so the
    first sent frame proves the server accepted the socket (and joined the room's group).
    Returns Playwright's WebSocket for the connection, to inspect frames.
    """
    path = f"/ws/chat/{room}/"
    talking: list[Any] = []

    def watch(ws: Any) -> None:
        if ws.url.endswith(path):
            ws.on("framesent", lambda payload: talking.append(ws))

    page.on("websocket", watch)
    try:
        page.goto(f"/chat/{room}/")
        # A socket of the page we just left may still be reported (and then close): wait for
        # a live one that has sent. Polling lets Playwright dispatch the events meanwhile.
        deadline = time.monotonic() + timeout
        while not (live := [ws for ws in talking if not ws.is_closed()]):
            if time.monotonic() > deadline:
                raise AssertionError(f"the socket of {path} did not open within {timeout} s")
            page.wait_for_timeout(20)
    finally:
        page.remove_listener("websocket", watch)
    return live[-1]


LIVE = 2_000  # ms: how soon a message must show up in the other pages
LOBBY_LIVE = 6_000  # ms: a lobby socket gets a frame at most every 3 s (chat/realtime/lobby.py GAP)
QUIET = 500  # ms: how long to watch for something that must not happen


def bodies(page: Any) -> Any:
    """The bodies of the messages a page shows (a Playwright locator)."""
    return page.locator("#messages li.message .body")


def message(page: Any, text: str) -> Any:
    """The message items whose body is exactly `text` (a Playwright locator)."""
    return page.locator("#messages li.message", has=page.locator(".body", has_text=re.compile(f"^{re.escape(text)}$")))


def send(page: Any, text: str) -> None:
    """Type and send with the Send button, then wait for the page's own copy of the message."""
    from playwright.sync_api import expect

    page.fill("#compose-message", text)
    page.get_by_role("button", name="Send").click()
    expect(message(page, text)).to_have_count(1)


def users_in_room(new_page: Callable[..., Any], room: str, *servers: DaphneServer) -> list[Any]:
    """One new user per server given (all created in the first one's database), each logged in
    through the real page and with `room` open on that server. Returns their pages in order."""
    names = [unique("user") for _ in servers]
    servers[0].create_users(*names)
    pages = []
    for name, server in zip(names, servers, strict=True):
        page = new_page(base_url=server.url)
        log_in(page, name)
        open_room(page, room)
        pages.append(page)
    return pages


def seed_messages(server: DaphneServer, room: str, username: str, count: int, *, body: str = "Message {n}") -> None:
    """Store `count` messages by `username` in `room` (created if needed) in the server's database,
    numbered on from the room's seq as posting would; `body` may use {n} (1-based)."""
    code = (
        "from uuid import uuid4\n"
        "from django.contrib.auth.models import User\n"
        "from chat.models import Message, Room\n"
        f"user = User.objects.get(username={username!r})\n"
        f"room, _ = Room.objects.get_or_create(name={room!r})\n"
        f"Message.objects.bulk_create(Message(room=room, author=user, body={body!r}.format(n=n), "
        f"seq=room.last_seq + n, posted_seq=room.last_seq + n, token=uuid4()) for n in range(1, {count} + 1))\n"
        f"room.last_seq += {count}\n"
        "room.save(update_fields=['last_seq'])\n"
    )
    server.manage("shell", "-c", code)


class RedisServer:
    """A throwaway redis-server this test owns."""

    def __init__(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process:
            self.process.send_signal(signal.SIGCONT)
            self.process.kill()
            self.process.wait(5)
            self.process = None

    def pause(self) -> None:
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)


@contextmanager
def redis_server_running(tests: str) -> Iterator[RedisServer]:
    """A started RedisServer for `tests`, stopped afterwards. Without redis-server the tests are
    skipped, except under CI, where they fail: they must run there."""
    if shutil.which("redis-server") is None:
        if os.environ.get("CI"):
            pytest.fail(f"redis-server is missing: {tests} must run in CI.")
        pytest.skip("redis-server is not installed")
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_server(request: pytest.FixtureRequest) -> Iterator[RedisServer]:
    """A redis-server of the test's own: the test may stop, pause and restart it."""
    with redis_server_running(request.node.nodeid) as server:
        yield server


@pytest.fixture(scope="module")
def module_redis_server(request: pytest.FixtureRequest) -> Iterator[RedisServer]:
    """One redis-server for a module's tests, e.g. behind the daphne processes they share."""
    with redis_server_running(request.module.__name__) as server:
        yield server


@pytest.fixture
def redis_layer(redis_server: RedisServer, settings: Any) -> RedisServer:
    """The in-process app's channel layer on the test's own redis-server (Redis pub/sub, as with REDIS_URL)."""
    from channels.layers import channel_layers

    from project.settings import redis_pubsub_layer

    settings.CHANNEL_LAYERS = {"default": redis_pubsub_layer(redis_server.url)}
    channel_layers.backends.clear()
    return redis_server


SESSION_SCRIPT = """
from django.contrib.auth.models import User
from django.test import Client
client = Client()
client.force_login(User.objects.get(username={name!r}))
print("COOKIE=sessionid=" + client.cookies["sessionid"].value + "; csrftoken=" + {secret!r})
"""


def cookie_for(server: DaphneServer, name: str) -> tuple[str, str]:
    """A login session of `name` on the server and a CSRF secret: the Cookie header, and the secret (a valid
    form token)."""
    secret = uuid4().hex  # 32 alphanumerics, as Django's own secrets
    output = server.manage("shell", "-c", SESSION_SCRIPT.format(name=name, secret=secret))
    return re.search(r"COOKIE=(.*)", output).group(1), secret
