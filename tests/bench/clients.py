"""Simulated browser tabs for the soak and chaos benches: room pages that keep their cursor as htmx does.

A `Page` loads the room over HTTP (its `#sync-after` cursor and the messages it shows), then opens the
room socket, sends the `#sync` frame with its cursor on every open, applies what arrives (new messages
appended, edited and deleted ones replaced in place, the cursor moved) and checks, frame by frame, that
nothing arrives twice or out of order: every cursor is past the last one, every appended message is new
and newer than the ones before it. After a drop it reconnects (as htmx does after 1006/1011) and its
sync catches it up. A signed-in page posts and types over its socket; edits, deletes and log-outs go
over HTTP as the page's forms send them. A `LobbyPage` keeps a lobby socket open. `verify` compares
every page with the database at the end: each message it holds reads as stored, none is missing, and
its cursor is the room's last seq.

Everything is plain asyncio (loadgen.py's WebSocket); every wait is bounded.
"""

import asyncio
import json
import random
import re
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from . import servers
from .loadgen import OURS_ERRORS_RE, HandshakeError, WebSocket, htmx_frame, ws_connect

CURSOR_RE = re.compile(r'id="sync-after" name="after" value="(\d+)"')
ITEM_RE = re.compile(r'<li id="message-(\d+)" class="message[^"]*"([^>]*)>(.*?)</li>', re.DOTALL)
BODY_RE = re.compile(r'<p class="body([^"]*)">(.*?)</p>', re.DOTALL)
TOO_MUCH = "A lot changed while you were away"
GAP = '<li class="gap"><a href='
UNSENT = 'id="unsent-'
DELETED = None  # a tombstone's body, in a page and in the truth
CLOSE_SIGNED_OUT = 4401
RETRYABLE = (1006, 1011, 1012, 1013)


# --- HTTP, as the page's forms send it --------------------------------------------------------------


async def http(
    port: int, method: str, path: str, *, cookie: str = "", form: dict[str, str] | None = None, timeout: float = 30
) -> tuple[int, str]:
    """One request on its own connection; (status, body). A status of 0: no answer."""
    body = urlencode(form or {}).encode()
    lines = [
        f"{method} {path} HTTP/1.1",
        f"Host: {servers.HOST}:{port}",
        f"Origin: http://{servers.HOST}:{port}",
        "Connection: close",
    ]
    if cookie:
        lines.append(f"Cookie: {cookie}")
    if method == "POST":
        lines += ["Content-Type: application/x-www-form-urlencoded", f"Content-Length: {len(body)}"]

    async def exchange() -> tuple[int, str]:
        reader, writer = await asyncio.open_connection(servers.HOST, port)
        try:
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
            await writer.drain()
            raw = await reader.read()
        finally:
            writer.close()
        head, _, text = raw.partition(b"\r\n\r\n")
        status = head.split(b" ", 2)[1] if head.count(b" ") >= 1 else b"0"
        return (int(status) if status.isdigit() else 0), text.decode("utf-8", "replace")

    try:
        return await asyncio.wait_for(exchange(), timeout)
    except (OSError, TimeoutError, asyncio.IncompleteReadError):
        return 0, ""


def body_text(html: str) -> str | None:
    match = BODY_RE.search(html)
    if match is None or "removed" in match[1]:
        return DELETED
    return match[2]


# --- who the pages are -----------------------------------------------------------------------------


@dataclass
class User:
    name: str
    sessions: list[str]  # session keys made in advance: a log-out moves to the next (a fresh log-in)
    csrf: str
    current: int = 0
    messages: dict[int, str] = field(default_factory=dict)  # id → room, of theirs, not deleted
    pages: list["Page"] = field(default_factory=list)

    @property
    def cookie(self) -> str:
        return f"sessionid={self.sessions[self.current % len(self.sessions)]}; csrftoken={self.csrf}"


