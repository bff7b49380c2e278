"""The room socket: one consumer per browser tab, one Channels group per room.

Thin by design: parse the frame, call a service, send what it returns. A socket is added to the
process's registry on connect and removed on disconnect (chat/realtime/registry.py): presence,
typing, catch-up, liveness, layer watch, unread and the session listener follow it from there.
Every frame's HTML comes from chat/fragments.py. The frames are documented in docs/protocol.md.
"""

import asyncio
import json
import logging
import time
from collections import deque
from typing import Any
from uuid import UUID

from django.conf import settings
from django.core.exceptions import ValidationError

from chat import fragments, selectors, services
from chat.accounts.access import may_read_public
from chat.models import DEFAULT_TIME_ZONE, MESSAGE_BODY_MAX_LENGTH, Room, room_group_name, room_name_validator
from chat.protection import backpressure, limits
from chat.protection.token_bucket import TokenBucket
from chat.realtime import (
    access,
    catch_up,
    db,
    layer_watch,
    mention_notices,
    post_auth,
    presence,
    session_notices,
    typing_notices,
    unread,
)
from chat.realtime.consumer_base import PooledDatabaseWebsocketConsumer, layer_forget
from chat.realtime.registry import sockets

logger = logging.getLogger(__name__)

# Larger frames are refused unread: a 2,000-character message in htmx's JSON,
# with its headers and the worst-case escaping, stays well below this.
MAX_FRAME_CHARS = 16 * 1024

# Frames one socket may send: a burst (a quick exchange, a reconnect's sync),
# then a steady rate (settings: CHAT_SOCKET_BURST, CHAT_SOCKET_RATE per second).
# Beyond that the sender is told to slow down.
FRAME_BURST, FRAME_RATE = settings.CHAT_SOCKET_BURST, settings.CHAT_SOCKET_RATE
TOO_FAST = "You are sending messages too fast. Wait a moment, then send again."
# Typing markers: the page sends at most one per 2 s while its user types (hx-trigger throttle:2s), and
# one per new message; a marker is a few hundred characters of htmx's headers.
TYPING_BURST, TYPING_RATE = 4, 1.0
TYPING_FRAME_CHARS = 1024
UNREADABLE = "The message could not be read."
TOO_MANY_SOCKETS = "Too many open chat pages: close some, then reload this one."
MAX_UNSENT = 3  # refused texts handed back at once; the oldest goes first

# Application close codes (4000-4999): the htmx ws extension only reconnects
# after 1006, 1011, 1012 and 1013, so these end the socket for good.
CLOSE_BAD_ROOM = 4404
CLOSE_SIGNED_OUT = 4401
CLOSE_TOO_MANY_SOCKETS = 4429


