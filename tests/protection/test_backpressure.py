"""Bounded memory per socket: a client that never reads is dropped, not buffered for without end.

A raw signed-in client with a tiny receive buffer completes the handshake, then keeps posting
long messages (each comes back to it as about 10 KB of HTML) and never reads a byte. The
server must drop it (the client's writes then fail) and its memory must not grow by all it sent.

The guard reads Twisted's transport internals and wraps daphne's handle_reply: the canaries below
fail when either changes, and the start-up check turns the guard visibly off rather than quietly.
"""

import asyncio
import base64
import inspect
import json
import os
import re
import socket
import struct
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from uuid import uuid4

import pytest
from autobahn.websocket.protocol import WebSocketProtocol as AutobahnProtocol
from daphne.server import Server
from daphne.ws_protocol import WebSocketProtocol
from twisted.internet import abstract, protocol, tcp

from chat.protection import backpressure
from tests.support.live import cookie_for, seed_messages, unique


def rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1])


def masked_text_frame(text: str) -> bytes:
    """One client-to-server text frame (clients must mask)."""
    payload, mask = text.encode(), os.urandom(4)
    header = bytes([0x81]) + (
        bytes([0x80 | len(payload)]) if len(payload) < 126 else b"\xfe" + struct.pack("!H", len(payload))
    )
    return header + mask + bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))


def open_raw_socket(port: int, path: str, cookie: str) -> socket.socket:
    """A WebSocket handshake by hand, with a 4 KiB receive buffer; nothing is read after it."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: http://127.0.0.1:{port}\r\n"
            f"Cookie: {cookie}\r\n\r\n"
        ).encode()
    )
    response = b""
    while b"\r\n\r\n" not in response:
        response += sock.recv(1)
    assert response.startswith(b"HTTP/1.1 101"), response
    return sock


@pytest.fixture(scope="module")
def server(live_server_factory):
    # The non-reader's posts must reach the app: lift the flood guard and the post limits for it.
    return live_server_factory(
        CHAT_SOCKET_BURST="100000", CHAT_SOCKET_RATE="100000", CHAT_LIMIT_POSTS_PER_USER="100000/60"
    )


def test_a_client_that_never_reads_is_dropped_and_memory_stays_bounded(server):
    room, name = unique("slow"), unique("writer")
    server.create_users(name)
    cookie, csrf = cookie_for(server, name)
    sock = open_raw_socket(server.port, f"/ws/chat/{room}/", cookie)
    sock.sendall(masked_text_frame(json.dumps({"after": "0"})))  # the page's sync: from now on it gets broadcasts
    before = rss_kib(server.process.pid)

    dropped, sent = False, 0
    # Each post comes back as about 10 KB (2,000 characters the page escapes to 5 each): the kernel's
    # buffers take a few MB of them, then the server's own buffer grows until it drops the client.
    deadline = time.monotonic() + 90
    try:
        while time.monotonic() < deadline:
            post = {"message": '<"' * 1000, "token": str(uuid4()), "csrfmiddlewaretoken": csrf}
            sock.sendall(masked_text_frame(json.dumps(post)))
            sent += 1
            time.sleep(0.01)
    except (ConnectionResetError, BrokenPipeError):
        dropped = True
    finally:
        grown = rss_kib(server.process.pid) - before
        sock.close()

    assert dropped, f"the server still took frames after {sent} posts"
    # A loose sanity bound (posts also cost memory on their way in): the drop above is what bounds it.
    assert grown < 60 * 1024, f"the server grew by {grown} KiB for one non-reading client"


def loopback_transport(reader_buffer: int = 4096) -> tuple[tcp.Server, socket.socket]:
    """A real twisted.internet.tcp.Server on a loopback connection with small kernel buffers, and its peer."""
    listener = socket.create_server(("127.0.0.1", 0))
    reader = socket.socket()
    reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, reader_buffer)
    reader.connect(listener.getsockname())
    accepted, peer = listener.accept()
    listener.close()
    reader.settimeout(5)  # a wrong count fails the test instead of hanging it
    accepted.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    return tcp.Server(accepted, protocol.Protocol(), peer, None, 0, backpressure._NoReactor()), reader


def daphne_handle_reply():
    """daphne's own handle_reply, unwrapped if project.asgi already installed the guard in this process."""
    return inspect.unwrap(WebSocketProtocol.handle_reply)


