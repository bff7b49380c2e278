"""Who is typing in a room: relayed between pages, never stored.

The compose input sends a marker frame while its user types, with no fields: htmx's `ws-send` on
the input with `hx-trigger="input changed throttle:2s"`, `hx-params="none"` and `"Chat-Typing": "1"`
in `hx-headers` (templates/chat/_compose_fields.html). The server drops the marker from anonymous
sockets and relays at most one per user and room every NOTICE_GAP (2) s, and one after each of
their messages, as a `chat.typing` group event. Each process keeps, in memory, who typed last when
in each of its rooms: a typist is shown for SHOWN_FOR seconds after their last notice, or until
their message arrives. Every TICK each process sends `#typing` to those of its sockets whose view
changed; it never names the socket's own user.

In a room with more than MAX_PEOPLE people here, nobody's typing is relayed, as in Zulip, whose help says
"Typing notifications are not shown in channels with more than 100 subscribers": in a crowd, "someone
is typing" before every message says nothing, and it costs a frame per person for each message (as
many frames as the messages themselves).
"""

import logging
import time
from typing import Any

from channels.layers import get_channel_layer

from chat import fragments
from chat.models import room_group_name
from chat.realtime import presence
from chat.realtime.registry import Entry, sockets
from chat.realtime.scheduler import scheduler

logger = logging.getLogger(__name__)

MARKER = "Chat-Typing"
NOTICE_GAP = 2.0
# A steady typist's notices come every ~2 s (one may be dropped by the gap, making 4 s): shown a little
# longer than that so it does not flicker, and gone within 6 s of the last keystroke.
SHOWN_FOR = 4.5
TICK = 0.5
JOB = "typing"
MAX_PEOPLE = 100  # people in the room's presence list


def is_notice(data: dict[str, Any]) -> bool:
    """A typing frame: htmx's headers carry the marker (and it has no fields)."""
    headers = data.get("HEADERS")
    return isinstance(headers, dict) and headers.get(MARKER) == "1"


class Typing:
    """This process's typists per room, and the pages' views of them."""

    def __init__(self) -> None:
        self.relayed: dict[tuple[str, str], float] = {}  # (room, username) → when its last notice was relayed
        self.typing: dict[str, dict[str, float]] = {}  # room → username → shown until (monotonic)

    async def notice(self, socket: Any) -> None:
        """A user is typing: tell the room, unless they are anonymous or told it within NOTICE_GAP."""
        user = socket.scope.get("user")
        if user is None or not user.is_authenticated:
            return
        if presence.tracker.people(socket.room_name) > MAX_PEOPLE:
            return
        key = (socket.room_name, user.get_username())
        now = time.monotonic()
        if now - self.relayed.get(key, float("-inf")) < NOTICE_GAP:
            return
        self.relayed[key] = now
        scheduler.wake(JOB)
        try:
            await get_channel_layer().group_send(
                room_group_name(socket.room_name), {"type": "chat.typing", "user": key[1]}
            )
        except Exception as exc:  # the next keystrokes try again
            logger.info("relaying typing in %s failed: %r", socket.room_name, exc)

    def heard(self, room_name: str, username: str) -> None:
        self.typing.setdefault(room_name, {})[username] = time.monotonic() + SHOWN_FOR
        scheduler.wake(JOB)

    def message_arrived(self, socket: Any, event: dict[str, Any]) -> str:
        """Their new message is here: they are no longer typing, and this page stops saying so at once. The
        `#typing` this page must show now, which goes in the message's own frame ("" if it shows it already)."""
        if event.get("kind", "post") != "post":
            return ""
        author = event["author"]
        room = self.typing.get(socket.room_name)
        if room is not None:
            room.pop(author, None)
        # What they type next is a new message: its first notice (the new input's first keystroke) goes through.
        self.relayed.pop((socket.room_name, author), None)
        entry = sockets.entry(socket.channel_name)
        if entry is not None and author in entry.typing_shown:
            return shown(entry, self.typists(socket.room_name))
        return ""

    def typists(self, room_name: str) -> set[str]:
        return set(self.typing.get(room_name, ()))

    def active(self) -> bool:
        return bool(self.typing or self.relayed)

    async def tick(self) -> None:
        now = time.monotonic()
        for key, at in list(self.relayed.items()):
            if now - at >= NOTICE_GAP:
                del self.relayed[key]
        for room_name, typing in list(self.typing.items()):
            for username, until in list(typing.items()):
                if until <= now:
                    del typing[username]
            for entry in sockets.in_room(room_name):
                await show(entry, set(typing))
            if not typing:
                del self.typing[room_name]

    def reset(self) -> None:
        self.relayed.clear()
        self.typing.clear()


async def show(entry: Entry, names: set[str]) -> None:
    """Send this socket the typists it does not show yet (never its own user)."""
    if frame := shown(entry, names):
        try:
            await entry.socket.send(text_data=frame)
        except Exception:  # closing meanwhile
            pass


def shown(entry: Entry, names: set[str]) -> str:
    """The `#typing` frame that makes this socket show these typists (never its own user), or "" if it does."""
    view = tuple(sorted(names - {entry.username}, key=str.casefold))
    if view == entry.typing_shown:
        return ""
    entry.typing_shown = view
    return fragments.typing_list(view)  # rendered once per process for each list


typists = Typing()


class TypingEvents:
    """The room consumer's handler for the `chat.typing` group event."""

    room_name: str

    async def chat_typing(self, event: dict[str, Any]) -> None:
        typists.heard(self.room_name, event["user"])
