"""Writes: rooms and their members, posting a message, fanning it out to the room.

Both paths call these: the no-JavaScript views and the WebSocket consumer.
A message is validated by MessageForm, saved in one transaction (idempotent by
its form token) under the room's next seq, and only then broadcast to the
room's group; each process renders it once per time zone (chat/fragments.py).
"""

import asyncio
import logging
import secrets
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models.functions import Lower
from django.utils import timezone

from chat import mentions, selectors
from chat.forms import MessageBodyForm, MessageForm
from chat.models import DIRECT_PREFIX, Membership, Mention, Message, Profile, ReadMark, Room, room_group_name
from chat.protection import limits
from chat.realtime import layer_watch, lobby_notices, mention_notices, session_notices

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
    previous_author: int | None = None  # who posted it (a run of one author's messages shows the name once)
    notify: tuple[int, ...] = ()  # the ids of the people it mentions, to tell once it is committed


NAME_TAKEN = "That name is taken: choose another."
NAME_RESERVED = f"Names starting with {DIRECT_PREFIX} are kept for direct messages."
NOT_A_MEMBER = "You are not a member of this room."


class NotAMember(ValidationError):
    """A private room or direct conversation the user is not in: to them it does not exist (404, close 4404)."""


def room_get_or_create(*, name: str) -> Room:
    """A public room, created by its first message. Raises ValidationError for a name kept for direct messages."""
    # Names are case-insensitive ("General" is `general`); an exact spelling first, for rooms stored before that.
    room = Room.objects.filter(name=name).first() or Room.objects.filter(name__iexact=name).order_by("id").first()
    if room is not None:
        return room
    if name.startswith(DIRECT_PREFIX):
        raise ValidationError(NAME_RESERVED)
    room, _ = Room.objects.get_or_create(name=name.lower())
    return room


def room_create(*, name: str, creator: AbstractBaseUser, private: bool) -> Room:
    """A room made with the new-room form: its creator is its first member and owner. Raises ValidationError
    for a taken or reserved name."""
    if name.lower().startswith(DIRECT_PREFIX):
        raise ValidationError(NAME_RESERVED)
    if Room.objects.filter(name__iexact=name).exists():  # "General" is the room `general`
        raise ValidationError(NAME_TAKEN)
    try:
        with transaction.atomic():
            room = Room.objects.create(name=name.lower(), kind=Room.PRIVATE if private else Room.PUBLIC)
            Membership.objects.create(room=room, user=creator, is_owner=True)
    except IntegrityError:
        raise ValidationError(NAME_TAKEN) from None
    # A page may have the name open as a public room nobody had posted in: its sockets re-check and close.
    room_access_changed_on_commit(room=room)
    return room


def direct_room_get_or_create(*, user: AbstractBaseUser, other: AbstractBaseUser) -> Room:
    """The direct conversation of two users (of one: their notes to self), with exactly them as members."""
    key = selectors.direct_key(user_ids=(user.pk, other.pk))
    room = Room.objects.filter(direct_key=key).first()
    if room is not None:
        return room
    try:
        with transaction.atomic():
            room = Room.objects.create(name=DIRECT_PREFIX + secrets.token_hex(16), kind=Room.DIRECT, direct_key=key)
            Membership.objects.bulk_create([Membership(room=room, user=member) for member in {user, other}])
    except IntegrityError:  # the other one opened it at the same moment
        room = Room.objects.get(direct_key=key)
    return room


def room_member_check(*, room: Room, user: AbstractBaseUser | None) -> None:
    """Raises NotAMember unless the user may read (and so post in) the room."""
    if not room.is_public and not selectors.room_readable(room=room, user=user):
        raise NotAMember(NOT_A_MEMBER)


