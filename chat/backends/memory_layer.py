"""The in-memory channel layer (one process, no Redis), without its per-call full sweep, with light mailboxes.

Channels' InMemoryChannelLayer runs `_clean_expired()` on every `receive()` and
every `group_send()`: a walk over every channel and every group member of the
process. With N sockets in a room, one broadcast wakes N receives, so delivering
one message cost O(N²): profiled at 1,000 sockets, that sweep was most of the
server's CPU. Here it runs at most once per CLEAN_INTERVAL seconds; messages
expire after `expiry` (60 s by default), so they are dropped at most that much later.

Each channel's messages wait in a Mailbox (chat/backends/channel_mailbox.py) instead of an asyncio.Queue:
every open socket has a channel, and an empty Queue is about 3 KiB. The methods copied here are
channels 4.3.2's: tests/backends/test_channel_layers.py fails when the upstream ones change.
"""

import asyncio
import time
from copy import deepcopy

from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer

from chat.backends.channel_mailbox import Mailbox

CLEAN_INTERVAL = 1.0


class SweepingInMemoryChannelLayer(InMemoryChannelLayer):
    _last_clean = 0.0

    def mailbox(self, channel: str) -> Mailbox:
        mailbox = self.channels.get(channel)
        if mailbox is None:
            mailbox = self.channels[channel] = Mailbox(self.get_capacity(channel))
        return mailbox

    async def send(self, channel, message):
        assert isinstance(message, dict), "message is not a dict"
        self.require_valid_channel_name(channel)
        assert "__asgi_channel__" not in message
        try:
            self.mailbox(channel).put_nowait((time.time() + self.expiry, deepcopy(message)))
        except asyncio.QueueFull:
            raise ChannelFull(channel) from None

    async def group_send(self, group, message):
        """Channels' group_send without its task per member (a room of 800 made 800 tasks per message and per
        typing notice): `send` puts into a mailbox and never waits, so the members are sent to in turn. A full
        mailbox misses this message, as upstream."""
        assert isinstance(message, dict), "Message is not a dict"
        self.require_valid_group_name(group)
        self._clean_expired()
        for channel in list(self.groups.get(group, ())):
            try:
                await self.send(channel, message)
            except ChannelFull:
                pass

    async def receive(self, channel):
        self.require_valid_channel_name(channel)
        self._clean_expired()
        mailbox = self.mailbox(channel)
        try:
            _, message = await mailbox.get()
        finally:
            if mailbox.empty() and self.channels.get(channel) is mailbox:
                del self.channels[channel]
        return message

    def _clean_expired(self) -> None:
        """Channels' sweep (expired messages dropped, their channel leaves its groups; group
        memberships older than group_expiry end), at most once per CLEAN_INTERVAL."""
        now = time.monotonic()
        if now - self._last_clean < CLEAN_INTERVAL:
            return
        self._last_clean = now
        for channel, mailbox in list(self.channels.items()):
            while not mailbox.empty() and mailbox.first()[0] < time.time():
                mailbox.get_nowait()
                self._remove_from_groups(channel)
                if mailbox.empty():
                    self.channels.pop(channel, None)
        joined_before = int(time.time()) - self.group_expiry
        for members in self.groups.values():
            for name, joined in list(members.items()):
                if joined and joined < joined_before:
                    members.pop(name, None)
