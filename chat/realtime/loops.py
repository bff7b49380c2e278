"""One object per event loop, for what holds loop-bound state (futures, tasks, redis.asyncio connections).

Daphne runs one loop per process; each test has a loop of its own, and nothing made in one loop may
be used from another. Entries go with their loop (weak keys).
"""

import asyncio
import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class PerLoop(Generic[T]):
    def __init__(self, make: Callable[[], T]) -> None:
        self._make = make
        self._made: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, T] = weakref.WeakKeyDictionary()

    def get(self) -> T:
        """The running loop's, made on first use."""
        loop = asyncio.get_running_loop()
        made = self._made.get(loop)
        if made is None:
            made = self._made[loop] = self._make()
        return made

    def all(self) -> list[T]:
        """Every live loop's."""
        return list(self._made.values())

    def clear(self) -> None:
        """Forget every loop's (the settings they were made from changed)."""
        self._made.clear()
