"""The room socket: one consumer per browser tab, one Channels group per room.

Thin by design: parse the frame, call a service, send what it returns. The
frames are documented in docs/protocol.md.
"""

import json
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.core.exceptions import ValidationError

from . import fragments, selectors, services
from .models import Room, room_name_validator

# Larger frames are refused unread: a 2,000-character message in htmx's JSON,
# with its headers and the worst-case escaping, stays well below this.
MAX_FRAME_CHARS = 16 * 1024

# Application close codes (4000-4999): the htmx ws extension only reconnects
# after 1006, 1011, 1012 and 1013, so these end the socket for good.
CLOSE_BAD_ROOM = 4404


class ChatConsumer(AsyncWebsocketConsumer):
    room: Room | None

    async def connect(self) -> None:
        self.room_name = self.scope["url_route"]["kwargs"]["room_name"]
        self.room = None
        # Ids this socket already got through a history replacement, so a
        # broadcast queued meanwhile is not appended a second time.
        self.replaced_ids: set[int] = set()
        try:
            room_name_validator(self.room_name)
        except ValidationError:
            await self.accept()
            await self.close(code=CLOSE_BAD_ROOM)
            return
        self.group_name = f"chat.{self.room_name}"
        await self.channel_layer.group_add(self.group_name, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group_name"):
            await self.channel_layer.group_discard(self.group_name, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        data, problem = parse_frame(text_data)
        if problem:
            await self.send(text_data=fragments.compose_errors(errors=[problem]))
        elif "after" in data:
            await self.catch_up(data["after"])
        else:
            await self.post(data)

    async def post(self, data: dict[str, Any]) -> None:
        try:
            posted = await database_sync_to_async(self.post_sync)(data)
        except ValidationError as error:
            await self.send(text_data=fragments.compose_errors(errors=error.messages))
            return
        if posted.created and not await services.message_broadcast(posted=posted):
            # The layer is down: the sender still sees the message; others catch up later.
            await self.send(text_data=posted.html)
        await self.send(text_data=fragments.compose_reset())

    def post_sync(self, data: dict[str, Any]) -> services.Posted:
        if self.room is None:
            self.room = services.room_get_or_create(name=self.room_name)
        return services.message_post(room=self.room, author=self.scope.get("user"), data=data)

    async def catch_up(self, after: str) -> None:
        """The page says which message it shows last; if it missed any, resend the history."""
        html = await database_sync_to_async(self.catch_up_sync)(after)
        if html:
            await self.send(text_data=html)

    def catch_up_sync(self, after: str) -> str | None:
        try:
            last_id = int(after or 0)
        except ValueError:
            last_id = 0
        room = self.room or selectors.room_get(name=self.room_name)
        if room is None:
            return None
        self.room = room
        if not selectors.room_has_messages_after(room=room, message_id=last_id):
            return None
        messages = selectors.room_history(room=room)
        self.replaced_ids = {message.pk for message in messages}
        return fragments.history_replaced(messages=messages)

    async def chat_message(self, event: dict[str, Any]) -> None:
        if event["id"] in self.replaced_ids:
            return
        await self.send(text_data=event["html"])


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
