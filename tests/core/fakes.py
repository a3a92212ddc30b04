"""Time for tests of the client's layers: it moves only when a test (or a sleeper) says so.

``FakeClock`` is for code where one task sleeps at a time (the limiter's queue head, a
retry loop): ``sleep`` jumps the clock forward at once. ``ManualClock`` is for tests
that need a sleeper caught mid-wait (to cancel it, or to see who is still queued):
``sleep`` blocks until the test calls ``advance``.
"""

from __future__ import annotations

import asyncio


class FakeClock:
    """Monotonic seconds that advance only through ``sleep`` or ``advance``.

    Args:
        start: the time it reads before anything moves it.
    """

    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        #: Every duration passed to ``sleep``, in order.
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(0.0, seconds)
        await asyncio.sleep(0)


class ManualClock:
    """Monotonic seconds moved only by ``advance``; ``sleep`` waits for it.

    Args:
        start: the time it reads before anything moves it.
    """

    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        self.sleeps: list[float] = []
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def __call__(self) -> float:
        return self.now

    @property
    def sleeping(self) -> int:
        """Sleepers still waiting for their deadline."""
        return sum(not fut.done() for _, fut in self._sleepers)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self.now + max(0.0, seconds), fut))
        await fut

    async def advance(self, seconds: float) -> None:
        """Move time on, wake every sleeper whose deadline has come, and let them run."""
        self.now += seconds
        for deadline, fut in self._sleepers:
            if deadline <= self.now and not fut.done():
                fut.set_result(None)
        self._sleepers = [(d, f) for d, f in self._sleepers if not f.done()]
        await settle()


async def settle(rounds: int = 20) -> None:
    """Let every ready task run until it blocks again."""
    for _ in range(rounds):
        await asyncio.sleep(0)
