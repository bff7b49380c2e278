"""A per-process background loop that runs while it has something to look after.

Presence, typing and the live lobby each keep one of these: started by the first
socket that needs it (in that socket's event loop), it calls its tick every
`interval` seconds and stops by itself once `active()` says there is nothing left.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable

logger = logging.getLogger(__name__)


class Periodic:
    def __init__(self, name: str, interval: float, tick: Callable[[], Awaitable[None]], active: Callable[[], bool]):
        self.name, self.interval, self.tick, self.active = name, interval, tick, active
        self.task: asyncio.Task | None = None

    def ensure_running(self) -> None:
        loop = asyncio.get_running_loop()
        if self.task is None or self.task.done() or self.task.get_loop() is not loop:
            self.task = loop.create_task(self._run(), name=self.name)

    async def _run(self) -> None:
        while self.active():
            await asyncio.sleep(self.interval)
            try:
                await self.tick()
            except Exception:  # one bad tick (a Redis outage) must not end the loop
                logger.exception("%s tick failed", self.name)
