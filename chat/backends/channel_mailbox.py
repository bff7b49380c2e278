"""One channel's waiting messages: the part of asyncio.Queue a channel layer uses, in a fraction of its memory.

Every open socket has a channel in its process's layer, and Channels' in-memory layer and
channels-redis's pub/sub layer keep an asyncio.Queue per channel. An empty asyncio.Queue holds
four deques (its items, its getters, its putters and its Event's waiters) of 760 bytes each:
about 3 KiB per socket, as much as all of ours' own per-socket state. A Mailbox holds no deque
until a message arrives, drops it when emptied, and a waiting receiver costs one future.
Semantics as asyncio.Queue's: FIFO, an optional bound (QueueFull), a cancelled getter passes
its turn on.
"""

import asyncio
from collections import deque
from typing import Any


class Mailbox:
    __slots__ = ("_getters", "_items", "maxsize")

    def __init__(self, maxsize: int = 0) -> None:
        self.maxsize = maxsize
        self._items: deque | None = None
        self._getters: list[asyncio.Future] | None = None

    def qsize(self) -> int:
        return len(self._items) if self._items else 0

    def empty(self) -> bool:
        return not self._items

    def full(self) -> bool:
        return 0 < self.maxsize <= self.qsize()

    def first(self) -> Any:
        """The oldest item, left in place (QueueEmpty if there is none)."""
        if not self._items:
            raise asyncio.QueueEmpty
        return self._items[0]

    def put_nowait(self, item: Any) -> None:
        if self.full():
            raise asyncio.QueueFull
        if self._items is None:
            self._items = deque()
        self._items.append(item)
        self._wake_next()

    def get_nowait(self) -> Any:
        if not self._items:
            raise asyncio.QueueEmpty
        item = self._items.popleft()
        if not self._items:
            self._items = None
        return item

    async def get(self) -> Any:
        while not self._items:
            getter = asyncio.get_running_loop().create_future()
            if self._getters is None:
                self._getters = []
            self._getters.append(getter)
            try:
                await getter
            except BaseException:
                getter.cancel()
                if self._getters and getter in self._getters:
                    self._getters.remove(getter)
                if self._items and not getter.cancelled():  # woken, then cancelled: the next getter's turn
                    self._wake_next()
                raise
        return self.get_nowait()

    def _wake_next(self) -> None:
        while self._getters:
            getter = self._getters.pop(0)
            if not self._getters:
                self._getters = None
            if not getter.done():
                getter.set_result(None)
                return
