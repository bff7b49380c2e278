"""When the lobby must be read again: a change notifies, nothing is re-read on a timer.

What a lobby shows changes only when something happens: a message is posted, edited or deleted
(services.change_broadcast), people come or go (presence's tick), a reader's read marks move (the
unread flush, a room page opened) or a mention is dismissed, a private room's members change. Each of
these calls `send()` (or `send_on_commit()` from synchronous code). It marks this process's lobby
stale and, on a layer shared by several processes, tells the others through the group LOBBY_GROUP,
in which each process listens with one channel while it has lobby sockets. The lobby's job
(chat/realtime/lobby.py) runs while the lobby is stale: at most one read a second, however many
changes, and none while nothing happens.

A notice is one group message (a PUBLISH on Redis pub/sub) per change: a post costs its broadcast and
this. A lost notice leaves a lobby out of date until the next change; a socket that connects always
gets the list as of then.
"""

import asyncio
import logging
from typing import Any
from uuid import uuid4

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.db import transaction

from chat.realtime.group_listener import GroupListener
from chat.realtime.loops import PerLoop
from chat.realtime.scheduler import scheduler

logger = logging.getLogger(__name__)

JOB = "lobby"
LOBBY_GROUP = "lobby"
SEND_TIMEOUT = 2.0
ORIGIN = uuid4().hex  # tells this process's own notices apart


class Staleness:
    """Whether this process's lobby sockets may show an old list."""

    def __init__(self) -> None:
        self.stale = True

    def mark(self) -> None:
        """The lobby changed: read it again on the lobby job's next tick."""
        self.stale = True
        scheduler.wake(JOB)

    def take(self) -> bool:
        """Whether a read is due (and it is then no longer)."""
        stale, self.stale = self.stale, False
        return stale

    def reset(self) -> None:
        self.__init__()


staleness = Staleness()


def shared() -> bool:
    """Whether other processes have lobbies to tell (the in-memory layer serves one process)."""
    return not isinstance(get_channel_layer(), InMemoryChannelLayer)


async def send() -> None:
    """Something a lobby shows changed: read it again here, and tell the other processes (one group message,
    whatever their number). Never fails."""
    staleness.mark()
    if not shared():
        return
    try:
        await asyncio.wait_for(
            get_channel_layer().group_send(LOBBY_GROUP, {"type": "lobby.changed", "origin": ORIGIN}), SEND_TIMEOUT
        )
    except Exception as exc:  # the other processes' lobbies catch up with the next change
        logger.info("telling the other processes' lobbies failed: %r", exc)


def send_on_commit() -> None:
    """For synchronous callers (views, services): `send()` once the transaction has committed."""
    transaction.on_commit(lambda: async_to_sync(send)())


class Listener(GroupListener):
    """One event loop's channel in LOBBY_GROUP, open while the loop has lobby sockets (shared layers only)."""

    group = LOBBY_GROUP
    name = "lobby notices"

    def wanted(self) -> bool:
        return shared()

    async def handle(self, layer: Any, event: dict[str, Any]) -> None:
        if event.get("origin") != ORIGIN:
            staleness.mark()

    def joined(self) -> None:
        # Joined: what changed while this process was not listening shows on the next tick.
        staleness.mark()


_listeners = PerLoop(Listener)


class LobbyFollower:
    """Follows the registry's lobby sockets: a new one needs the list; the listener runs while there are any."""

    def joined(self, socket: Any) -> None:
        _listeners.get().follow()
        staleness.mark()

    def left(self, socket: Any) -> None:
        _listeners.get().unfollow()

    def reset(self) -> None:
        for made in _listeners.all():
            if made.task is not None:
                made.task.cancel()
        _listeners.clear()
        staleness.reset()


follower = LobbyFollower()
