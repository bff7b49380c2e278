"""The garbage collector of a process that holds thousands of sockets.

Each open socket keeps a few hundred objects alive (its consumer, scope, tasks, Twisted and autobahn
protocol state): 8,000 sockets are millions of objects the cyclic collector tracks. With CPython's
defaults (a young collection every 700 allocations), everything a busy process keeps for more than a
few milliseconds (a frame waiting in a queue, a group message on its way to a room's members) is
promoted, and every time the promoted objects reach a quarter of the old generation a full collection
walks all of them: measured in the workspace bench (tests/bench/workspace.py, 8,000 sockets, one
process), a full collection every 5 s, each 1.1 s long, and 30 % of a core in the collector. Those
pauses are also the tail of the message latency.

`install()` (the ASGI entry point, under daphne only) moves what start-up loaded (Django, the
templates, the URL patterns) out of the collector's sight for good (`gc.freeze()`), and makes the
young generation large enough that what a busy process keeps for a moment dies young instead of
being promoted. Objects freed by their reference count, as almost all are, are freed at once
whatever the thresholds; only cycles wait for a collection, and with few promotions a full one is
rare. So `install()` also breaks the biggest cycle a closed socket leaves: autobahn resolves a
protocol's `is_closed` Deferred with the protocol itself, which kept each closed connection (its
transport, buffers, queue) until a full collection; the workspace bench's reconnects grew a process
by 10 % in 3 minutes. Once the connection is lost, the Deferred lets go of it (nothing in daphne
waits on `is_closed`). And once a handshake has handed its connection to the WebSocket protocol,
Twisted's HTTP channel and daphne's request of that handshake (its headers, body buffer, addresses:
about 60 objects) are let go of at once; they stayed for the socket's life (the connection kept the
channel as its producer, a no-op once upgraded) and then waited, pointing at each other, for a full
collection.
"""

import gc
from typing import Any

# Young collections every GEN0 allocations (default 700), the middle one every GEN1 of them (default 10);
# a full collection still runs once the promoted objects reach a quarter of the old generation.
GEN0 = 50_000
GEN1 = 20


def install() -> None:
    gc.collect()
    gc.freeze()
    gc.set_threshold(GEN0, GEN1, gc.get_threshold()[2])
    release_closed_protocols()
    release_upgraded_handshakes()


def release_closed_protocols() -> None:
    """After a socket's connection is lost, its `is_closed` Deferred no longer holds the protocol (idempotent)."""
    from daphne.ws_protocol import WebSocketProtocol

    connection_lost = WebSocketProtocol.connectionLost
    if getattr(connection_lost, "releases_protocol", False):
        return

    def connection_lost_releasing(self: Any, reason: Any) -> None:
        try:
            connection_lost(self, reason)
        finally:
            closed = getattr(self, "is_closed", None)
            if getattr(closed, "called", False) and getattr(closed, "result", None) is self:
                closed.result = None

    connection_lost_releasing.releases_protocol = True  # type: ignore[attr-defined]
    connection_lost_releasing.__wrapped__ = connection_lost  # type: ignore[attr-defined]
    WebSocketProtocol.connectionLost = connection_lost_releasing


def release_upgraded_handshakes() -> None:
    """Once daphne has upgraded a request to a WebSocket, its HTTP channel and request are freed (idempotent).

    daphne's `WebRequest.process` moves the connection to the WebSocket protocol and leaves the request
    unfinished: the connection keeps the HTTP channel as its producer (whose pause, resume and stop do nothing
    while a request is being handled, as this one always is), and channel and request point at each other.
    """
    from daphne.http_protocol import WebRequest

    process = WebRequest.process
    if getattr(process, "releases_handshake", False):
        return

    def process_releasing(self: Any) -> Any:
        result = process(self)
        if self.transport is None:  # upgraded: the connection now belongs to the WebSocket protocol
            release_handshake(self)
        return result

    process_releasing.releases_handshake = True  # type: ignore[attr-defined]
    process_releasing.__wrapped__ = process  # type: ignore[attr-defined]
    WebRequest.process = process_releasing


def release_handshake(request: Any) -> None:
    channel = getattr(request, "channel", None)
    if channel is None:
        return
    connection = channel.transport
    if getattr(connection, "producer", None) is channel:
        connection.unregisterProducer()
    channel.requests[:] = [other for other in channel.requests if other is not request]
