"""Bounded memory per socket: a peer that stops reading is dropped once ~1 MiB waits for it.

daphne hands every frame to Twisted, whose transport buffers without limit whatever the peer's
TCP window does not take. A client that opens a socket and never reads (while it keeps sending,
so daphne's ping never times it out) would make the server hold every frame of its room for it.
After each frame daphne sends, this checks the transport's write buffer; over
CHAT_SOCKET_MAX_BUFFER bytes the connection is aborted. A real browser that merely stalled sees
1006, which htmx retries, and its sync frame then catches the page up from the database.

daphne has no setting for this, so `install()` wraps its WebSocketProtocol.handle_reply when the
project runs under daphne (project/asgi.py calls it).
"""

import logging
from typing import Any

from django.conf import settings

logger = logging.getLogger(__name__)


def buffered_bytes(transport: Any) -> int:
    """Bytes written to a Twisted TCP transport that the peer has not taken yet (0 if unknown)."""
    pending = len(getattr(transport, "dataBuffer", b"")) - getattr(transport, "offset", 0)
    return max(pending, 0) + getattr(transport, "_tempDataLen", 0)


def install() -> None:
    from daphne.ws_protocol import WebSocketProtocol

    if getattr(WebSocketProtocol.handle_reply, "bounded", False):
        return
    handle_reply = WebSocketProtocol.handle_reply

    def bounded_handle_reply(self: Any, message: dict[str, Any]) -> None:
        handle_reply(self, message)
        if message.get("type") != "websocket.send" or self.transport is None:
            return
        waiting = buffered_bytes(self.transport)
        if waiting > settings.CHAT_SOCKET_MAX_BUFFER:
            logger.info("dropping %s: %d bytes wait for a peer that does not read", self.client_addr, waiting)
            self.dropConnection(abort=True)

    bounded_handle_reply.bounded = True  # type: ignore[attr-defined]
    WebSocketProtocol.handle_reply = bounded_handle_reply