def test_twisted_tcp_transports_keep_the_write_buffer_the_guard_reads():
    """Canary, checked against Twisted 26.10.0: a TCP transport (abstract.FileDescriptor) buffers its
    writes in `_tempDataBuffer`/`_tempDataLen`, then in `dataBuffer` from `offset`; buffered_bytes reads
    them with no defaults, and counts exactly what is written but not yet taken by the kernel."""
    transport, reader = loopback_transport()
    try:
        assert isinstance(transport, abstract.FileDescriptor)
        assert (transport.dataBuffer, transport.offset, transport._tempDataLen) == (b"", 0, 0)
        assert backpressure.buffered_bytes(transport) == 0

        transport.write(b"a" * 100_000)
        transport.write(b"b" * 100_000)
        assert backpressure.buffered_bytes(transport) == 200_000  # nothing sent until the reactor says so

        transport.doWrite()  # the small kernel buffers take part of it
        waiting = backpressure.buffered_bytes(transport)
        assert 0 < waiting < 200_000
        received = b""
        while len(received) < 200_000 - waiting:
            received += reader.recv(65536)
        assert len(received) == 200_000 - waiting  # the peer has exactly what the transport let go
        assert received == (b"a" * 100_000 + b"b" * 100_000)[: len(received)]

        deadline = time.monotonic() + 5
        while backpressure.buffered_bytes(transport) and time.monotonic() < deadline:
            transport.doWrite()
            while len(received) < 200_000 - backpressure.buffered_bytes(transport):
                received += reader.recv(65536)
        assert backpressure.buffered_bytes(transport) == 0
        assert len(received) == 200_000
    finally:
        transport.socket.close()
        reader.close()


def test_the_start_up_check_passes_on_this_twisted():
    """Canary, checked against Twisted 26.10.0: install()'s own check of a real TCP transport."""
    assert backpressure.transport_problem() is None


def test_daphne_still_has_the_handle_reply_the_guard_wraps():
    """Canary, checked against daphne 4.2.3 (autobahn 26.11.1): the guard replaces
    WebSocketProtocol.handle_reply(self, message), calls it first, then reads `transport` and
    `client_addr` and calls autobahn's `dropConnection(abort=True)`."""
    handle_reply = daphne_handle_reply()
    assert backpressure.handle_reply_problem(handle_reply) is None
    assert "def handle_reply(self, message):" in inspect.getsource(handle_reply)
    assert 'elif message["type"] == "websocket.send":' in inspect.getsource(handle_reply)
    assert "self.client_addr = " in inspect.getsource(WebSocketProtocol.onConnect)
    assert "abort" in inspect.signature(AutobahnProtocol.dropConnection).parameters


@pytest.fixture
def daphne_server_class(monkeypatch):
    """daphne's Server, its create_application restored after the test (install() wraps it)."""
    monkeypatch.setattr(Server, "create_application", inspect.unwrap(Server.create_application))
    return Server


def test_install_wraps_handle_reply_when_it_can_read_the_buffer(monkeypatch, daphne_server_class):
    monkeypatch.setattr(WebSocketProtocol, "handle_reply", daphne_handle_reply())
    monkeypatch.setattr(backpressure, "installed", False)

    backpressure.install()

    assert backpressure.installed
    assert WebSocketProtocol.handle_reply.bounded
    assert daphne_server_class.create_application.with_backlog


