"""Telling people they were mentioned, on whatever page of theirs is open, on every process.

Once a message that mentions people is committed (a post, or an edit that adds someone), one event goes to
the `sessions` group (chat/realtime/session_notices.py), whatever the number of people: each process's
listener passes it on to the room and lobby sockets it has of those users (registry `of_user` and
`lobby_of_user`), with no group per user. Each socket puts the notice on top of its page's `#notices`,
except a page of the very room the message is in (the message shows up there, highlighted). The notice is
the same for every recipient (one render per process); a lost one is still in the reader's inbox, the
lobby's count and the notices of the next page they load. An edit that takes a mention out, or a delete,
sends `mention.withdrawn` the same way: the notice leaves the pages that show it.
"""

import asyncio
import logging
from typing import Any

from channels.layers import get_channel_layer

from chat import fragments
from chat.models import Message, Room
from chat.realtime.session_notices import NOTIFY_TIMEOUT, SESSIONS_GROUP

logger = logging.getLogger(__name__)


def notice_event(*, message: Message, user_ids: tuple[int, ...] | list[int], withdrawn: bool = False) -> dict[str, Any]:
    return {
        "type": "mention.withdrawn" if withdrawn else "mention.notice",
        "users": [str(pk) for pk in user_ids],
        "room": message.room.name,
        "direct": message.room.kind == Room.DIRECT,
        "message": message.pk,
        "author": message.author.get_username(),
    }


async def send(*, message: Message, user_ids: tuple[int, ...] | list[int], withdrawn: bool = False) -> None:
    """Tell the people a committed message mentions (never fails the caller: the mention is stored); `withdrawn`:
    that an edit or a delete took their mention back (their pages drop its notice)."""
    try:
        event = notice_event(message=message, user_ids=user_ids, withdrawn=withdrawn)
        await asyncio.wait_for(get_channel_layer().group_send(SESSIONS_GROUP, event), NOTIFY_TIMEOUT)
    except Exception as exc:
        logger.warning("telling %d people about message %s failed: %r", len(user_ids), message.pk, exc)


class MentionEvents:
    """The handler of a room or lobby consumer for the notices the session listener passes on."""

    room_name: str | None = None  # a lobby socket has no room

    async def mention_notice(self, event: dict[str, Any]) -> None:
        if event["room"] == self.room_name:  # the page shows the message itself, highlighted
            return
        await self.send(text_data=fragments.mention_notice(event=event))

    async def mention_withdrawn(self, event: dict[str, Any]) -> None:
        await self.send(text_data=fragments.mention_withdrawn(message_id=event["message"]))
