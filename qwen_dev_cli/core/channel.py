"""A one-producer, one-consumer hand-off between tasks, cheaper than ``asyncio.Queue``.

A stream's events cross from the task running the request to the consumer's task, one
per token; ``asyncio.Queue`` costs a coroutine per ``put`` and bookkeeping for
``join()`` that nobody uses. It is unbounded: what it can hold is one answer, which the
provider holds in full anyway.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class Channel(Generic[T]):
    def __init__(self) -> None:
        self._items: deque[T] = deque()
        self._waiter: asyncio.Future[None] | None = None

    def put(self, item: T) -> None:
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    async def get(self) -> T:
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        return self._items.popleft()