def test_daphne_still_makes_applications_where_the_backlog_reader_is_added(daphne_server_class):
    """Canary, checked against daphne 4.2.3: Server.create_application(self, protocol, scope) is where a
    socket's protocol (and so its transport) and its scope meet, and it passes that scope on."""
    create_application = daphne_server_class.create_application
    assert backpressure.create_application_problem(create_application) is None
    assert "application_instance = self.application(\n            scope=scope," in inspect.getsource(create_application)


def test_the_backlog_reader_goes_in_socket_scopes_only_and_reads_the_transport(daphne_server_class):
    made = []

    def create_application(self, protocol, scope):  # stands in for daphne's: records the scope it is given
        made.append(scope)

    daphne_server_class.create_application = create_application
    backpressure.install_backlog()
    transport, reader = loopback_transport()
    try:
        page = type("Page", (), {"transport": transport})()
        daphne_server_class.create_application(None, page, {"type": "http"})
        daphne_server_class.create_application(None, page, {"type": "websocket"})
        http, socket_scope = made
        assert backpressure.BACKLOG not in http
        backlog = socket_scope[backpressure.BACKLOG]
        assert backlog() == 0
        transport.write(b"x" * 100_000)
        assert backlog() == 100_000  # the small kernel buffers took nothing yet: Twisted holds it all
        del page
        assert backlog() == 0  # the socket is gone: nothing to wait for
    finally:
        transport.socket.close()
        reader.close()


class Backlog:
    """A socket's backlog that the peer takes `taken` bytes of per read (0: a peer that reads nothing)."""

    def __init__(self, held: int, taken: int) -> None:
        self.held, self.taken, self.reads = held, taken, 0

    def __call__(self) -> int:
        self.reads += 1
        self.held = max(self.held - self.taken, 0)
        return self.held


async def test_drained_waits_while_a_reading_peer_takes_the_backlog():
    backlog = Backlog(held=500_000, taken=50_000)

    await backpressure.drained({backpressure.BACKLOG: backlog}, below=64 * 1024, patience=1.0)

    assert backlog.held <= 64 * 1024 and backlog.reads >= 9


async def test_drained_gives_up_on_a_peer_that_takes_nothing():
    backlog = Backlog(held=500_000, taken=0)
    started = time.monotonic()

    await backpressure.drained({backpressure.BACKLOG: backlog}, below=64 * 1024, patience=0.2)

    assert 0.2 <= time.monotonic() - started < 2 and backlog.held == 500_000  # sent on: the guard decides


async def test_drained_returns_at_once_where_there_is_no_backlog_to_read():
    await asyncio.wait_for(backpressure.drained({}, below=0), timeout=0.1)


def test_install_logs_an_error_and_stays_off_when_it_cannot_read_the_buffer(monkeypatch, caplog):
    original = daphne_handle_reply()
    monkeypatch.setattr(WebSocketProtocol, "handle_reply", original)
    monkeypatch.setattr(backpressure, "installed", False)
    # What a Twisted that renamed its buffer would look like to a reader with getattr defaults.
    monkeypatch.setattr(backpressure, "buffered_bytes", lambda transport: getattr(transport, "renamed", 0))

    backpressure.install()

    assert not backpressure.installed
    assert WebSocketProtocol.handle_reply is original
    assert [record.levelname for record in caplog.records] == ["ERROR"]
    assert "memory guard is OFF" in caplog.records[0].getMessage()


def test_a_transport_without_the_buffer_is_reported_not_skipped_quietly(monkeypatch, caplog, daphne_server_class):
    monkeypatch.setattr(WebSocketProtocol, "handle_reply", lambda self, message: None)
    monkeypatch.setattr(backpressure, "installed", False)
    monkeypatch.setattr(backpressure, "transport_problem", lambda: None)
    backpressure.install()
    backpressure.unreadable_transport.cache_clear()

    class Wrapped:  # e.g. a TLS transport, which keeps no dataBuffer of its own
        pass

    page = type("Page", (), {"transport": Wrapped(), "client_addr": None})()
    WebSocketProtocol.handle_reply(page, {"type": "websocket.send", "text": "x"})
    WebSocketProtocol.handle_reply(page, {"type": "websocket.send", "text": "y"})

    assert [record.levelname for record in caplog.records] == ["ERROR"]  # once per kind of transport
    assert "Wrapped" in caplog.records[0].getMessage()