@dataclass
class Tally:
    """What every page and sender of a run saw, summed."""

    frames: int = 0
    bytes: int = 0
    connects: int = 0
    reconnects: int = 0
    page_loads: int = 0
    failures: Counter = field(default_factory=Counter)  # connects that did not open
    closes: Counter = field(default_factory=Counter)  # close codes of sockets the server ended
    problems: Counter = field(default_factory=Counter)  # duplicates, out of order, stale cursors
    notes: Counter = field(default_factory=Counter)  # "too much changed", gaps (the page reloads)
    sender: Counter = field(default_factory=Counter)  # what the senders saw: errors, refusals, retries
    posts: int = 0
    acked: int = 0
    edits: int = 0
    deletes: int = 0
    logouts: int = 0
    typing: int = 0
    lobby_frames: int = 0


@dataclass
class Site:
    """The servers a run's pages use, and the shared state of the run."""

    ports: list[int]
    tally: Tally = field(default_factory=Tally)
    stopping: bool = False  # pages close for good
    steady: bool = False  # pages stop dropping on purpose (they still reconnect after a drop)
    drop_every: tuple[float, float] = (20.0, 60.0)
    rng: random.Random = field(default_factory=lambda: random.Random(23))
    held_rooms: set[str] = field(default_factory=set)  # their pages stay away (closed tabs, a lost network)
    pinned: dict[str, int] = field(default_factory=dict)  # room → the one port its pages connect to

    def port(self) -> int:
        return self.rng.choice(self.ports)


# --- a room page -----------------------------------------------------------------------------------


