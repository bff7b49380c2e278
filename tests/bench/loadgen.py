"""The load generator: N WebSocket clients in one room, one signed-in sender, latency and delivery counts.

The clients are written here on asyncio streams (RFC 6455 handshake and framing
fit in a page), so the bench needs nothing beyond the project's requirements.
Every wait is bounded; `run_load` returns one dict of figures.
"""

import asyncio
import base64
import hashlib
import json
import math
import os
import re
import struct
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONTINUATION, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA

# The message text carries what a receiver needs: its sequence number and send time.
BODY_RE = re.compile(r"bench#(\d+)@([0-9.]+)")
# Ours: the message fragment, `<li id="message-<pk>" ...><p class="body">TEXT</p>`.
OURS_MESSAGE_RE = re.compile(r'<li id="message-\d+"[^>]*>.*?<p class="body">bench#(\d+)@([0-9.]+)</p>', re.DOTALL)
OURS_ERRORS_RE = re.compile(r'id="compose-errors"[^>]*>(<p>.*?)</div>', re.DOTALL)


class HandshakeError(Exception):
    pass


class WebSocket:
    """A client connection: send text, receive text, answer pings, close."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.close_code: int | None = None

    def _write_frame(self, opcode: int, payload: bytes) -> None:
        # Clients mask every frame (RFC 6455 5.3).
        length = len(payload)
        if length < 126:
            head = struct.pack("!BB", 0x80 | opcode, 0x80 | length)
        elif length < 1 << 16:
            head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, length)
        key = os.urandom(4)
        mask = (key * (length // 4 + 1))[:length]
        masked = (int.from_bytes(payload, "big") ^ int.from_bytes(mask, "big")).to_bytes(length, "big")
        self.writer.write(head + key + masked)

    async def send_text(self, text: str) -> None:
        self._write_frame(OP_TEXT, text.encode())
        await self.writer.drain()

    async def recv(self) -> str | None:
        """The next text message, or None once the connection is closed (close_code says how)."""
        parts: list[bytes] = []
        try:
            while True:
                first, second = await self.reader.readexactly(2)
                opcode, length = first & 0x0F, second & 0x7F
                if length == 126:
                    (length,) = struct.unpack("!H", await self.reader.readexactly(2))
                elif length == 127:
                    (length,) = struct.unpack("!Q", await self.reader.readexactly(8))
                payload = await self.reader.readexactly(length) if length else b""
                if opcode == OP_PING:
                    self._write_frame(OP_PONG, payload)
                elif opcode == OP_CLOSE:
                    self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                    return None
                elif opcode in (OP_TEXT, OP_BINARY, OP_CONTINUATION):
                    parts.append(payload)
                    if first & 0x80:  # FIN
                        return b"".join(parts).decode("utf-8", "replace")
        except (asyncio.IncompleteReadError, ConnectionError):
            self.close_code = self.close_code or 1006
            return None

    def close(self) -> None:
        """Say goodbye without waiting for the answer (the bench closes a thousand at once)."""
        try:
            self._write_frame(OP_CLOSE, struct.pack("!H", 1000))
        except (ConnectionError, RuntimeError):
            pass
        self.writer.close()


async def ws_connect(host: str, port: int, path: str, *, origin: str, cookie: str = "") -> WebSocket:
    reader, writer = await asyncio.open_connection(host, port, limit=1 << 20)
    try:
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET {path} HTTP/1.1",
            f"Host: {host}:{port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
            f"Origin: {origin}",
        ]
        if cookie:
            lines.append(f"Cookie: {cookie}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = await reader.readuntil(b"\r\n\r\n")
        status = head.split(b"\r\n", 1)[0].decode("latin-1")
        if status.split(" ")[1:2] != ["101"]:
            raise HandshakeError(status.partition(" ")[2] or "no status")
        if base64.b64encode(hashlib.sha1(key.encode() + WS_GUID).digest()) not in head:
            raise HandshakeError("bad Sec-WebSocket-Accept")
    except BaseException:
        writer.close()
        raise
    return WebSocket(reader, writer)


# --- the scenario ------------------------------------------------------------------------------


@dataclass
class LoadSpec:
    app: str  # "ours" (htmx JSON in, HTML fragments out) or "tutorial" (JSON in, JSON out)
    ports: list[int]  # one per server process; receivers are split evenly, the sender uses the first
    path: str  # the room's socket path
    page_url: str  # what htmx sends as HX-Current-URL
    cookie: str  # the sender's session cookie
    clients: int
    rate: float  # messages per second
    duration: float  # seconds of sending
    connect_timeout: float = 30.0
    settle: float = 3.0  # idle time after the connects, before memory is read and sending starts
    drain: float = 10.0  # how long to wait for the last deliveries after the last send
    host: str = "127.0.0.1"
    receiver_cookies: list[str] = field(default_factory=list)  # empty: anonymous receivers


@dataclass
class Receiver:
    ws: WebSocket
    seen: set[int] = field(default_factory=set)


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)  # seconds, one per first delivery
    deliveries: int = 0
    delivery_chars: int = 0  # size of the frames that carried deliveries
    duplicates: int = 0
    other_frames: int = 0
    last_delivery: float = 0.0  # time.time()
    closing: bool = False
    dropped: Counter = field(default_factory=Counter)  # close codes of sockets the server ended early


def percentiles(values: list[float], points: tuple[float, ...], scale: float = 1.0) -> dict[str, float | None]:
    """Nearest-rank percentiles (100 = max), scaled (e.g. seconds to milliseconds)."""
    ordered = sorted(values)
    result: dict[str, float | None] = {}
    for point in points:
        name = "max" if point == 100 else f"p{point:g}"
        if not ordered:
            result[name] = None
        else:
            rank = min(len(ordered), max(1, math.ceil(point / 100 * len(ordered))))
            result[name] = round(ordered[rank - 1] * scale, 1)
    return result


def parse_deliveries(app: str, text: str) -> list[tuple[int, float]]:
    if app == "ours":
        return [(int(seq), float(sent)) for seq, sent in OURS_MESSAGE_RE.findall(text)]
    try:
        message = json.loads(text).get("message", "")
    except (ValueError, AttributeError):
        return []
    match = BODY_RE.fullmatch(message) if isinstance(message, str) else None
    return [(int(match[1]), float(match[2]))] if match else []


async def read_receiver(app: str, receiver: Receiver, tally: Tally) -> None:
    while True:
        text = await receiver.ws.recv()
        now = time.time()
        if text is None:
            if not tally.closing:
                tally.dropped[receiver.ws.close_code] += 1
            return
        found = parse_deliveries(app, text)
        if not found:
            tally.other_frames += 1
        else:
            tally.delivery_chars += len(text)
        for seq, sent_at in found:
            if seq in receiver.seen:
                tally.duplicates += 1
                continue
            receiver.seen.add(seq)
            tally.deliveries += 1
            tally.latencies.append(now - sent_at)
            tally.last_delivery = now


class Sender:
    """The signed-in user posting; reconnects (as htmx does after 1006/1011) if the server drops it."""

    MAX_RECONNECTS = 5

    def __init__(self, spec: LoadSpec, tally: Tally) -> None:
        self.spec = spec
        self.tally = tally
        self.errors: Counter = Counter()
        self.ws: WebSocket | None = None
        self.task: asyncio.Task | None = None
        self.reconnects = 0

    async def connect(self) -> None:
        port = self.spec.ports[0]
        self.ws = await asyncio.wait_for(
            ws_connect(
                self.spec.host, port, self.spec.path, origin=f"http://{self.spec.host}:{port}", cookie=self.spec.cookie
            ),
            self.spec.connect_timeout,
        )
        self.task = asyncio.create_task(self.read(self.ws))
        if self.spec.app == "ours":
            await self.ws.send_text(sync_frame(self.spec))

    async def read(self, ws: WebSocket) -> None:
        while (text := await ws.recv()) is not None:
            if self.spec.app == "ours":
                for error in OURS_ERRORS_RE.findall(text):
                    self.errors[re.sub(r"<[^>]+>", " ", error).strip()] += 1
        if not self.tally.closing:
            self.errors[f"sender socket closed by the server ({ws.close_code})"] += 1

    async def send(self, text: str) -> bool:
        """Send one frame; False if the socket is gone and cannot be reopened."""
        for _ in range(2):
            if self.ws is not None and self.ws.close_code is None:
                try:
                    await self.ws.send_text(text)
                    return True
                except OSError as error:
                    self.errors[f"sender send failed: {type(error).__name__}"] += 1
            if self.reconnects >= self.MAX_RECONNECTS:
                return False
            self.reconnects += 1
            self.close()
            try:
                await self.connect()
            except (OSError, TimeoutError, HandshakeError, asyncio.IncompleteReadError) as error:
                self.errors[f"sender reconnect failed: {type(error).__name__}"] += 1
        return False

    def close(self) -> None:
        if self.ws is not None:
            self.ws.close()
        if self.task is not None:
            self.task.cancel()


def htmx_frame(fields: dict[str, str], trigger: str, page_url: str) -> str:
    """What htmx's ws-send sends for a form: its fields plus the request headers under HEADERS."""
    headers = {
        "HX-Request": "true",
        "HX-Trigger": trigger,
        "HX-Trigger-Name": None,
        "HX-Target": trigger,
        "HX-Current-URL": page_url,
    }
    return json.dumps({**fields, "HEADERS": headers})


