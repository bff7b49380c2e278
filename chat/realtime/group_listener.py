"""One event loop's channel in a channel-layer group, open while the loop has sockets that need it.

The session notices (chat/realtime/session_notices.py) and the lobby notices
(chat/realtime/lobby_notices.py) each listen this way: a subclass names its `group` and says what an event
does (`handle`) and what joining means (`joined`). The channel joins its group again every
REJOIN_INTERVAL (the list-based Redis layer ends group memberships after a day), and every layer call is
retried after RETRY_INTERVAL while the layer is down.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)

REJOIN_INTERVAL = 3600.0
RETRY_INTERVAL = 5.0


async def retrying(doing: str, call: Callable[..., Awaitable[Any]], *args: Any) -> Any:
    """`call(*args)`, tried again every RETRY_INTERVAL while the layer is down."""
    while True:
        try:
            return await call(*args)
        except Exception as exc:
            logger.warning("%s failed, retrying: %r", doing, exc)
            await asyncio.sleep(RETRY_INTERVAL)


class GroupListener:
    """Counts the sockets that follow it; listens while there is one (and `wanted()`), stops with the last."""

    group: str
    name: str  # what it listens for, in its task's name and the logs: "session notices"

    def __init__(self) -> None:
        self.sockets = 0
        self.task: asyncio.Task | None = None

    def wanted(self) -> bool:
        """Whether a channel is worth opening at all (e.g. only on a layer other processes share)."""
        return True

    def follow(self) -> None:
        self.sockets += 1
        if self.wanted() and (self.task is None or self.task.done()):
            self.task = asyncio.get_running_loop().create_task(self.listen(), name=self.name)

    def unfollow(self) -> None:
        self.sockets = max(self.sockets - 1, 0)
        if not self.sockets and self.task is not None:
            self.task.cancel()
            self.task = None

    async def handle(self, layer: Any, event: dict[str, Any]) -> None:
        raise NotImplementedError

    def joined(self) -> None:
        """The channel is in the group (again): what it may have missed meanwhile is for the subclass."""

    async def listen(self) -> None:
        layer = get_channel_layer()
        channel = await retrying(f"opening the {self.name}' channel", layer.new_channel)
        member = asyncio.ensure_future(self.stay_in_group(layer, channel))
        try:
            while True:
                await self.handle(layer, await retrying(f"receiving {self.name}", layer.receive, channel))
        finally:
            member.cancel()
            try:
                await layer.group_discard(self.group, channel)
            except Exception as exc:
                logger.info("leaving %s failed: %r", self.group, exc)

    async def stay_in_group(self, layer: Any, channel: str) -> None:
        while True:
            await retrying(f"joining {self.group}", layer.group_add, self.group, channel)
            self.joined()
            await asyncio.sleep(REJOIN_INTERVAL)
