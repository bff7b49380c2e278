"""channels-redis's pub/sub layer, with each channel's messages in a Mailbox instead of an asyncio.Queue,
and a closing socket's unsubscribe that a second cancellation cannot lose.

Every open socket has a channel, subscribed on its process's shard connection; the layer
keeps its waiting messages in an asyncio.Queue of about 3 KiB even when empty (chat/backends/channel_mailbox.py).
When a consumer closes, channels-redis unsubscribes its channel inside the cancelled `receive`,
waiting for the shard's lock; when many sockets close at once, daphne may cancel that wait too
(a slow-closing app is killed), which logged "Unexpected exception while cleaning-up channel"
and left the subscription in Redis until the process ended. Here the unsubscribe runs in a task
of its own. Everything else is channels-redis's own. The methods copied here are channels-redis
4.3.0's: tests/backends/test_channel_layers.py fails when the upstream ones change.
"""

import asyncio
import logging

from channels_redis import pubsub
from channels_redis.utils import _wrap_close

from chat.backends.channel_mailbox import Mailbox

logger = logging.getLogger(__name__)


class MailboxLoopLayer(pubsub.RedisPubSubLoopLayer):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.unsubscribing: set[asyncio.Task] = set()

    async def _subscribe_to_channel(self, channel):
        self.channels[channel] = Mailbox()
        try:
            await self._get_shard(channel).subscribe(channel)
        except asyncio.CancelledError:  # cancelled while subscribing (a storm of opens and closes): nobody receives
            self.forget(channel)
            raise

    async def receive(self, channel):
        if channel not in self.channels:
            await self._subscribe_to_channel(channel)
        try:
            message = await self.channels[channel].get()
        except (TimeoutError, asyncio.CancelledError, GeneratorExit):
            # As channels-redis assumes: cancelled means the consumer is closing.
            self.forget(channel)
            raise
        return self.channel_layer.deserialize(message)

    def forget(self, channel: str) -> None:
        """The channel's consumer is gone: stop listening on it, in a task of its own. The consumers call it on
        every way out, for a channel whose receive was cancelled before its first step (so never got here)."""
        if self.channels.pop(channel, None) is not None:
            task = asyncio.ensure_future(self._unsubscribe(channel))
            self.unsubscribing.add(task)
            task.add_done_callback(self.unsubscribing.discard)

    async def _unsubscribe(self, channel: str) -> None:
        try:
            await self._get_shard(channel).unsubscribe(channel)
        except Exception as exc:
            logger.info("unsubscribing %s failed: %r", channel, exc)


class RedisPubSubChannelLayer(pubsub.RedisPubSubChannelLayer):
    def forget(self, channel: str) -> None:
        """See MailboxLoopLayer.forget (this event loop's layer)."""
        self._get_layer().forget(channel)

    def _get_layer(self):
        """As channels-redis's (one layer per event loop), making a MailboxLoopLayer."""
        loop = asyncio.get_running_loop()
        try:
            return self._layers[loop]
        except KeyError:
            layer = self._layers[loop] = MailboxLoopLayer(*self._args, **self._kwargs, channel_layer=self)
            _wrap_close(self, loop)
            return layer