class Page:
    def __init__(self, site: Site, room: str, user: User | None) -> None:
        self.site = site
        self.room = room
        self.user = user
        self.cursor = 0
        self.holds: dict[int, str | None] = {}  # message id → its text as shown (None: deleted)
        self.newest_appended = 0
        self.loaded_newest = 0  # the newest message id the page showed when loaded
        self.ws: WebSocket | None = None
        self.synced = False
        self.needs_reload = False
        self.trace: dict[int, list[str]] = {}
        self.pending: dict[str, tuple[str, float, int]] = {}  # token → (text, sent at, tries)
        self.task: asyncio.Task | None = None
        if user is not None:
            user.pages.append(self)

    @property
    def cookie(self) -> str:
        return self.user.cookie if self.user else "csrftoken=" + "x" * 32

    @property
    def connected(self) -> bool:
        return self.ws is not None and self.ws.close_code is None and self.synced

    def url(self, port: int) -> str:
        return f"http://{servers.HOST}:{port}/chat/{self.room}/"

    async def load(self) -> bool:
        """GET the room page: what a tab shows before its socket opens."""
        for _ in range(20):
            port = self.site.port()
            status, html = await http(port, "GET", f"/chat/{self.room}/", cookie=self.cookie)
            match = CURSOR_RE.search(html) if status == 200 else None
            if match:
                self.site.tally.page_loads += 1
                self.cursor = int(match[1])
                self.holds = {int(pk): body_text(inner) for pk, _, inner in ITEM_RE.findall(html)}
                self.loaded_newest = self.newest_appended = max(self.holds, default=0)
                return True
            self.site.tally.failures[f"page load HTTP {status}"] += 1
            await asyncio.sleep(1 + self.site.rng.random())
        return False

    async def live(self) -> None:
        """Open, sync, read; drop now and then; reconnect; until the run stops."""
        rng = self.site.rng
        await self.load()
        backoff = 0.5
        while not self.site.stopping:
            while self.room in self.site.held_rooms and not self.site.stopping:  # noqa: ASYNC110 (a set the run edits)
                await asyncio.sleep(0.1)
            port = self.site.pinned.get(self.room) or self.site.port()
            try:
                self.ws = await asyncio.wait_for(
                    ws_connect(
                        servers.HOST,
                        port,
                        f"/ws/chat/{self.room}/",
                        origin=f"http://{servers.HOST}:{port}",
                        cookie=self.cookie,
                    ),
                    30,
                )
            except (OSError, TimeoutError, HandshakeError, asyncio.IncompleteReadError) as error:
                self.site.tally.failures[type(error).__name__] += 1
                await asyncio.sleep(backoff * (1 + rng.random()))
                backoff = min(backoff * 2, 8.0)
                continue
            backoff = 0.5
            self.site.tally.connects += 1
            self.synced = False
            port_url = self.url(port)
            try:
                await self.ws.send_text(htmx_frame({"after": str(self.cursor)}, "sync", port_url))
                self.synced = True
                await self.resend_pending()
                code = await self.read(until=time.monotonic() + rng.uniform(*self.site.drop_every))
            except (OSError, RuntimeError):
                code = 1006
            self.synced = False
            ws, self.ws = self.ws, None
            if code is None:  # our own drop: the network goes, no close frame
                ws.writer.transport.abort()
                self.site.tally.reconnects += 1
                await asyncio.sleep(rng.uniform(0.2, 2.0))
                continue
            if self.site.stopping:
                return
            self.site.tally.closes[code] += 1
            if code == CLOSE_SIGNED_OUT:  # logged out: log in again (a fresh session) and reload the page
                await asyncio.sleep(rng.uniform(1.0, 3.0))
                await self.load()
            elif code not in RETRYABLE:
                self.site.tally.problems[f"closed for good ({code})"] += 1
                return
            else:
                await asyncio.sleep(rng.uniform(0.5, 3.0))

    async def read(self, *, until: float) -> int | None:
        """Frames until `until` (None: still open) or the close (its code)."""
        assert self.ws is not None
        while True:
            left = until - time.monotonic()
            if self.site.steady or self.site.stopping:
                left = 5.0  # no drop on purpose: read on
            if left <= 0:
                return None
            try:
                text = await asyncio.wait_for(self.ws.recv(), left)
            except TimeoutError:
                if self.site.stopping:
                    return None
                if self.site.steady:
                    continue
                return None
            if text is None:
                return self.ws.close_code
            self.apply(text)
            if self.needs_reload:  # the note says reload: its reader does (the page's state starts again)
                self.needs_reload = False
                await self.load()

    def apply(self, text: str) -> None:
        tally = self.site.tally
        tally.frames += 1
        tally.bytes += len(text)
        for error in OURS_ERRORS_RE.findall(text):
            tally.sender[re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", error)).strip()[:60]] += 1
        if UNSENT in text:
            tally.sender["post handed back (unsent)"] += 1
        # A frame that moves the cursor carries it (each catch-up frame of new messages, and the last one).
        match = CURSOR_RE.search(text)
        cursor = int(match[1]) if match else None
        if cursor is not None and (TOO_MUCH in text or GAP in text):
            tally.notes["too much changed" if TOO_MUCH in text else "gap"] += 1
            self.cursor = cursor
            self.needs_reload = True
            return
        if cursor is not None:
            if cursor <= self.cursor:
                tally.problems["a frame with a cursor not past the page's (duplicate or out of order)"] += 1
            self.cursor = max(self.cursor, cursor)
        for pk_text, attrs, inner in ITEM_RE.findall(text):
            pk = int(pk_text)
            shown = body_text(inner)
            self.trace.setdefault(pk, []).append(f"{'oob' if 'hx-swap-oob' in attrs else 'app'}@{cursor}:{shown}")
            if "hx-swap-oob" in attrs:  # an edit or a delete, in place (ignored by a page without it)
                if pk in self.holds:
                    self.holds[pk] = shown
                continue
            if pk in self.holds and pk > self.loaded_newest:
                tally.problems["a message appended twice"] += 1
            elif pk < self.newest_appended:
                tally.problems["a message appended out of order"] += 1
            self.holds[pk] = shown
            self.newest_appended = max(self.newest_appended, pk)
            self.acknowledge(pk, shown)

    # Posting (signed-in pages).

    def acknowledge(self, pk: int, shown: str | None) -> None:
        if not self.pending or shown is None:
            return
        for token, (text, _, _) in list(self.pending.items()):
            if text == shown:
                del self.pending[token]
                self.site.tally.acked += 1
                if self.user is not None:
                    self.user.messages[pk] = self.room

    async def post(self, text: str) -> None:
        """The compose form's frame (as htmx's ws-send sends it), kept until the message shows."""
        token = str(uuid.uuid4())
        self.pending[token] = (text, time.monotonic(), 1)
        self.site.tally.posts += 1
        await self.send_post(token, text)

    async def send_post(self, token: str, text: str) -> None:
        if self.user is None or not self.connected:
            return  # htmx queues it until the socket is open again (resend_pending)
        fields = {"csrfmiddlewaretoken": self.user.csrf, "token": token, "message": text}
        try:
            await self.ws.send_text(htmx_frame(fields, "compose", self.url(0)))
        except (OSError, RuntimeError):
            self.site.tally.sender["post not sent: socket gone"] += 1

    async def resend_pending(self, *, older_than: float = 0.0) -> None:
        """Posts not shown yet: sent again with the same token (a resend is never stored twice)."""
        now = time.monotonic()
        for token, (text, sent_at, tries) in list(self.pending.items()):
            if now - sent_at >= older_than:
                if tries > 1 or older_than:
                    self.site.tally.sender["post sent again (not shown yet)"] += 1
                self.pending[token] = (text, now, tries + 1)
                await self.send_post(token, text)

    async def typing(self) -> None:
        if self.user is None or not self.connected:
            return
        frame = json.dumps({"HEADERS": {"HX-Request": "true", "HX-Trigger": "compose-message", "Chat-Typing": "1"}})
        try:
            await self.ws.send_text(frame)
            self.site.tally.typing += 1
        except (OSError, RuntimeError):
            pass


class LobbyPage:
    """A lobby tab: its socket only listens; it reconnects like a room page."""

    def __init__(self, site: Site, user: User | None) -> None:
        self.site = site
        self.user = user
        self.ws: WebSocket | None = None

    async def live(self) -> None:
        rng = self.site.rng
        while not self.site.stopping:
            port = self.site.port()
            cookie = self.user.cookie if self.user else ""
            try:
                self.ws = await asyncio.wait_for(
                    ws_connect(servers.HOST, port, "/ws/lobby/", origin=f"http://{servers.HOST}:{port}", cookie=cookie),
                    30,
                )
            except (OSError, TimeoutError, HandshakeError, asyncio.IncompleteReadError) as error:
                self.site.tally.failures[f"lobby {type(error).__name__}"] += 1
                await asyncio.sleep(1 + rng.random() * 2)
                continue
            self.site.tally.connects += 1
            until = time.monotonic() + rng.uniform(*self.site.drop_every)
            code = None
            while True:
                left = 5.0 if (self.site.steady or self.site.stopping) else until - time.monotonic()
                if left <= 0:
                    break
                try:
                    text = await asyncio.wait_for(self.ws.recv(), left)
                except TimeoutError:
                    if self.site.stopping or not self.site.steady:
                        break
                    continue
                if text is None:
                    code = self.ws.close_code
                    break
                self.site.tally.lobby_frames += 1
            ws, self.ws = self.ws, None
            if code is None:
                ws.writer.transport.abort()
                if self.site.stopping:
                    return
                await asyncio.sleep(rng.uniform(0.2, 2.0))
                continue
            if self.site.stopping:
                return
            self.site.tally.closes[f"lobby {code}"] += 1
            await asyncio.sleep(rng.uniform(1.0, 3.0))


# --- what the users do -----------------------------------------------------------------------------


async def edit(site: Site, user: User, *, deleting: bool) -> None:
    """An edit or a delete of one of the user's messages, as the page's htmx request sends it."""
    if not user.messages:
        return
    pk = site.rng.choice(list(user.messages))
    room = user.messages[pk]
    action = "delete" if deleting else "edit"
    form = {"csrfmiddlewaretoken": user.csrf}
    if not deleting:
        form["message"] = f"edited {uuid.uuid4().hex[:12]}"
    status, _ = await http(site.port(), "POST", f"/chat/{room}/messages/{pk}/{action}/", cookie=user.cookie, form=form)
    if status in (200, 302):
        if deleting:
            user.messages.pop(pk, None)
            site.tally.deletes += 1
        else:
            site.tally.edits += 1
    else:
        site.tally.sender[f"{action} HTTP {status}"] += 1


async def log_out(site: Site, user: User) -> None:
    """The user logs out (their pages close with 4401), then logs in again with a fresh session."""
    status, _ = await http(
        site.port(), "POST", "/accounts/logout/", cookie=user.cookie, form={"csrfmiddlewaretoken": user.csrf}
    )
    if status in (200, 302):
        site.tally.logouts += 1
        user.current += 1
    else:
        site.tally.sender[f"logout HTTP {status}"] += 1


# --- the truth, at the end -------------------------------------------------------------------------

TRUTH_SCRIPT = """
import json, os
from chat.models import Message, Room
names = os.environ["BENCH_ROOMS"].split(",")
rooms = dict(Room.objects.filter(name__in=names).values_list("name", "last_seq"))
messages = list(Message.objects.filter(room__name__in=names).values_list("id", "room__name", "body", "deleted"))
print("TRUTH=" + json.dumps({"rooms": rooms, "messages": [[i, r, None if d else b] for i, r, b, d in messages]}))
"""


def truth(env: dict[str, str], rooms: list[str]) -> dict[str, Any]:
    output = servers.manage({**env, "BENCH_ROOMS": ",".join(rooms)}, "shell", "-c", TRUTH_SCRIPT, timeout=300)
    line = next(line for line in output.splitlines() if line.startswith("TRUTH="))
    return json.loads(line.removeprefix("TRUTH="))


EXAMPLES: list[str] = []  # a few pages that are not whole, for the report


def verify(pages: list[Page], facts: dict[str, Any]) -> Counter:
    """Each page against the database: its cursor is the room's last seq, every message it holds reads as
    stored, none posted since it loaded is missing, and no text was stored twice."""
    found: Counter = Counter()
    by_room: dict[str, dict[int, str | None]] = {}
    texts: Counter = Counter()
    for pk, room, body in facts["messages"]:
        by_room.setdefault(room, {})[pk] = body
        if body is not None and not body.startswith("edited "):
            texts[body] += 1
    found["texts stored twice"] = sum(1 for n in texts.values() if n > 1)
    for page in pages:
        stored = by_room.get(page.room, {})
        if page.cursor != facts["rooms"].get(page.room, 0):
            found["pages whose cursor is not the room's last seq"] += 1
        wrong = sum(1 for pk, shown in page.holds.items() if pk in stored and stored[pk] != shown)
        missing = sum(1 for pk in stored if pk > page.loaded_newest and pk not in page.holds)
        found["messages shown with another text than stored"] += wrong
        for pk, shown in page.holds.items():
            if pk in stored and stored[pk] != shown and len(EXAMPLES) < 8:
                EXAMPLES.append(
                    f"{page.room} #{pk}: shows {shown!r}, stored {stored[pk]!r}; page cursor {page.cursor}, "
                    f"room seq {facts['rooms'].get(page.room)}, loaded newest {page.loaded_newest}, "
                    f"{'signed in' if page.user else 'anonymous'} {page.trace.get(pk)}"
                )
        found["messages missing from a page"] += missing
        found["pages not whole"] += bool(wrong or missing or page.cursor != facts["rooms"].get(page.room, 0))
    found["pages checked"] = len(pages)
    found["messages stored"] = len(facts["messages"])
    return found


def setup_script() -> str:
    """Users with `BENCH_SESSIONS` login sessions each (made as Django's login() stores them), and the rooms."""
    return """
import os
from django.contrib.auth.models import User
from django.db import transaction
from django.middleware.csrf import _get_new_csrf_string
from chat.models import Room
from tests.bench.login_sessions import login_session
prefix = os.environ["BENCH_USERNAME"]
with transaction.atomic():
    for name in filter(None, os.environ["BENCH_ROOMS"].split(",")):
        Room.objects.get_or_create(name=name)
    User.objects.bulk_create([User(username=f"{prefix}{i}") for i in range(int(os.environ["BENCH_USERS"]))])
    for user in User.objects.filter(username__startswith=prefix):
        keys = [login_session(user) for _ in range(int(os.environ["BENCH_SESSIONS"]))]
        print("USER=" + user.username + "," + _get_new_csrf_string() + "," + ",".join(keys))
"""


def make_users(env: dict[str, str], *, prefix: str, count: int, sessions: int, rooms: list[str]) -> list[User]:
    setup_env = {
        **env,
        "BENCH_USERNAME": prefix,
        "BENCH_USERS": str(count),
        "BENCH_SESSIONS": str(sessions),
        "BENCH_ROOMS": ",".join(rooms),
    }
    output = servers.manage(setup_env, "shell", "-c", setup_script(), timeout=900)
    users = []
    for line in output.splitlines():
        if line.startswith("USER="):
            name, csrf, *keys = line.removeprefix("USER=").split(",")
            users.append(User(name=name, sessions=keys, csrf=csrf))
    if len(users) != count:
        raise servers.BenchError(f"made {len(users)} users of {count}: {output[:2000]!r}")
    return users


# --- the workload ----------------------------------------------------------------------------------


@dataclass
class Workload:
    posts_per_s: float = 5.0
    edits_per_s: float = 0.75
    deletes_per_s: float = 0.25
    typing_share: float = 0.5  # posts preceded by a typing notice
    logout_every_s: float = 15.0
    resend_after_s: float = 10.0  # a post not shown by then is sent again (same token), as its writer would


async def drive(
    site: Site,
    users: list[User],
    work: Workload,
    *,
    until: float,
    paused: asyncio.Event,
    pick_logout: Callable[[], User] | None = None,
) -> None:
    """Posts, edits, deletes, typing and log-outs at the workload's rates until `until` (monotonic); `paused`
    cleared holds them; `pick_logout` says who logs out next (by default anyone)."""
    rng = site.rng
    counter = 0
    next_logout = time.monotonic() + work.logout_every_s
    started = time.monotonic()
    ticks = 0
    total = work.posts_per_s + work.edits_per_s + work.deletes_per_s
    background: set[asyncio.Task] = set()

    def spawn(coro) -> None:
        task = asyncio.ensure_future(coro)
        background.add(task)
        task.add_done_callback(background.discard)

    while time.monotonic() < until and not site.stopping:
        ticks += 1
        delay = started + ticks / total - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        await paused.wait()
        roll = rng.random() * total
        if roll < work.posts_per_s:
            user = rng.choice(users)
            page = rng.choice(user.pages)
            counter += 1
            text = f"soak {user.name} {counter} {uuid.uuid4().hex[:6]}"
            if rng.random() < work.typing_share:
                await page.typing()
            await page.post(text)
        else:
            spawn(edit(site, rng.choice(users), deleting=roll >= work.posts_per_s + work.edits_per_s))
        if ticks % 50 == 0:
            for user in users:
                for page in user.pages:
                    if page.pending and page.connected:
                        await page.resend_pending(older_than=work.resend_after_s)
        if work.logout_every_s and time.monotonic() >= next_logout:
            next_logout += work.logout_every_s
            spawn(log_out(site, pick_logout() if pick_logout else rng.choice(users)))
    if background:
        await asyncio.wait(background, timeout=30)


async def settle(site: Site, pages: list[Page], *, timeout: float) -> float | None:
    """Until every page is connected, has nothing pending and shows the same cursor as its room's other pages
    (held for 3 s): seconds taken, or None if it never did within `timeout`."""
    started = time.monotonic()
    whole_since: float | None = None
    while time.monotonic() - started < timeout:
        if whole(pages):
            whole_since = whole_since or time.monotonic()
            if time.monotonic() - whole_since >= 3.0:
                return whole_since - started
        else:
            whole_since = None
        await asyncio.sleep(0.25)
    return None


def whole(pages: list[Page]) -> bool:
    newest: dict[str, int] = {}
    for page in pages:
        newest[page.room] = max(newest.get(page.room, 0), page.cursor)
    return all(page.connected and not page.pending and page.cursor == newest[page.room] for page in pages)


def pending_posts(pages: list[Page]) -> int:
    return sum(len(page.pending) for page in pages)
