"""channels-redis's pub/sub layer, with each channel's messages in a Mailbox instead of an asyncio.Queue.

Every open socket has a channel, subscribed on its process's shard connection; the layer
keeps its waiting messages in an asyncio.Queue of about 3 KiB even when empty (chat/mailbox.py).
Everything else is channels-redis's own.
"""

import asyncio

from channels_redis import pubsub
from channels_redis.utils import _wrap_close

from .mailbox import Mailbox


class MailboxLoopLayer(pubsub.RedisPubSubLoopLayer):
    async def _subscribe_to_channel(self, channel):
        self.channels[channel] = Mailbox()
        await self._get_shard(channel).subscribe(channel)


class RedisPubSubChannelLayer(pubsub.RedisPubSubChannelLayer):
    def _get_layer(self):
        """As channels-redis's (one layer per event loop), making a MailboxLoopLayer."""
        loop = asyncio.get_running_loop()
        try:
            return self._layers[loop]
        except KeyError:
            layer = self._layers[loop] = MailboxLoopLayer(*self._args, **self._kwargs, channel_layer=self)
            _wrap_close(self, loop)
            return layer