def member_add(*, room: Room, by: AbstractBaseUser, username: str) -> Membership:
    """An owner adds someone to a private room. Raises PermissionDenied (not an owner, a direct conversation)
    or ValidationError (no such user)."""
    member_owner_check(room=room, by=by)
    users = get_user_model()
    user = users.objects.filter(**{users.USERNAME_FIELD: username.strip()}, is_active=True).first()
    if user is None:
        raise ValidationError(f"There is no user called “{username.strip()}”.")
    membership, created = Membership.objects.get_or_create(room=room, user=user)
    if created:
        lobby_notices.send_on_commit()  # the room shows in their lobby
    return membership


def member_make_owner(*, room: Room, by: AbstractBaseUser, user: AbstractBaseUser) -> None:
    member_owner_check(room=room, by=by)
    if not Membership.objects.filter(room=room, user=user).update(is_owner=True):
        raise ValidationError(f"{user.get_username()} is not a member.")


def member_remove(*, room: Room, by: AbstractBaseUser, user: AbstractBaseUser) -> None:
    """An owner removes a member, or a member leaves. The last owner cannot leave without handing over.
    Once committed, the removed user's open pages of the room close, on every process."""
    if room.kind != Room.PRIVATE:
        raise PermissionDenied("A direct conversation keeps its two members.")
    if by.pk != user.pk:
        member_owner_check(room=room, by=by)
    with transaction.atomic():
        members = list(Membership.objects.select_for_update().filter(room=room))
        gone = next((m for m in members if m.user_id == user.pk), None)
        if gone is None:
            raise ValidationError(f"{user.get_username()} is not a member.")
        if gone.is_owner and not any(m.is_owner for m in members if m.user_id != user.pk):
            raise ValidationError("Make another member an owner before the last owner leaves.")
        gone.delete()
        Mention.objects.filter(room=room, user_id=user.pk).delete()  # they can no longer read those messages
    room_access_changed_on_commit(room=room, user_id=user.pk)


def member_owner_check(*, room: Room, by: AbstractBaseUser) -> None:
    if room.kind != Room.PRIVATE:
        raise PermissionDenied("A direct conversation keeps its two members.")
    if not selectors.room_is_owned_by(room=room, user=by):
        raise PermissionDenied("Only the room's owners can change its members.")


def room_access_changed_on_commit(*, room: Room, user_id: int | None = None) -> None:
    """Once committed, the room's sockets (of one user, or all) re-check that they may still read it: a removed
    member's close at once, in order with the room's messages (the event goes through the room's group)."""

    async def send() -> None:
        event = {"type": "room.access", "user": user_id}
        try:
            await asyncio.wait_for(get_channel_layer().group_send(room_group_name(room.name), event), BROADCAST_TIMEOUT)
        except Exception as exc:  # every post re-checks membership anyway
            logger.warning("telling %s's sockets about a membership change failed: %r", room.name, exc)
        await lobby_notices.send()  # the room leaves (or joins) someone's lobby

    transaction.on_commit(lambda: async_to_sync(send)())


def composed(data: Mapping[str, Any]) -> Mapping[str, Any]:
    """The composer's text: its one-line input (`message`) or, in its multi-line mode (`multiline`
    ticked), its text area (`lines`)."""
    if data.get("multiline") != "1":
        return data
    return {**dict(data.items()), "message": data.get("lines", "")}


def message_validate(*, author: AbstractBaseUser | None, data: Mapping[str, Any]) -> Draft:
    """Check who posts and what, without touching the database.

    Raises ValidationError with messages fit to show the sender.
    """
    if author is None or not author.is_authenticated:
        raise ValidationError("Log in to chat.")
    form = MessageForm(composed(data))
    if not form.is_valid():
        raise ValidationError([error for errors in form.errors.values() for error in errors])
    body = form.cleaned_data["message"]
    # A resend is the same form with the same text. A fast typer may send a second,
    # different text before the fresh token arrives: that is a new message, not a resend.
    return Draft(body=body, token=uuid5(form.cleaned_data["token"], body))


