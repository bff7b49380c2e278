"""Bounded memory per socket: a peer that stops reading is dropped once ~1 MiB waits for it, and a peer
that reads slowly is sent a big catch-up no faster than it takes it.

daphne hands every frame to Twisted, whose transport buffers without limit whatever the peer's
TCP window does not take. A client that opens a socket and never reads (while it keeps sending,
so daphne's ping never times it out) would make the server hold every frame of its room for it.
After each frame daphne sends, this checks the transport's write buffer; over
CHAT_SOCKET_MAX_BUFFER bytes the connection is aborted. A real browser that merely stalled sees
1006, which htmx retries, and its sync frame then catches the page up from the database.

daphne has no setting for this, so `install()` wraps its WebSocketProtocol.handle_reply when the
project runs under daphne (project/asgi.py calls it). Twisted has no public API for the size of a
transport's write buffer either, so `buffered_bytes` reads its attributes, and `install()` first
checks that they still mean what they mean on a real TCP connection: if not, it logs an ERROR and
leaves the guard off (`installed` stays False) rather than take the whole server down for a
defence that only matters under abuse. tests/protection/test_backpressure.py pins the versions.

A catch-up may add up to megabytes (its frames are each bounded: chat/realtime/catch_up.py). Sent at
once, it would sit in that buffer and the guard would drop a client that *is* reading, only slowly;
and every reconnect would bring the same catch-up again. So `install()` also gives each socket's
scope a `BACKLOG` callable (the bytes its transport still holds), and the consumer awaits `drained()`
before each catch-up frame: the buffer never holds much more than one frame.
"""

import asyncio
import functools
import inspect
import logging
import select
import socket
import time
import weakref
from collections.abc import Callable, MutableMapping
from typing import Any

from django.conf import settings

logger = logging.getLogger(__name__)

# True once install() has wrapped daphne's handle_reply; False if it refused (see its ERROR log).
installed = False

# The scope key of a socket's backlog reader: () -> bytes its transport holds for the peer (daphne only).
BACKLOG = "chat.backlog"
# How long a socket waits for a peer that takes nothing at all before it sends on anyway (and the guard
# then decides): a reading client takes something every few milliseconds.
PATIENCE = 10.0

PROBE_BYTES = 256 * 1024  # more than the probe's small kernel buffers take, so the transport buffers


def buffered_bytes(transport: Any) -> int:
    """Bytes written to a Twisted TCP transport (a twisted.internet.abstract.FileDescriptor) that the
    peer has not taken yet: the part of `dataBuffer` past `offset`, plus the writes since that
    `_tempDataBuffer` holds. Raises AttributeError on a transport that has no such buffer."""
    return len(transport.dataBuffer) - transport.offset + transport._tempDataLen


class _NoReactor:
    """Stands in for the reactor under the probe's transport: the probe drives its writes itself."""

    def addReader(self, reader: Any) -> None: ...

    def addWriter(self, writer: Any) -> None: ...

    def removeReader(self, reader: Any) -> None: ...

    def removeWriter(self, writer: Any) -> None: ...


def _receive_until(sock: socket.socket, total: int, deadline: float) -> int:
    received = 0
    while received < total and time.monotonic() < deadline:
        if select.select([sock], [], [], 0.05)[0]:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += len(chunk)
    return received


def transport_problem() -> str | None:
    """None if `buffered_bytes` reads a real Twisted TCP transport right, else what is wrong.

    A twisted.internet.tcp.Server on a loopback connection with small kernel buffers is written
    PROBE_BYTES; then, write by write, the peer must receive exactly what `buffered_bytes` says the
    transport no longer holds, until it holds nothing.
    """
    from twisted.internet import protocol, tcp

    listener = socket.create_server(("127.0.0.1", 0))
    reader = socket.socket()
    reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        reader.connect(listener.getsockname())
        accepted, peer = listener.accept()
        accepted.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        transport = tcp.Server(accepted, protocol.Protocol(), peer, None, 0, _NoReactor())
        try:
            transport.write(b"x" * PROBE_BYTES)
            if (waiting := buffered_bytes(transport)) != PROBE_BYTES:
                return f"{PROBE_BYTES} bytes written, none sent, but buffered_bytes says {waiting}"
            received, deadline = 0, time.monotonic() + 5
            while (waiting := buffered_bytes(transport)) > 0:
                if time.monotonic() > deadline:
                    return f"the buffer did not drain: buffered_bytes still says {waiting}"
                transport.doWrite()
                taken = PROBE_BYTES - buffered_bytes(transport)
                if not received <= taken <= PROBE_BYTES:
                    return f"buffered_bytes says {PROBE_BYTES - taken} wait, but the peer has {received}"
                received += _receive_until(reader, taken - received, deadline)
                if received != taken:
                    return f"buffered_bytes says {taken} bytes were sent, the peer received {received}"
        finally:
            transport.socket.close()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        reader.close()
        listener.close()
    return None