def read_frames_slowly(sock: socket.socket, *, until: Callable[[list[str]], bool], rate: int, timeout: float):
    """Text frames from the server, read at about `rate` bytes a second (a slow link), until `until(frames)`;
    raises ConnectionError if the server drops the connection first."""
    buffer, frames = b"", []
    deadline = time.monotonic() + timeout
    while not until(frames):
        assert time.monotonic() < deadline, f"{len(frames)} frames in {timeout} s"
        chunk = sock.recv(rate // 50)
        if not chunk:
            raise ConnectionResetError("the server closed the connection")
        buffer += chunk
        time.sleep(0.01)
        while len(buffer) >= 2:
            length, start = buffer[1] & 0x7F, 2
            if length == 126:
                length, start = struct.unpack("!H", buffer[2:4])[0], 4
            elif length == 127:
                length, start = struct.unpack("!Q", buffer[2:10])[0], 10
            if len(buffer) < start + length:
                break
            if buffer[0] & 0x0F == 0x1:
                frames.append(buffer[start : start + length].decode())
            elif buffer[0] & 0x0F == 0x8:
                raise ConnectionResetError(f"closed: {buffer[start : start + length]!r}")
            buffer = buffer[start + length :]
    return frames


@pytest.fixture(scope="module")
def small_buffer_server(live_server_factory):
    # A guard well under what the catch-up below adds up to (its frames are each under 300 KB).
    return live_server_factory(CHAT_SOCKET_MAX_BUFFER=str(512 * 1024))


def test_a_slow_client_that_reads_gets_a_catch_up_bigger_than_the_guard_paced_not_dropped(small_buffer_server):
    server = small_buffer_server
    room, name = unique("behind"), unique("reader")
    server.create_users(name)
    seed_messages(server, room, name, 200, body="'" * 2000 + " {n}")  # ~12 KB each once escaped: ~2.4 MB
    cookie, _ = cookie_for(server, name)
    sock = open_raw_socket(server.port, f"/ws/chat/{room}/", cookie)
    try:
        sock.sendall(masked_text_frame(json.dumps({"after": "0"})))

        def complete(frames: list[str]) -> bool:
            return "&#x27; 200<" in "".join(frames[-2:])

        frames = read_frames_slowly(sock, until=complete, rate=1024 * 1024, timeout=60)
    finally:
        sock.close()

    shown = [int(n) for frame in frames for n in re.findall(r"&#x27; (\d+)<", frame)]
    assert shown == list(range(1, 201))  # all of it, once, in order, on a link slower than the server


def test_a_frame_for_a_peer_already_gone_is_dropped_not_raised_into_the_consumer(monkeypatch):
    """A page whose network went (no close frame) while a frame was on its way: autobahn refuses the send
    with Disconnected. The consumer's disconnect follows from daphne; the frame has nobody to go to. Raised,
    it ended the consumer with "Exception inside application" and a traceback on every such drop (soak)."""
    from autobahn.exception import Disconnected

    def closed_handle_reply(self, message):
        raise Disconnected("Attempt to send on a closed protocol")

    monkeypatch.setattr(WebSocketProtocol, "handle_reply", closed_handle_reply)
    monkeypatch.setattr(backpressure, "installed", False)
    monkeypatch.setattr(backpressure, "transport_problem", lambda: None)
    backpressure.install()

    gone = SimpleNamespace(transport=None, client_addr=["127.0.0.1", 1])
    WebSocketProtocol.handle_reply(gone, {"type": "websocket.send", "text_data": "a message"})  # no exception
    with pytest.raises(Disconnected):  # anything but a frame for the peer is daphne's business, as before
        WebSocketProtocol.handle_reply(gone, {"type": "websocket.close"})
