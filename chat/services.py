"""Writes: entering a room, posting a message, fanning it out to the room.

Both paths call these: the no-JavaScript views and the WebSocket consumer.
A message is validated by MessageForm, saved in one transaction (idempotent by
its form token), rendered once, and only then broadcast to the room's group.
"""

import asyncio
import logging
from dataclasses import dataclass
from typing import Any
from uuid import uuid5

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone

from . import fragments, layer_watch
from .forms import MessageForm
from .models import Message, Room

logger = logging.getLogger(__name__)

COULD_NOT_SAVE = "Your message could not be saved. Please try again."

# A Redis that hangs instead of refusing costs at most this long per broadcast.
BROADCAST_TIMEOUT = 3.0


@dataclass(frozen=True)
class Posted:
    message: Message
    created: bool  # False when this was a resend of a message already stored
    html: str  # the fragment every member receives, rendered once


def room_get_or_create(*, name: str) -> Room:
    room, _ = Room.objects.get_or_create(name=name)
    return room


def message_post(*, room: Room, author: AbstractBaseUser | None, data: dict[str, Any]) -> Posted:
    """Validate and save a message; a resend (same author and token) returns the stored one.

    Raises ValidationError with messages fit to show the sender.
    """
    if author is None or not author.is_authenticated:
        raise ValidationError("Log in to chat.")
    form = MessageForm(data)
    if not form.is_valid():
        raise ValidationError([error for errors in form.errors.values() for error in errors])
    body = form.cleaned_data["message"]
    # A resend is the same form with the same text. A fast typer may send a second,
    # different text before the fresh token arrives: that is a new message, not a resend.
    token = uuid5(form.cleaned_data["token"], body)
    try:
        with transaction.atomic():
            # The room row lock orders the room's messages: seq follows commit order.
            seq = Room.objects.select_for_update().values_list("last_seq", flat=True).get(pk=room.pk) + 1
            Room.objects.filter(pk=room.pk).update(last_seq=seq, last_activity=timezone.now())
            message = Message.objects.create(room=room, author=author, body=body, token=token, seq=seq)
        created = True
    except IntegrityError:
        message = Message.objects.select_related("room").filter(author=author, token=token).first()
        if message is None:  # not a resend: another constraint failed
            raise ValidationError(COULD_NOT_SAVE) from None
        created = False
    except DatabaseError:
        # Nothing was stored and nothing is broadcast: the sender keeps the text and may retry.
        logger.exception("saving a message in %s failed", room)
        raise ValidationError(COULD_NOT_SAVE) from None
    message.author = author
    return Posted(message=message, created=created, html=fragments.message_appended(message=message))


def message_event(*, posted: Posted) -> dict[str, Any]:
    """The group event every consumer of the room gets (see docs/protocol.md)."""
    return {"type": "chat.message", "id": posted.message.pk, "seq": posted.message.seq, "html": posted.html}


async def message_broadcast(*, posted: Posted) -> bool:
    """Send the rendered message to its room. False (and logged) if the layer failed."""
    layer = get_channel_layer()
    try:
        await asyncio.wait_for(
            layer.group_send(posted.message.room.group_name, message_event(posted=posted)), BROADCAST_TIMEOUT
        )
    except Exception as exc:  # the message is saved; peers catch up from the database
        logger.warning("broadcast of message %s failed: %r", posted.message.pk, exc)
        layer_watch.report_failure()
        return False
    return True


def message_broadcast_on_commit(*, posted: Posted) -> None:
    """For synchronous callers (the views): broadcast once the transaction has committed."""
    transaction.on_commit(lambda: async_to_sync(message_broadcast)(posted=posted))
