"""Writes: entering a room, posting a message, fanning it out to the room.

Both paths call these: the no-JavaScript views and the WebSocket consumer.
A message is validated by MessageForm, saved in one transaction (idempotent by
its form token) under the room's next seq, and only then broadcast to the
room's group; each process renders it once per time zone (chat/fragments.py).
"""

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import DatabaseError, IntegrityError, transaction

from . import layer_watch
from .forms import MessageForm
from .models import Message, Profile, Room

logger = logging.getLogger(__name__)

COULD_NOT_SAVE = "Your message could not be saved. Please try again."

# A Redis that hangs instead of refusing costs at most this long per broadcast.
BROADCAST_TIMEOUT = 3.0


@dataclass(frozen=True)
class Draft:
    """A message that passed validation, not yet saved."""

    body: str
    token: UUID  # the idempotency key: from the form's token and the text


@dataclass(frozen=True)
class Posted:
    message: Message
    created: bool  # False when this was a resend of a message already stored
    previous: datetime | None  # when the room's message before this one was posted (its day)


def room_get_or_create(*, name: str) -> Room:
    room, _ = Room.objects.get_or_create(name=name)
    return room


def message_validate(*, author: AbstractBaseUser | None, data: Mapping[str, Any]) -> Draft:
    """Check who posts and what, without touching the database.

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
    return Draft(body=body, token=uuid5(form.cleaned_data["token"], body))


def message_save(*, room: Room, author: AbstractBaseUser, draft: Draft) -> Posted:
    """Save a validated message under the room's next seq; a resend (same author and key) returns the stored one.

    Raises ValidationError (and stores nothing) if the database fails.
    """
    try:
        with transaction.atomic():
            # The room row lock orders the room's messages: seq follows commit order.
            last_seq, last_time = (
                Room.objects.select_for_update().values_list("last_seq", "last_activity").get(pk=room.pk)
            )
            message = Message.objects.create(
                room=room, author=author, body=draft.body, token=draft.token, seq=last_seq + 1
            )
            Room.objects.filter(pk=room.pk).update(last_seq=message.seq, last_activity=message.created)
        return Posted(message=message, created=True, previous=last_time if last_seq else None)
    except IntegrityError:
        message = Message.objects.select_related("room").filter(author=author, token=draft.token).first()
        if message is None:  # not a resend: another constraint failed
            raise ValidationError(COULD_NOT_SAVE) from None
        message.author = author
        return Posted(message=message, created=False, previous=None)
    except DatabaseError:
        # Nothing was stored and nothing is broadcast: the sender keeps the text and may retry.
        logger.exception("saving a message in %s failed", room)
        raise ValidationError(COULD_NOT_SAVE) from None


def message_post(*, room: Room, author: AbstractBaseUser | None, data: Mapping[str, Any]) -> Posted:
    """Validate and save a message (the no-JavaScript path; the socket validates first, then saves)."""
    draft = message_validate(author=author, data=data)
    return message_save(room=room, author=author, draft=draft)


def message_event(*, posted: Posted) -> dict[str, Any]:
    """The group event every consumer of the room gets (see docs/protocol.md): the message's data, which
    each process renders once per time zone of its readers."""
    message = posted.message
    return {
        "type": "chat.message",
        "id": message.pk,
        "seq": message.seq,
        "author": message.author.get_username(),
        "body": message.body,
        "created": message.created.isoformat(),
        "previous": posted.previous.isoformat() if posted.previous else None,
    }


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


def time_zone_set(*, user: AbstractBaseUser, time_zone: str) -> str:
    """Save the zone a user reads times in (validated by TimeZoneForm)."""
    Profile.objects.update_or_create(user=user, defaults={"time_zone": time_zone})
    return time_zone