class ChatConsumer(
    mention_notices.MentionEvents,
    presence.PresenceEvents,
    typing_notices.TypingEvents,
    session_notices.SessionEvents,
    PooledDatabaseWebsocketConsumer,
):
    room: Room | None

    async def connect(self) -> None:
        self.room_name = self.scope["url_route"]["kwargs"]["room_name"]
        self.room = None
        # The seq of the newest change this socket has shown; None until the page's sync
        # frame says where it is (broadcasts before that are in the database it reads).
        self.seq: int | None = None
        self.behind_at: int | None = None
        self.joined_at: float | None = None  # when it joined the room's group (monotonic)
        self.last_sent = time.monotonic()
        self.throttle = TokenBucket(burst=FRAME_BURST, rate=FRAME_RATE)
        # Accepted first, refused after: the page hears why (a refused handshake looks like a network
        # error, which htmx retries), and the handshake does not wait for the socket count.
        await self.accept()
        if not may_read_public(self.scope.get("user")):  # CHAT_PUBLIC_READ=0: visitors get no frame of a room
            await self.sign_out()
            return
        try:
            room_name_validator(self.room_name)
        except ValidationError:
            await self.close(code=CLOSE_BAD_ROOM)
            return
        # Who may read the room is checked here, before any frame of it, and on every post; never per
        # delivered message. A room they may not read closes as one that does not exist.
        self.room = await access.room_for_socket(self.room_name, user=self.scope.get("user"))
        if self.room is None:
            await self.close(code=CLOSE_BAD_ROOM)
            return
        self.room_name = self.room.name  # its own spelling: the group, the presence and the posts are the room's
        self.client_ip = limits.scope_ip(self.scope)
        self.counted = await limits.socket_open(user=self.scope.get("user"), ip=self.client_ip)
        if not self.counted:
            await self.send(text_data=fragments.compose_errors(errors=[TOO_MANY_SOCKETS]))
            await self.close(code=CLOSE_TOO_MANY_SOCKETS)
            return
        self.zone_name = self.scope.get("time_zone") or DEFAULT_TIME_ZONE  # from the handshake's session
        self.group_name = room_group_name(self.room_name)
        self.joined = await self.join()
        self.joined_at = time.monotonic()
        # From here on the process follows it: presence, typing, catch-up, liveness, layer watch, unread
        # and the session listener (a logout elsewhere closes it).
        sockets.add(self, room=self.room_name)
        await self.send(text_data=fragments.connection_status())

    async def join(self) -> bool:
        """Join the room's group. If the layer is down, read-only until it returns (then resync joins)."""
        try:
            await self.channel_layer.group_add(self.group_name, self.channel_name)
        except Exception as exc:
            logger.warning("joining %s failed, will retry when the layer is back: %r", self.group_name, exc)
            layer_watch.report_failure()
            return False
        return True

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        # Every way out releases what the socket holds: a close (disconnect), but also a handler that
        # crashed or a task that daphne cancelled, where Channels never calls disconnect().
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self.release()

    async def disconnect(self, code: int) -> None:
        self.close_code = code  # presence tells a lost connection (which comes back) from a page closed
        await self.release()

    async def release(self) -> None:
        """Give back what this socket holds, once: its registry entry (and with it presence, typing, catch-up,
        liveness, layer watch, unread and the session listener), its socket count and its group."""
        if getattr(self, "released", False):
            return
        self.released = True
        if hasattr(self, "channel_name"):  # else the layer never gave it a channel: nothing registered
            sockets.remove(self)
            layer_forget(self.channel_layer, self.channel_name)
        # The rest awaits the cache and the layer: in a task of its own, so a second cancellation (daphne
        # killing a slow close) cannot cut it short half way.
        await asyncio.shield(asyncio.ensure_future(self.release_shared()))

    async def release_shared(self) -> None:
        # The socket count is shared by every process (it gates new sockets): not per-process state.
        if getattr(self, "counted", False):
            await limits.socket_closed(user=self.scope.get("user"), ip=self.client_ip)
        if hasattr(self, "group_name"):
            try:
                await self.channel_layer.group_discard(self.group_name, self.channel_name)
            except Exception as exc:  # the layer is down; its groups went with it
                logger.info("leaving %s failed: %r", self.group_name, exc)

    async def send(self, text_data: str | None = None, bytes_data: bytes | None = None, close: bool = False) -> None:
        self.last_sent = time.monotonic()
        await super().send(text_data=text_data, bytes_data=bytes_data, close=close)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        layer_watch.watch.busy()
        # Typing markers (small, frequent) have an allowance of their own: a person typing quickly must not
        # spend the posts' allowance on them. Over it they are dropped without a word.
        if text_data is not None and len(text_data) <= TYPING_FRAME_CHARS and typing_notices.MARKER in text_data:
            data, problem = parse_frame(text_data)
            if not problem and typing_notices.is_notice(data):
                if self.typing_throttle().take():
                    await typing_notices.typists.notice(self)
                return
        # The flood guard comes first: a frame over the limit is only read for a text to hand back.
        if not self.throttle.take():
            await self.refuse(parse_frame(text_data)[0], reason=TOO_FAST, reset=True)
            return
        data, problem = parse_frame(text_data)
        if problem:
            await self.send(text_data=fragments.compose_errors(errors=[problem]))
        elif typing_notices.is_notice(data):
            await typing_notices.typists.notice(self)
        elif "after" in data:
            await self.sync(cursor=parse_cursor(data["after"]))
        else:
            await self.post(data)

    async def post(self, data: dict[str, Any]) -> None:
        user = self.scope.get("user")
        if user is not None and user.is_authenticated and not post_auth.csrf_token_valid(self.scope, data):
            await self.send(text_data=fragments.compose_errors(errors=[post_auth.STALE_PAGE]))
            return
        try:
            draft = services.message_validate(author=user, data=data)
        except ValidationError as error:
            await self.send(text_data=fragments.compose_errors(errors=error.messages))
            return
        # The input is emptied as soon as the text is known to be valid, so what the sender types
        # next is not wiped by a reset arriving after the save; a failed save puts the text back. A
        # "Send again" of a refused text comes from its own form: the input (a new draft) is left alone.
        resend = data.get("resend") == "1"
        if not resend:
            await self.send(text_data=fragments.compose_reset())
        try:
            posted = await db.writes(self.save_sync)(draft)
        except post_auth.SignedOut:
            await self.sign_out(removed=await db.reads(post_auth.user_removed)(self.scope))
            return
        except services.NotAMember:
            await self.room_closed()
            return
        except limits.RateLimited as error:
            await self.refuse(data, reason=" ".join(error.messages), reset=False)  # the input is empty already
            return
        except ValidationError as error:
            await self.send(text_data=fragments.compose_errors(errors=error.messages, restore=draft.body))
            return
        if resend:
            await self.send(text_data=fragments.unsent_cleared(token=str(UUID(str(data["token"])))))
        if posted.created and not await services.message_broadcast(posted=posted):
            # The layer is down: the sender still sees the message (by the same rules as a
            # broadcast, so a late copy from the layer is skipped); others catch up later.
            await self.chat_message(services.message_event(posted=posted))

    async def refuse(self, data: dict[str, Any], *, reason: str, reset: bool) -> None:
        """A post refused for speed (a flood guard or a posting limit). Its text is handed back beside the
        input, with a "Send again" form, and the input is emptied: what the sender types next is a new
        message, never glued to the refused one. Anything else refused just shows why."""
        unsent = unsent_post(data)
        if unsent is None:
            await self.send(text_data=fragments.compose_errors(errors=[reason]))
            return
        token, body = unsent
        if getattr(self, "unsent", None) is None:  # made with the first refusal: most sockets never hold one
            self.unsent: deque[str] = deque()
        shown, dropped = self.unsent, []
        if token not in shown:
            shown.append(token)
            while len(shown) > MAX_UNSENT:
                dropped.append(shown.popleft())
        await self.send(
            text_data=fragments.unsent(
                room_name=self.room_name,
                token=token,
                body=body,
                reason=reason,
                replace=data.get("resend") == "1",
                reset=reset and data.get("resend") != "1",
                dropped=dropped,
                csrf_token=data.get("csrfmiddlewaretoken"),
            )
        )

    def typing_throttle(self) -> TokenBucket:
        """Made with the socket's first typing marker (a reader who never types holds none)."""
        if getattr(self, "typing_bucket", None) is None:
            self.typing_bucket = TokenBucket(burst=TYPING_BURST, rate=TYPING_RATE)
        return self.typing_bucket

    def save_sync(self, draft: services.Draft) -> services.Posted:
        user = post_auth.current_user(self.scope)  # the session still holds (else SignedOut)
        if self.room is None or self.room.pk is None:
            self.room = selectors.room_get(name=self.room_name)
        posted = services.message_save(room=self.room, author=user, draft=draft, ip=self.client_ip)
        self.room = posted.message.room  # saved now, if this was the room's first message
        return posted

    async def sync(self, *, cursor: int) -> None:
        """The page says where it is (on every open). Once per socket: it never gets the same history twice."""
        if self.seq is not None or self.joined_at is None:  # caught up already, or refused
            return
        known = await catch_up.rooms.latest(self.room_name, joined_at=self.joined_at)
        if cursor >= known:
            self.seq = known  # up to date: nothing to send
            unread.positions.advanced(self)
            return
        await self.catch_up(cursor=cursor)

    async def catch_up(self, *, cursor: int, at_least: int = 0) -> None:
        """Send what comes after `cursor`, in order, and move this socket's position there. `at_least`: the seq
        of a change this socket has been told of (a gap, a resync), which what it sends must include."""
        result = await catch_up.rooms.catch_up(
            self.room_name, cursor=cursor, zone_name=self.zone_name, joined_at=self.joined_at, at_least=at_least
        )
        for frame in result.frames:
            # Each frame once the peer has taken nearly all of the one before: a slow reader is paced, not dropped.
            await backpressure.drained(self.scope, below=catch_up.PACE_BYTES)
            await self.send(text_data=frame)
        self.seq = max(self.seq or 0, result.seq)
        unread.positions.advanced(self)

    async def chat_message(self, event: dict[str, Any]) -> None:
        """A new message for the room. Seqs go 1, 2, 3… per room: one shown already is skipped,
        and a gap means a broadcast was lost, so what is missing comes from the database."""
        layer_watch.watch.busy()
        # Its author is no longer typing: the page's #typing goes in the message's own frame.
        typing = typing_notices.typists.message_arrived(self, event)
        seq = event["seq"]
        catch_up.rooms.advance(self.room_name, seq)
        if self.seq is None or seq <= self.seq or seq > self.seq + 1:
            if typing:
                await self.send(text_data=typing)
            if self.seq is not None and seq > self.seq + 1:
                await self.catch_up(cursor=self.seq, at_least=seq)
            return
        self.seq = seq
        unread.positions.advanced(self)
        await self.send(text_data=fragments.message_appended(event=event, zone_name=self.zone_name) + typing)

    async def sign_out(self, *, removed: bool = False) -> None:
        """Show the page it is signed out (or its account removed), then close with a code htmx does not retry."""
        await self.send(text_data=fragments.signed_out(room_name=self.room_name, removed=removed))
        await self.close(code=CLOSE_SIGNED_OUT)

    async def room_access(self, event: dict[str, Any]) -> None:
        """The room's members changed (for this socket's user, or for everyone): close if it may no longer read it."""
        user = self.scope.get("user")
        concerned = event.get("user") is None or (user is not None and user.pk == event["user"])
        if concerned and await access.room_for_socket(self.room_name, user=user, fresh=True) is None:
            await self.room_closed()

    async def room_closed(self) -> None:
        """Show the page it may no longer read the room, then close with a code htmx does not retry."""
        await self.send(text_data=fragments.room_closed())
        await self.close(code=CLOSE_BAD_ROOM)

    async def chat_resync(self, event: dict[str, Any]) -> None:
        """The room is ahead of this socket (the layer is back after an outage, or a lost broadcast that
        nothing followed): rejoin if needed, and catch up if this page is behind."""
        if not self.joined:
            self.joined = await self.join()
            if self.joined:  # only changes broadcast from now on reach it: shared reads must be newer
                self.joined_at = time.monotonic()
        if self.seq is not None and self.seq < event["seq"]:
            await self.catch_up(cursor=self.seq, at_least=event["seq"])