def message_save(*, room: Room, author: AbstractBaseUser, draft: Draft, ip: str | None = None) -> Posted:
    """Save a validated message under the room's next seq; a resend (same author and key) returns the stored one.

    `room` may be unsaved (see selectors.room_get): its row is created with its first message, so
    only a signed-in user's valid post ever creates a room. `ip`: the client's address, for the
    posts-per-address limit (the per-user one always applies; both are shared with every path).
    Raises ValidationError (and stores nothing) if the database fails, limits.RateLimited over a limit.
    """
    limits.post_allowed(user=author, ip=ip)
    try:
        with transaction.atomic():
            if room.pk is None:
                room = room_get_or_create(name=room.name)
            room_member_check(room=room, user=author)  # checked on every post: a removal takes effect at once
            # After the member check: a non-member learns nothing of who reads the room, not even by the cap.
            mentioned = mentions_resolve(room=room, author=author, body=draft.body)
            # The room row lock orders the room's messages: seq follows commit order.
            last_seq, last_time = (
                Room.objects.select_for_update().values_list("last_seq", "last_activity").get(pk=room.pk)
            )
            above = Message.objects.filter(room=room).order_by("-id").values_list("author_id", flat=True).first()
            message = Message.objects.create(
                room=room,
                author=author,
                body=draft.body,
                token=draft.token,
                seq=last_seq + 1,
                posted_seq=last_seq + 1,
                mentioned=mentioned.people,
            )
            Mention.objects.bulk_create([Mention(message=message, user_id=pk, room=room) for pk in mentioned.notify])
            Room.objects.filter(pk=room.pk).update(last_seq=message.seq, last_activity=message.created)
        previous = last_time if last_seq else None
        return Posted(
            message=message,
            created=True,
            previous=previous,
            previous_author=above,
            notify=tuple(mentioned.notify),
        )
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


def message_post(
    *, room: Room, author: AbstractBaseUser | None, data: Mapping[str, Any], ip: str | None = None
) -> Posted:
    """Validate and save a message (the no-JavaScript path; the socket validates first, then saves)."""
    draft = message_validate(author=author, data=data)
    return message_save(room=room, author=author, draft=draft, ip=ip)


def message_event(*, posted: Posted) -> dict[str, Any]:
    """The group event every consumer of the room gets (see docs/protocol.md): the change's kind and the
    message's data, which each process renders once per time zone of its readers."""
    return change_event(
        message=posted.message, kind="post", previous=posted.previous, previous_author=posted.previous_author
    )


def change_event(
    *, message: Message, kind: str, previous: datetime | None = None, previous_author: int | None = None
) -> dict[str, Any]:
    return {
        "type": "chat.message",
        "kind": kind,  # post, edit or delete
        "room": message.room.name,
        "id": message.pk,
        "seq": message.seq,
        "posted_seq": message.posted_seq,
        "author": message.author.get_username(),
        "author_id": message.author_id,
        "body": message.body,
        "created": message.created.isoformat(),
        "edited": message.edited.isoformat() if message.edited else None,
        "deleted": message.deleted.isoformat() if message.deleted else None,
        "previous": previous.isoformat() if previous else None,
        "previous_author": previous_author,
        "mentioned": message.mentioned,
    }


async def message_broadcast(*, posted: Posted) -> bool:
    """Send the new message to its room, then a notice to the people it mentions. False (and logged) if the
    layer failed."""
    sent = await change_broadcast(room_name=posted.message.room.name, event=message_event(posted=posted))
    if posted.notify:
        await mention_notices.send(message=posted.message, user_ids=posted.notify)
    return sent


async def change_broadcast(*, room_name: str, event: dict[str, Any]) -> bool:
    """Send a change (post, edit, delete) to the room's sockets. False (and logged) if the layer failed."""
    layer = get_channel_layer()
    try:
        await asyncio.wait_for(layer.group_send(room_group_name(room_name), event), BROADCAST_TIMEOUT)
    except Exception as exc:  # the change is saved; peers catch up from the database
        logger.warning("broadcast of change %s in %s failed: %r", event.get("seq"), room_name, exc)
        layer_watch.report_failure()
        await lobby_notices.send()
        return False
    await lobby_notices.send()  # its last message, its place in the list, readers' unread counts
    return True


