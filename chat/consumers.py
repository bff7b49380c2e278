"""The room socket: one consumer per browser tab, one Channels group per room.

Thin by design: parse the frame, call a service, send what it returns. The
frames are documented in docs/protocol.md.
"""

import json
import logging
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.core.exceptions import ValidationError

from . import fragments, layer_watch, selectors, services
from .models import Room, room_group_name, room_name_validator
from .throttle import TokenBucket

logger = logging.getLogger(__name__)

# Larger frames are refused unread: a 2,000-character message in htmx's JSON,
# with its headers and the worst-case escaping, stays well below this.
MAX_FRAME_CHARS = 16 * 1024

# Frames one socket may send: a burst (a quick exchange, a reconnect's sync),
# then a steady rate (settings: CHAT_SOCKET_BURST, CHAT_SOCKET_RATE per second).
# Beyond that the sender is told to slow down.
FRAME_BURST, FRAME_RATE = settings.CHAT_SOCKET_BURST, settings.CHAT_SOCKET_RATE
TOO_FAST = "You are sending messages too fast. Wait a moment, then send again."

# Application close codes (4000-4999): the htmx ws extension only reconnects
# after 1006, 1011, 1012 and 1013, so these end the socket for good.
CLOSE_BAD_ROOM = 4404


class ChatConsumer(AsyncWebsocketConsumer):
    room: Room | None

    async def connect(self) -> None:
        self.room_name = self.scope["url_route"]["kwargs"]["room_name"]
        self.room = None
        # The seq of the newest message this socket has shown (None: not known yet).
        self.seq: int | None = None
        self.throttle = TokenBucket(burst=FRAME_BURST, rate=FRAME_RATE)
        try:
            room_name_validator(self.room_name)
        except ValidationError:
            await self.accept()
            await self.close(code=CLOSE_BAD_ROOM)
            return
        self.group_name = room_group_name(self.room_name)
        await self.accept()
        self.joined = await self.join()
        layer_watch.watch(self.channel_name, self.room_name)

    async def join(self) -> bool:
        """Join the room's group. If the layer is down, read-only until it returns (then resync joins)."""
        try:
            await self.channel_layer.group_add(self.group_name, self.channel_name)
        except Exception as exc:
            logger.warning("joining %s failed, will retry when the layer is back: %r", self.group_name, exc)
            layer_watch.report_failure()
            return False
        return True

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group_name"):
            layer_watch.unwatch(self.channel_name)
            try:
                await self.channel_layer.group_discard(self.group_name, self.channel_name)
            except Exception as exc:  # the layer is down; its groups went with it
                logger.info("leaving %s failed: %r", self.group_name, exc)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        # The flood guard comes first: a frame over the limit is not even parsed.
        data, problem = parse_frame(text_data) if self.throttle.take() else ({}, TOO_FAST)
        if problem:
            await self.send(text_data=fragments.compose_errors(errors=[problem]))
        elif "after" in data:
            await self.catch_up(after_id=parse_cursor(data["after"]))
        else:
            await self.post(data)

    async def post(self, data: dict[str, Any]) -> None:
        try:
            posted = await database_sync_to_async(self.post_sync)(data)
        except ValidationError as error:
            await self.send(text_data=fragments.compose_errors(errors=error.messages))
            return
        if posted.created and not await services.message_broadcast(posted=posted):
            # The layer is down: the sender still sees the message (by the same rules as a
            # broadcast, so a late copy from the layer is skipped); others catch up later.
            await self.chat_message(services.message_event(posted=posted))
        await self.send(text_data=fragments.compose_reset())

    def post_sync(self, data: dict[str, Any]) -> services.Posted:
        if self.room is None:
            self.room = services.room_get_or_create(name=self.room_name)
        return services.message_post(room=self.room, author=self.scope.get("user"), data=data)

    async def catch_up(self, *, after_id: int | None = None) -> None:
        """Resend the recent history if this page misses a message.

        `after_id`: the newest message the page says it shows (its sync frame).
        None: judge by the seq this socket was last sent (after a layer outage).
        """
        html = await database_sync_to_async(self.catch_up_sync)(after_id)
        if html:
            await self.send(text_data=html)

    def catch_up_sync(self, after_id: int | None) -> str | None:
        newest = selectors.room_newest_message(room_name=self.room_name)
        if newest is None:
            self.seq = self.seq or 0
            return None
        if after_id is not None:
            missed = newest.pk > after_id
        else:
            missed = self.seq is None or newest.seq > self.seq
        if not missed:
            self.seq = max(self.seq or 0, newest.seq)
            return None
        history = selectors.room_history(room=newest.room_id)
        self.seq = max(self.seq or 0, history[-1].seq)
        return fragments.history_replaced(messages=history)

    async def chat_message(self, event: dict[str, Any]) -> None:
        """A message for the room. Seqs go 1, 2, 3… per room: one seen already is skipped,
        and a gap means a broadcast was lost, so the authoritative history replaces the list."""
        seq = event["seq"]
        if self.seq is not None and seq <= self.seq:
            return
        if self.seq is not None and seq > self.seq + 1:
            await self.catch_up(after_id=0)
            return
        self.seq = seq
        await self.send(text_data=event["html"])

    async def chat_resync(self, event: dict[str, Any]) -> None:
        """The layer is back after an outage: rejoin if needed; catch up if the room got ahead of this socket."""
        if not self.joined:
            self.joined = await self.join()
        if self.seq is None or self.seq < event["seq"]:
            await self.catch_up()


def parse_frame(text_data: str | None) -> tuple[dict[str, Any], str | None]:
    """htmx sends a JSON object of the form's fields (plus HEADERS); refuse anything else."""
    if text_data is None:
        return {}, "Send text frames."
    if len(text_data) > MAX_FRAME_CHARS:
        return {}, "That message is far too long."
    try:
        data = json.loads(text_data)
    except ValueError:
        return {}, "The message could not be read."
    if not isinstance(data, dict) or not all(isinstance(v, str) for k, v in data.items() if k != "HEADERS"):
        return {}, "The message could not be read."
    return data, None


def parse_cursor(value: str) -> int:
    """The page's cursor; anything unreadable counts as "shows nothing yet"."""
    try:
        return max(int(value or 0), 0)
    except ValueError:
        return 0