def handle_reply_problem(handle_reply: Any) -> str | None:
    """None if daphne's WebSocketProtocol.handle_reply is still `(self, message)`, as the guard wraps it."""
    parameters = list(inspect.signature(handle_reply).parameters)
    return None if parameters == ["self", "message"] else f"handle_reply{inspect.signature(handle_reply)}"


def create_application_problem(create_application: Any) -> str | None:
    """None if daphne's Server.create_application is still `(self, protocol, scope)`."""
    parameters = list(inspect.signature(create_application).parameters)
    return (
        None
        if parameters == ["self", "protocol", "scope"]
        else f"create_application{inspect.signature(create_application)}"
    )


def transport_backlog(protocol_ref: "weakref.ref[Any]") -> int:
    """What the socket's transport holds for its peer (0 once it is gone, or where it cannot be read)."""
    protocol = protocol_ref()
    transport = getattr(protocol, "transport", None)
    if transport is None:
        return 0
    try:
        return buffered_bytes(transport)
    except AttributeError:
        return 0


async def drained(scope: MutableMapping[str, Any], *, below: int, patience: float = PATIENCE) -> None:
    """Return once the socket's transport holds at most `below` bytes for its peer, or once the peer has taken
    nothing for `patience` seconds (or at once where the backlog cannot be read: not under daphne)."""
    backlog: Callable[[], int] | None = scope.get(BACKLOG)
    if backlog is None:
        return
    loop = asyncio.get_running_loop()
    held, since = backlog(), loop.time()
    while held > below:
        await asyncio.sleep(0.01)
        now = backlog()
        if now < held:
            since = loop.time()  # the peer took some: it is reading
        elif loop.time() - since > patience:
            return
        held = now


@functools.cache
def unreadable_transport(kind: type) -> None:
    logger.error("the socket memory guard cannot read the write buffer of %s: its sockets are not bounded", kind)


def install() -> None:
    global installed
    from autobahn.exception import Disconnected
    from daphne.ws_protocol import WebSocketProtocol

    if getattr(WebSocketProtocol.handle_reply, "bounded", False):
        return
    handle_reply = WebSocketProtocol.handle_reply
    problem = handle_reply_problem(handle_reply) or transport_problem()
    if problem:
        logger.error("the socket memory guard is OFF: it cannot read Twisted's write buffer (%s)", problem)
        return

    def bounded_handle_reply(self: Any, message: dict[str, Any]) -> None:
        try:
            handle_reply(self, message)
        except Disconnected:
            if message.get("type") != "websocket.send":
                raise
            # The peer went (no close frame) while this frame was on its way: nobody to send it to, and daphne
            # delivers the disconnect that ends the consumer. Raised, it ended the consumer with a traceback.
            logger.debug("dropped a frame for %s: the connection is closed", getattr(self, "client_addr", None))
            return
        if message.get("type") != "websocket.send" or self.transport is None:
            return
        try:
            waiting = buffered_bytes(self.transport)
        except AttributeError:  # not a TCP transport (TLS, a wrapper): said once per kind, never skipped quietly
            unreadable_transport(type(self.transport))
            return
        if waiting > settings.CHAT_SOCKET_MAX_BUFFER:
            logger.info("dropping %s: %d bytes wait for a peer that does not read", self.client_addr, waiting)
            self.dropConnection(abort=True)

    bounded_handle_reply.bounded = True  # type: ignore[attr-defined]
    bounded_handle_reply.__wrapped__ = handle_reply  # type: ignore[attr-defined]  # daphne's, for inspect.unwrap
    WebSocketProtocol.handle_reply = bounded_handle_reply
    installed = True
    install_backlog()


def install_backlog() -> None:
    """Give every socket's scope its BACKLOG reader, by wrapping daphne's Server.create_application (where the
    protocol and the scope meet); if its signature changed, log an ERROR and pace nothing."""
    from daphne.server import Server

    create_application = Server.create_application
    if getattr(create_application, "with_backlog", False):
        return
    if problem := create_application_problem(create_application):
        logger.error("catch-ups are not paced: daphne's %s is not the one wrapped", problem)
        return

    def create_application_with_backlog(self: Any, protocol: Any, scope: dict[str, Any]) -> Any:
        if scope.get("type") == "websocket":
            scope[BACKLOG] = functools.partial(transport_backlog, weakref.ref(protocol))
        return create_application(self, protocol, scope)

    create_application_with_backlog.with_backlog = True  # type: ignore[attr-defined]
    create_application_with_backlog.__wrapped__ = create_application  # type: ignore[attr-defined]
    Server.create_application = create_application_with_backlog