def message_broadcast_on_commit(*, posted: Posted) -> None:
    """For synchronous callers (the views): broadcast once the transaction has committed."""
    transaction.on_commit(lambda: async_to_sync(message_broadcast)(posted=posted))


def changes_broadcast_on_commit(*, changes: list["Change"]) -> None:
    """For synchronous callers: broadcast edits and deletes, in seq order, once committed."""

    async def broadcast() -> None:
        for change in changes:
            await change_broadcast(room_name=change.room_name, event=change.event)
            if change.notify:
                await mention_notices.send(message=change.message, user_ids=change.notify)
            if change.withdraw:
                await mention_notices.send(message=change.message, user_ids=change.withdraw, withdrawn=True)

    if changes:
        transaction.on_commit(lambda: async_to_sync(broadcast)())


# Edits, deletes and moderation. Each change takes the room's next seq under the room row's lock,
# so a socket sees every change once and in order, and a reconnecting page gets it from its cursor.


class MessageGone(Exception):
    """The message does not exist in this room, or was deleted: a 404 for the one who asked."""


@dataclass(frozen=True)
class Change:
    room_name: str
    message: Message
    event: dict[str, Any]
    notify: tuple[int, ...] = ()  # people an edit newly mentions
    withdraw: tuple[int, ...] = ()  # people an edit or delete no longer mentions (their notices go)


def message_for_change(*, room: Room, message_id: int) -> Message:
    message = Message.objects.select_related("author", "room").filter(room=room, pk=message_id).first()
    if message is None or message.deleted:
        raise MessageGone("That message has been deleted." if message else "There is no such message in this room.")
    return message


def message_for_edit(*, room: Room, message_id: int, editor: AbstractBaseUser) -> Message:
    """The message if `editor` may edit it (their own). Raises MessageGone or PermissionDenied."""
    message = message_for_change(room=room, message_id=message_id)
    if not editor.is_authenticated or message.author_id != editor.pk:
        raise PermissionDenied("You can edit only your own messages.")
    return message


def message_for_delete(*, room: Room, message_id: int, actor: AbstractBaseUser) -> Message:
    """The message if `actor` may delete it (their own; staff: anyone's). Raises MessageGone or PermissionDenied."""
    message = message_for_change(room=room, message_id=message_id)
    if not actor.is_authenticated or not (message.author_id == actor.pk or actor.is_staff):
        raise PermissionDenied("You can delete only your own messages.")
    return message


def message_edit(
    *, room: Room, message_id: int, editor: AbstractBaseUser, data: Mapping[str, Any], ip: str | None = None
) -> Change | None:
    """Replace the text of the editor's own message. None: the text is unchanged (a resend), nothing to do.

    Raises MessageGone, PermissionDenied, or ValidationError (same limits as a new message: the text's, and
    limits.RateLimited beyond the posts per user and per address, which edits and deletes share).
    """
    message = message_for_edit(room=room, message_id=message_id, editor=editor)
    form = MessageBodyForm(data)
    if not form.is_valid():
        raise ValidationError([error for errors in form.errors.values() for error in errors])
    body = form.cleaned_data["message"]
    if body == message.body:
        return None
    # Each change takes a seq and goes to every reader: edits count as posts do.
    limits.post_allowed(user=editor, ip=ip)
    mentioned = mentions_resolve(room=room, author=editor, body=body)
    return change_save(
        room=room, message=message, kind="edit", body=body, edited=timezone.now(), mentioned_now=mentioned
    )


def message_delete(*, room: Room, message_id: int, actor: AbstractBaseUser, ip: str | None = None) -> Change:
    """Delete a message: its author, or staff for anyone's. Raises MessageGone, PermissionDenied or
    limits.RateLimited (deletes share the posts' limits)."""
    message = message_for_delete(room=room, message_id=message_id, actor=actor)
    limits.post_allowed(user=actor, ip=ip)
    return change_save(room=room, message=message, kind="delete", body="", deleted=timezone.now())


