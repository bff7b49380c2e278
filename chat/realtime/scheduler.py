"""This process's periodic work: one scheduler, its jobs registered in ChatConfig.ready.

Each job (presence's tick, typing's, the lobby's, the unread flush, liveness, the layer probe) runs
in a task of its own on the event loop of the sockets it serves, so a slow one (a probe waiting on
a dead Redis) never holds up the others. A job runs every `interval` seconds while its `active()`
says there is work, and stops by itself when there is none; `wake()` (called by the registry on
every new socket, and by a concern that has new work) starts the jobs that have work again.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class Job:
    name: str
    interval: float
    tick: Callable[[], Awaitable[None]]
    active: Callable[[], bool]
    task: asyncio.Task | None = field(default=None, repr=False)

    def ensure_running(self) -> None:
        """Start the job in the running loop unless it runs there already."""
        loop = asyncio.get_running_loop()
        if self.task is None or self.task.done() or self.task.get_loop() is not loop:
            self.task = loop.create_task(self._run(), name=self.name)

    async def _run(self) -> None:
        while self.active():
            await asyncio.sleep(self.interval)
            try:
                await self.tick()
            except Exception:  # one bad tick (a Redis outage) must not end the job
                logger.exception("%s tick failed", self.name)

    def stop(self) -> None:
        # A task of a loop that has closed meanwhile (a test's) can no longer be cancelled, nor run.
        if self.task is not None and not self.task.done() and not self.task.get_loop().is_closed():
            self.task.cancel()
        self.task = None


class Scheduler:
    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}

    def every(
        self, interval: float, name: str, tick: Callable[[], Awaitable[None]], *, active: Callable[[], bool]
    ) -> Job:
        """Register a job (once per name: wiring twice changes nothing)."""
        if name not in self._jobs:
            self._jobs[name] = Job(name, interval, tick, active)
        return self._jobs[name]

    def job(self, name: str) -> Job:
        return self._jobs[name]

    def wake(self, name: str | None = None) -> None:
        """Start the jobs that have work (or just the one named) in the running loop."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # called from a thread without a loop (a view): the next socket wakes them
            return
        for job in [self._jobs[name]] if name else self._jobs.values():
            if job.active():
                job.ensure_running()

    def reset(self) -> None:
        """Stop every job (tests: each test has a loop of its own)."""
        for job in self._jobs.values():
            job.stop()


scheduler = Scheduler()
