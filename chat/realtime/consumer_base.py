"""The base class of the room and lobby consumers: Channels' AsyncWebsocketConsumer without a thread hop per frame,
and `layer_forget`, which both call on every way out.

Since Channels 4.2, AsyncConsumer.dispatch awaits `aclose_old_connections()`
before every handler (each frame received, each group message delivered, the
connect) and again after a disconnect: a `sync_to_async` call on asgiref's one
thread-sensitive thread. Fanning one message out to 1,000 sockets thus queued
1,000 hops on that one thread, and while it was busy (a slow query, a held lock)
no socket of the process could even connect. This consumer does all its database
work through chat/realtime/db.py, whose units close their connections before and after
themselves, so it holds no connection for those calls to close. The two methods are Channels 4.3.2's
without that call: tests/realtime/test_consumer_base.py fails when the upstream ones change.
"""

from typing import Any

from channels.consumer import get_handler_name
from channels.exceptions import InvalidChannelLayerError, StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer


class PooledDatabaseWebsocketConsumer(AsyncWebsocketConsumer):
    async def dispatch(self, message) -> None:
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def websocket_disconnect(self, message) -> None:
        try:
            for group in self.groups:
                await self.channel_layer.group_discard(group, self.channel_name)
        except AttributeError:
            raise InvalidChannelLayerError("BACKEND is unconfigured or doesn't support groups") from None
        await self.disconnect(message["code"])
        raise StopConsumer()


def layer_forget(layer: Any, channel: str) -> None:
    """Stop the layer listening on a closed socket's channel. The pub/sub layer unsubscribes in `receive` when
    cancelled, but a receive cancelled before its first step never gets there (the soak found ~1.5 channels
    a minute left subscribed, and hundreds after a mass close); the in-memory layer has nothing to drop."""
    forget = getattr(layer, "forget", None)
    if forget is not None:
        forget(channel)