def change_save(
    *, room: Room, message: Message, kind: str, mentioned_now: "Mentioned | None" = None, **fields: Any
) -> Change:
    """Save an edit (with the people its new text mentions) or a delete (which withdraws its mentions)."""
    if kind == "delete" or mentioned_now is None:
        mentioned_now = Mentioned(people=[], notify=[])
    fields["mentioned"] = mentioned_now.people
    try:
        with transaction.atomic():
            seq = Room.objects.select_for_update().values_list("last_seq", flat=True).get(pk=room.pk) + 1
            # Only if still not deleted: two deletes (or an edit racing a delete) change it once.
            updated = Message.objects.filter(pk=message.pk, deleted__isnull=True).update(seq=seq, **fields)
            if not updated:
                raise MessageGone("That message has been deleted.")
            Room.objects.filter(pk=room.pk).update(last_seq=seq)
            added, withdrawn = mentions_replace(message=message, notify=mentioned_now.notify)
    except DatabaseError:
        logger.exception("saving a change to message %s failed", message.pk)
        raise ValidationError(COULD_NOT_SAVE.replace("message", "change")) from None
    for name, value in {"seq": seq, **fields}.items():
        setattr(message, name, value)
    event = change_event(message=message, kind=kind)
    return Change(room_name=room.name, message=message, event=event, notify=tuple(added), withdraw=tuple(withdrawn))


# Mentions (chat/mentions.py finds them in the text): resolved once when a message is saved or edited, in one
# query for every name it writes, and kept as Mention rows for the inbox, the notices and the lobby's counts.

TOO_MANY_MENTIONS = "A message can mention at most {limit} people; this one mentions {count}."


@dataclass(frozen=True)
class Mentioned:
    people: list[list[Any]]  # [id, username] of everyone the text mentions (its author too): how it renders
    notify: list[int]  # the ids of those to tell: not the author


def mentions_resolve(*, room: Room, author: AbstractBaseUser, body: str) -> Mentioned:
    """Who the text mentions: active users of those names who may read the room (public: anyone; else its
    members). One query, whatever the number of names. Raises ValidationError beyond mentions.MAX_PEOPLE."""
    spellings = mentions.spellings(body)
    if not spellings:
        return Mentioned(people=[], notify=[])
    users = get_user_model()
    field = users.USERNAME_FIELD
    readers = users.objects.annotate(spelled=Lower(field)).filter(spelled__in=spellings, is_active=True)
    if not room.is_public:
        readers = readers.filter(memberships__room=room) if room.pk else readers.none()
    by_name: dict[str, tuple[int, str]] = {}
    for pk, name in readers.order_by("pk").values_list("pk", field):
        by_name.setdefault(name.lower(), (pk, name))  # two names differing only in case: the older account
    people = [by_name[name] for name in mentions.names(body, known=by_name.__contains__)]
    notify = [pk for pk, _ in people if pk != author.pk]  # mentioning yourself does nothing
    if len(notify) > mentions.MAX_PEOPLE:
        raise ValidationError(TOO_MANY_MENTIONS.format(limit=mentions.MAX_PEOPLE, count=len(notify)))
    return Mentioned(people=[list(person) for person in people], notify=notify)


def mentions_replace(*, message: Message, notify: Collection[int]) -> tuple[list[int], list[int]]:
    """Make the message's Mention rows those of `notify` (in the caller's transaction): the ones still there keep
    their state, the others are withdrawn. Returns the ids of the people newly mentioned, and of those withdrawn."""
    existing = set(Mention.objects.filter(message=message).values_list("user_id", flat=True))
    withdrawn = existing - set(notify)
    if withdrawn:
        Mention.objects.filter(message=message, user_id__in=withdrawn).delete()
    added = [pk for pk in notify if pk not in existing]
    Mention.objects.bulk_create([Mention(message=message, user_id=pk, room_id=message.room_id) for pk in added])
    return added, sorted(withdrawn)