def message_frame(spec: LoadSpec, seq: int) -> str:
    body = f"bench#{seq}@{time.time():.6f}"
    if spec.app == "tutorial":
        return json.dumps({"message": body})
    # The post is checked against the csrftoken cookie; Django accepts the bare secret as the token.
    csrf = re.search(r"csrftoken=(\w+)", spec.cookie)
    fields = {"csrfmiddlewaretoken": csrf.group(1) if csrf else "", "token": str(uuid.uuid4()), "message": body}
    return htmx_frame(fields, "compose", spec.page_url)


def sync_frame(spec: LoadSpec) -> str:
    """Ours only: the page's #sync form, sent on every socket open (the room was empty when 'loaded')."""
    return htmx_frame({"after": "0"}, "sync", spec.page_url)


async def warm_up(spec: LoadSpec) -> None:
    """One socket opened and closed on each server the sender is not on: a process's first socket pays
    one-time costs (lazy imports, thread pools, connections) that are not any idle socket's memory."""
    for port in spec.ports[1:]:
        ws = await asyncio.wait_for(
            ws_connect(spec.host, port, spec.path, origin=f"http://{spec.host}:{port}", cookie=spec.cookie),
            spec.connect_timeout,
        )
        if spec.app == "ours":
            await ws.send_text(sync_frame(spec))
        await asyncio.sleep(0.5)
        ws.close()


