"""Bounded memory per socket: a client that never reads is dropped, not buffered for without end.

A raw signed-in client with a tiny receive buffer completes the handshake, then keeps posting
long messages (each comes back to it as about 10 KB of HTML) and never reads a byte. The
server must drop it (the client's writes then fail) and its memory must not grow by all it sent.
"""

import base64
import json
import os
import socket
import struct
import time
from pathlib import Path
from uuid import uuid4

import pytest

from tests.support.live import cookie_for, unique


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
