"""Deploy smoke test: the Procfile run as a PaaS runs it, and the production settings' refusals.

The Procfile's `release:` and `web:` lines run exactly as written (`bash -c`, `$PORT` from the
environment) in a copy of the working tree, as a PaaS builds from a checkout: collectstatic
then writes the copy's STATIC_ROOT, never the repository's, which in-process tests read.
The environment is the documented production one (DEBUG off, HTTPS redirect on), so every
request carries `X-Forwarded-Proto: https` as the router in front of the app would add.
Cookies are Secure, so they are handled by hand rather than by a cookie jar that would not
send them over plain http.
"""

import contextlib
import gzip
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

import brotli
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from tests.support.live import BASE_DIR, INHERITED_SETTINGS, PASSWORD, free_port

START_TIMEOUT = 60.0  # collectstatic compresses every file (brotli and gzip) before daphne binds
STOP_TIMEOUT = 10.0
ROOM = "smoke"
HTMX_HEADERS = {"HX-Request": "true", "HX-Trigger": "compose", "HX-Current-URL": f"https://127.0.0.1/chat/{ROOM}/"}


def clean_env(**settings: str) -> dict[str, str]:
    """The caller's environment without its Django settings, with this interpreter's bin first on PATH.

    `python` and `daphne` in the Procfile then resolve to the virtualenv the tests run in.
    """
    env = {key: value for key, value in os.environ.items() if not key.startswith(INHERITED_SETTINGS)}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONUNBUFFERED"] = "1"
    env.update(settings)
    return env


def random_secret() -> str:
    return secrets.token_urlsafe(48)  # 64 characters, as `check --deploy` wants at least 50


def procfile_line(process_type: str) -> str:
    for line in (BASE_DIR / "Procfile").read_text().splitlines():
        if line.startswith(f"{process_type}:"):
            return line.removeprefix(f"{process_type}:").strip()
    raise AssertionError(f"the Procfile has no {process_type}: line")