def parse_frame(text_data: str | None) -> tuple[dict[str, Any], str | None]:
    """htmx sends a JSON object of the form's fields (plus HEADERS); refuse anything else."""
    if text_data is None:
        return {}, "Send text frames."
    if len(text_data) > MAX_FRAME_CHARS:
        return {}, "That message is far too long."
    try:
        data = json.loads(text_data)
    except (ValueError, RecursionError):  # RecursionError: deeply nested arrays or objects
        return {}, UNREADABLE
    if not isinstance(data, dict) or not all(readable(v) for k, v in data.items() if k != "HEADERS"):
        return {}, UNREADABLE
    return data, None


def unsent_post(data: dict[str, Any]) -> tuple[str, str] | None:
    """The form token and text of a refused post, if the frame is one (the token names its "Send again" form)."""
    body, token = data.get("message"), data.get("token")
    if not isinstance(body, str) or not body.strip() or len(body) > MESSAGE_BODY_MAX_LENGTH:
        return None
    try:
        return str(UUID(str(token))), body
    except ValueError:
        return None


def readable(value: Any) -> bool:
    """A field value: a string that is valid Unicode (JSON's \\ud800 escapes make lone surrogates,
    which no database, hash or template can encode)."""
    if not isinstance(value, str):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def parse_cursor(value: str) -> int:
    """The page's cursor; anything unreadable counts as "shows nothing yet"."""
    try:
        return max(int(value or 0), 0)
    except ValueError:
        return 0