async def stranger_answer(spec: LoadSpec) -> dict[str, Any]:
    """A socket with no login on the room's path: how it ends and how many frames it got first. In a private
    room it closes with 4404 before any frame, which shows the room measured is one only members can read."""
    port = spec.ports[0]
    ws = await asyncio.wait_for(
        ws_connect(spec.host, port, spec.path, origin=f"http://{spec.host}:{port}"), spec.connect_timeout
    )
    frames = 0
    try:
        while await asyncio.wait_for(ws.recv(), spec.connect_timeout) is not None:
            frames += 1
    except TimeoutError:
        pass  # still open: close_code stays None
    finally:
        ws.close()
    return {"close_code": ws.close_code, "frames": frames}


async def run_load(spec: LoadSpec, sample_servers: Callable[[], dict[str, float]]) -> dict[str, Any]:
    """Connect everyone, let them idle, send at the fixed rate, wait for the deliveries, close."""
    tally = Tally()
    tasks: list[asyncio.Task] = []
    receivers: list[Receiver] = []
    result: dict[str, Any] = {"clients": spec.clients}

    sender = Sender(spec, tally)
    await sender.connect()
    try:
        await warm_up(spec)
        await asyncio.sleep(1.0)
        before = sample_servers()

        # All receivers at once.
        connect_times: list[float] = []
        failures: Counter = Counter()

        async def join(index: int) -> None:
            port = spec.ports[index % len(spec.ports)]
            started = time.perf_counter()
            try:
                cookie = spec.receiver_cookies[index % len(spec.receiver_cookies)] if spec.receiver_cookies else ""
                ws = await asyncio.wait_for(
                    ws_connect(spec.host, port, spec.path, origin=f"http://{spec.host}:{port}", cookie=cookie),
                    spec.connect_timeout,
                )
            except TimeoutError:
                failures["timeout"] += 1
                return
            except HandshakeError as error:
                failures[f"HTTP {error}"] += 1
                return
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as error:
                failures[type(error).__name__] += 1
                return
            connect_times.append(time.perf_counter() - started)
            receiver = Receiver(ws)
            receivers.append(receiver)
            tasks.append(asyncio.create_task(read_receiver(spec.app, receiver, tally)))
            if spec.app == "ours":
                try:
                    await ws.send_text(sync_frame(spec))
                except OSError:
                    pass  # the reader records how the socket ended

        storm_started, storm_cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(join(index) for index in range(spec.clients)))
        result["connect_storm_s"] = round(time.perf_counter() - storm_started, 2)
        result["loadgen_cpu_s_connecting"] = round(time.process_time() - storm_cpu, 2)
        result["connected"] = len(receivers)
        result["failed_connects"] = spec.clients - len(receivers)
        result["failure_reasons"] = dict(failures)
        result["connect_ms"] = percentiles(connect_times, (50, 95, 100), 1000)

        await asyncio.sleep(spec.settle)
        idle = sample_servers()
        other_frames_idle = tally.other_frames
        result["rss_before_kib"], result["rss_idle_kib"] = before["rss_kib"], idle["rss_kib"]
        result["kib_per_connection"] = (
            round((idle["rss_kib"] - before["rss_kib"]) / len(receivers), 1) if receivers else None
        )
        result["dropped_while_idle"] = sum(tally.dropped.values())
        if "redis_clients" in idle:
            result["redis_clients_idle"] = idle["redis_clients"]

        # Sending at a fixed rate, whatever the answers.
        count = max(1, round(spec.rate * spec.duration))
        started = time.monotonic()
        first_send = time.time()
        sent = 0
        for seq in range(count):
            delay = started + seq / spec.rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if await sender.send(message_frame(spec, seq)):
                sent += 1
        send_done = time.monotonic()

        deadline = time.monotonic() + spec.drain
        # Every message the user meant to send, to every client meant to be there.
        expected = count * spec.clients
        while time.monotonic() < deadline:
            open_receivers = len(receivers) - sum(tally.dropped.values())
            if tally.deliveries >= sent * open_receivers:
                break
            await asyncio.sleep(0.1)
        after = sample_servers()

        result["sent"] = sent
        result["unsent"] = count - sent
        result["send_s"] = round(send_done - started, 2)
        result["expected"] = expected
        result["deliveries"] = tally.deliveries
        result["delivered_ratio"] = round(tally.deliveries / expected, 5) if expected else None
        result["duplicates"] = tally.duplicates
        result["frame_chars_avg"] = round(tally.delivery_chars / tally.deliveries) if tally.deliveries else None
        result["other_frames"] = tally.other_frames
        # Frames that carried no message while sending (presence, status): server CPU the deliveries share.
        result["other_frames_sending"] = tally.other_frames - other_frames_idle
        result["latency_ms"] = percentiles(tally.latencies, (50, 95, 99, 100), 1000)
        span = tally.last_delivery - first_send
        result["deliveries_per_s"] = round(tally.deliveries / span, 1) if tally.deliveries and span > 0 else 0.0
        result["dropped"] = {str(code): n for code, n in tally.dropped.items()}
        result["server_cpu_s_sending"] = round(after["cpu_s"] - idle["cpu_s"], 2)
        result["server_cpu_s_connecting"] = round(idle["cpu_s"] - before["cpu_s"], 2)
        result["server_cpu_us_per_delivery"] = (
            round(1e6 * (after["cpu_s"] - idle["cpu_s"]) / tally.deliveries, 1) if tally.deliveries else None
        )
        result["sender_errors"] = dict(sender.errors)
        result["sender_reconnects"] = sender.reconnects
        return result
    finally:
        tally.closing = True
        sender.close()
        if sender.task is not None:
            tasks.append(sender.task)
        for receiver in receivers:
            receiver.ws.close()
        for task in tasks:
            task.cancel()
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 10)