def manage(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["python", "manage.py", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def checkout(destination: Path) -> Path:
    """Copy the working tree's files (tracked, and untracked but not ignored) to `destination`."""
    listing = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=BASE_DIR,
        capture_output=True,
        check=True,
        timeout=30,
    )
    for name in listing.stdout.decode().split("\0"):
        source = BASE_DIR / name
        if name and source.is_file():  # a tracked file deleted in the working tree is skipped
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    return destination


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode()

    def cookies(self) -> SimpleCookie:
        jar: SimpleCookie = SimpleCookie()
        for header in self.headers.get_all("Set-Cookie") or []:
            jar.load(header)
        return jar


@dataclass
class Deployment:
    port: int
    env: dict[str, str]
    app_dir: Path

    @property
    def origin(self) -> str:
        """The origin the browser sees: the router terminates TLS in front of the app."""
        return f"https://127.0.0.1:{self.port}"

    def request(
        self,
        method: str,
        path: str,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
        *,
        via_https: bool = True,
    ) -> Response:
        """One request on its own connection; `via_https`: as the router forwards an https request."""
        headers = {**({"X-Forwarded-Proto": "https"} if via_https else {}), **(headers or {})}
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return Response(response.status, response.headers, response.read())
        finally:
            connection.close()

    def websocket(self, path: str, cookie: str = "", origin: str = "") -> ClientConnection:
        """A socket as a page of this site opens it (the router forwards wss as ws)."""
        headers = {"X-Forwarded-Proto": "https"}
        if cookie:
            headers["Cookie"] = cookie
        return connect(
            f"ws://127.0.0.1:{self.port}{path}",
            origin=origin or self.origin,
            additional_headers=headers,
            proxy=None,
            open_timeout=10,
            close_timeout=2,
        )


def wait_until_serving(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    """Until the port answers, and the answer comes from this process (its access log shows a probe).

    The port was free when chosen, but collectstatic runs for seconds before daphne binds it.
    """
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the web process exited with {process.returncode}:\n{tail(log)}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            time.sleep(0.1)
    else:
        pytest.fail(f"the web process did not listen on {port} within {START_TIMEOUT} s:\n{tail(log)}")
    probe = f"/deploy-probe-{secrets.token_hex(8)}/"
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("HEAD", probe, headers={"X-Forwarded-Proto": "https"})
        connection.getresponse().read()
    finally:
        connection.close()
    while probe not in log.read_text(errors="replace"):
        if time.monotonic() > deadline:
            pytest.fail(f"port {port} answers, but not from the web process:\n{tail(log)}")
        time.sleep(0.05)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the whole process group (bash, collectstatic or daphne); SIGKILL whatever outlives the grace period."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + STOP_TIMEOUT
    while time.monotonic() < deadline:
        process.poll()  # reap bash, the group's leader
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    process.wait(STOP_TIMEOUT)


def tail(log: Path, lines: int = 60) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else ""


@pytest.fixture
def deployment(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Deployment]:
    """The Procfile's release, then web process, in the documented production environment
    (a test may change it: `@pytest.mark.parametrize("deployment", [{...}], indirect=True)`)."""
    app_dir = checkout(tmp_path / "app")
    port = free_port()
    settings = {
        "PORT": str(port),
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": random_secret(),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
    }
    env = clean_env(**{**settings, **getattr(request, "param", {})})
    release = subprocess.run(
        ["bash", "-c", procfile_line("release")], cwd=app_dir, env=env, capture_output=True, text=True, timeout=60
    )
    assert release.returncode == 0, f"release failed:\n{release.stdout}\n{release.stderr}"

    log = tmp_path / "web.log"
    with log.open("wb") as output:
        # Its own session (and so process group): bash, collectstatic and daphne all stop together.
        web = subprocess.Popen(
            ["bash", "-c", procfile_line("web")],
            cwd=app_dir,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until_serving(web, port, log)
        yield Deployment(port=port, env=env, app_dir=app_dir)
    finally:
        stop(web)
        # Shown by pytest only when the test failed.
        print(f"--- web process log (tail) ---\n{tail(log)}")


def hidden_input(html: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match, f"no {name} field in the page"
    return match.group(1)


def log_in(deployment: Deployment, username: str) -> str:
    """Log in through the real login form; the `sessionid=...` Cookie header value."""
    page = deployment.request("GET", "/accounts/login/")
    assert page.status == 200
    assert_cookies_secure(page)
    csrf_cookie = page.cookies()["csrftoken"]
    form = {
        "csrfmiddlewaretoken": hidden_input(page.text, "csrfmiddlewaretoken"),
        "username": username,
        "password": PASSWORD,
        "next": "",
    }
    response = deployment.request(
        "POST",
        "/accounts/login/",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": f"csrftoken={csrf_cookie.value}",
            # Over https Django checks the Origin (and the Referer) against the host.
            "Origin": deployment.origin,
            "Referer": f"{deployment.origin}/accounts/login/",
        },
        body=urlencode(form).encode(),
    )
    assert response.status == 302, f"login failed ({response.status}):\n{response.text[:2000]}"
    assert response.headers["Location"] == "/"
    assert_cookies_secure(response)
    session = response.cookies()["sessionid"]
    assert session["httponly"]
    return f"sessionid={session.value}"


def assert_cookies_secure(response: Response) -> None:
    insecure = [name for name, morsel in response.cookies().items() if not morsel["secure"]]
    assert not insecure, f"cookies set without Secure: {insecure}"


def receive_until(ws: ClientConnection, *patterns: str, timeout: float = 5.0) -> list[str]:
    """Frames until every pattern has matched one of them; fails after `timeout` seconds."""
    frames: list[str] = []
    deadline = time.monotonic() + timeout
    while not all(any(re.search(pattern, frame) for frame in frames) for pattern in patterns):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"no frame matched all of {patterns} within {timeout} s; got {frames}")
        try:
            frame = ws.recv(timeout=remaining)
        except TimeoutError:
            continue
        assert isinstance(frame, str), "every server frame is HTML text"
        frames.append(frame)
    return frames


def decoded(response: Response) -> bytes:
    encoding = response.headers["Content-Encoding"]
    return brotli.decompress(response.body) if encoding == "br" else gzip.decompress(response.body)


@pytest.mark.slow
def test_the_procfile_web_command_serves_the_app(deployment: Deployment) -> None:
    # Plain http (no X-Forwarded-Proto from the router): redirected to https.
    plain = deployment.request("GET", "/", via_https=False)
    assert plain.status == 301
    assert plain.headers["Location"] == f"{deployment.origin}/"

    # The lobby over https, with the production security headers.
    lobby = deployment.request("GET", "/")
    assert lobby.status == 200
    assert 'name="room" id="id_room"' in lobby.text
    assert lobby.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert lobby.headers["X-Content-Type-Options"] == "nosniff"
    assert lobby.headers["X-Frame-Options"] == "DENY"
    assert lobby.headers["Referrer-Policy"] == "same-origin"
    assert "'unsafe" not in lobby.headers["Content-Security-Policy"]
    assert "script-src 'self'" in lobby.headers["Content-Security-Policy"]
    assert "Server" not in lobby.headers, "no server banner"
    assert_cookies_secure(lobby)

    # The room page links hashed static files, which WhiteNoise serves compressed and cached for good.
    room = deployment.request("GET", f"/chat/{ROOM}/")
    assert room.status == 200
    assert_cookies_secure(room)
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', room.text)
    assert any(re.fullmatch(r"/static/django_htmx/htmx-2\.min\.[0-9a-f]{12}\.js", url) for url in assets), assets
    assert any(re.fullmatch(r"/static/django_htmx/ext/hx-ws-2\.min\.[0-9a-f]{12}\.js", url) for url in assets), assets
    assert any(re.fullmatch(r"/static/css/chat\.[0-9a-f]{12}\.css", url) for url in assets), assets
    for url in assets:
        compressed = deployment.request("GET", url, headers={"Accept-Encoding": "gzip, br"})
        assert compressed.status == 200, url
        assert compressed.headers["Content-Encoding"] in {"gzip", "br"}, url
        assert "Accept-Encoding" in compressed.headers["Vary"], url
        cache_control = compressed.headers["Cache-Control"]
        max_age = re.search(r"max-age=(\d+)", cache_control)
        assert max_age and int(max_age.group(1)) >= 365 * 24 * 3600, (url, cache_control)
        assert "immutable" in cache_control, (url, cache_control)
        identity = deployment.request("GET", url)
        assert identity.status == 200 and "Content-Encoding" not in identity.headers, url
        assert decoded(compressed) == identity.body, url

    # A message over the socket: log in through the real form, then post as htmx does.
    created = manage(
        deployment.app_dir,
        deployment.env,
        "shell",
        "-c",
        f"from django.contrib.auth.models import User; User.objects.create_user('smoker', password={PASSWORD!r})",
    )
    assert created.returncode == 0, created.stderr
    session = log_in(deployment, "smoker")
    page = deployment.request("GET", f"/chat/{ROOM}/", headers={"Cookie": session})
    assert page.status == 200
    assert_cookies_secure(page)
    token = hidden_input(page.text, "token")
    # The compose form's CSRF field, which htmx sends with it, matches the page's csrftoken cookie.
    csrf = hidden_input(page.text, "csrfmiddlewaretoken")
    cookies = f"{session}; csrftoken={page.cookies()['csrftoken'].value}"

    with deployment.websocket(f"/ws/chat/{ROOM}/", cookie=cookies) as writer:
        writer.send(json.dumps({"after": "0", "HEADERS": HTMX_HEADERS}))  # htmx's sync frame on open
        post = {"message": "smoke", "token": token, "csrfmiddlewaretoken": csrf, "HEADERS": HTMX_HEADERS}
        writer.send(json.dumps(post))
        frames = receive_until(
            writer,
            r'<li id="message-\d+" class="message\b[\s\S]*<p class="body">smoke</p>',
            r'id="compose-message"[^>]*value=""',
        )
        reset = next(frame for frame in frames if 'id="compose-token"' in frame)
        assert token not in reset, "the compose reset renews the token"

        # A second tab, anonymous: catches up on connect, then gets the next message live.
        with deployment.websocket(f"/ws/chat/{ROOM}/") as reader:
            reader.send(json.dumps({"after": "0", "HEADERS": HTMX_HEADERS}))
            receive_until(reader, r'hx-swap-oob="beforeend:#messages">[\s\S]*smoke')
            again = {**post, "message": "smoke again", "token": hidden_input(reset, "token")}
            writer.send(json.dumps(again))
            receive_until(reader, r'<li id="message-\d+" class="message\b[\s\S]*smoke again')

    # A page of another site, or of another port or scheme of this host, may not open the room socket.
    for origin in (
        "https://evil.example",
        f"https://127.0.0.1:{deployment.port + 1}",
        f"http://127.0.0.1:{deployment.port}",
    ):
        with pytest.raises(InvalidStatus) as refused:
            deployment.websocket(f"/ws/chat/{ROOM}/", cookie=session, origin=origin)
        assert refused.value.response.status_code == 403, origin


@pytest.mark.slow
@pytest.mark.parametrize("deployment", [{"DJANGO_DEBUG": "1"}], indirect=True)
def test_the_procfile_runs_with_debug_off_whatever_the_environment_says(deployment: Deployment) -> None:
    # DJANGO_DEBUG=1 left over in the platform's config: still no debug pages, no banner.
    missing = deployment.request("GET", "/no-such-page/")
    assert missing.status == 404
    assert "URLconf" not in missing.text and "DEBUG = True" not in missing.text
    assert "Server" not in missing.headers
    assert deployment.request("GET", "/", via_https=False).status == 301  # the production https redirect


def test_production_settings_refuse_to_start_without_a_secret_key() -> None:
    env = clean_env(DJANGO_DEBUG="0", DJANGO_ALLOWED_HOSTS="chat.example.com")
    result = manage(BASE_DIR, env, "check")
    assert result.returncode != 0
    assert "ImproperlyConfigured: DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off." in result.stderr


@pytest.mark.parametrize("hosts", ["*", "chat.example.com,*"])
def test_production_settings_refuse_to_start_with_allowed_hosts_star(hosts: str) -> None:
    env = clean_env(DJANGO_DEBUG="0", DJANGO_SECRET_KEY=random_secret(), DJANGO_ALLOWED_HOSTS=hosts)
    result = manage(BASE_DIR, env, "check")
    assert result.returncode != 0
    assert "ImproperlyConfigured: DJANGO_ALLOWED_HOSTS must name the hosts, not '*'" in result.stderr


@pytest.mark.parametrize(
    ("variable", "value", "error"),
    [
        ("CHAT_SIGNUP", "invites", "CHAT_SIGNUP must be open, invite or closed, not 'invites'."),
        ("CHAT_PUBLIC_READ", "no", "CHAT_PUBLIC_READ must be 1 or 0, not 'no'."),
        ("CHAT_INVITATION_DAYS", "0", "CHAT_INVITATION_DAYS must be 1 or more, not 0."),
    ],
)
def test_settings_refuse_to_start_with_an_unknown_access_setting(variable: str, value: str, error: str) -> None:
    result = manage(BASE_DIR, clean_env(**{variable: value}), "check")
    assert result.returncode != 0
    assert f"ImproperlyConfigured: {error}" in result.stderr


def test_check_deploy_is_clean_with_the_documented_environment() -> None:
    env = clean_env(
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY=random_secret(),
        DJANGO_ALLOWED_HOSTS="chat.example.com",
        DJANGO_CSRF_TRUSTED_ORIGINS="https://chat.example.com",
        CHAT_SIGNUP="invite",
        CHAT_PUBLIC_READ="0",
    )
    result = manage(BASE_DIR, env, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    assert "System check identified no issues" in result.stdout