def mention_seen(*, user: AbstractBaseUser, message_id: int) -> bool:
    """The user dismissed the notice of a message that mentions them, or opened it. False: no such mention."""
    mentions_of = Mention.objects.filter(user_id=user.pk, message_id=message_id)
    if mentions_of.filter(seen__isnull=True).update(seen=timezone.now()):
        lobby_notices.send_on_commit()  # their lobby's count of mentions
    return mentions_of.exists()


def user_deactivate(*, user: AbstractBaseUser, by: AbstractBaseUser, delete_messages: bool) -> list[Change]:
    """Staff only (and only a superuser removes staff or a superuser): the user can no longer log in or post;
    optionally every message of theirs is deleted (each a change in its room's stream). Their open sockets
    are closed by the caller's signal."""
    if not by.is_staff:
        raise PermissionDenied("Only staff can remove a user.")
    if user.pk == by.pk:
        raise PermissionDenied("You cannot remove yourself.")
    if (user.is_staff or user.is_superuser) and not by.is_superuser:
        raise PermissionDenied("Staff remove ordinary users only: only a superuser removes staff.")
    type(user).objects.filter(pk=user.pk).update(is_active=False)
    user.is_active = False
    session_notices.sessions_changed(user_pk=user.pk)  # their open sockets re-check, and close
    changes = []
    if delete_messages:
        for message in Message.objects.filter(author=user, deleted__isnull=True).select_related("room", "author"):
            try:
                changes.append(
                    change_save(room=message.room, message=message, kind="delete", body="", deleted=timezone.now())
                )
            except MessageGone:
                continue  # deleted meanwhile
    return changes


def time_zone_set(*, user: AbstractBaseUser, time_zone: str) -> str:
    """Save the zone a user reads times in (validated by TimeZoneForm)."""
    Profile.objects.update_or_create(user=user, defaults={"time_zone": time_zone})
    return time_zone


def read_mark_open(*, user: AbstractBaseUser, room: Room) -> int | None:
    """The user opened the room's newest page: mark it read to its newest message. Returns how far they had
    read before (None on a first visit), for the "New messages" divider."""
    before = ReadMark.objects.filter(user=user, room=room).values_list("seq", flat=True).first()
    if before is None:
        ReadMark.objects.bulk_create([ReadMark(user=user, room=room, seq=room.last_seq)], ignore_conflicts=True)
    elif before < room.last_seq:
        ReadMark.objects.filter(user=user, room=room, seq__lt=room.last_seq).update(
            seq=room.last_seq, updated=timezone.now()
        )
        lobby_notices.send_on_commit()  # their lobby's unread count of the room
    return before


def read_marks_advance(*, positions: Mapping[tuple[int, str], int], existing: Collection[tuple[int, str]] = ()) -> None:
    """Open rooms' positions, (user id, room name) → seq shown: each mark only moves forward. One update per
    room and seq (the sockets of a room are usually at the same one), plus the marks missing so far (those
    not in `existing`, the keys the caller knows to have a mark already)."""
    rooms = dict(Room.objects.filter(name__in={name for _, name in positions}).values_list("name", "id"))
    groups: dict[tuple[int, int], list[int]] = {}
    missing: dict[tuple[int, int], list[int]] = {}
    for (user_id, name), seq in positions.items():
        if name in rooms:
            groups.setdefault((rooms[name], seq), []).append(user_id)
            if (user_id, name) not in existing:
                missing.setdefault((rooms[name], seq), []).append(user_id)
    now = timezone.now()
    for (room_id, seq), user_ids in groups.items():
        ReadMark.objects.filter(room_id=room_id, user_id__in=user_ids, seq__lt=seq).update(seq=seq, updated=now)
    for (room_id, seq), user_ids in missing.items():
        ReadMark.objects.bulk_create(
            [ReadMark(room_id=room_id, user_id=user_id, seq=seq) for user_id in user_ids], ignore_conflicts=True
        )
