"""The watchdog's cancellation is a timeout only when it is the only one: a user's
Ctrl-C (or an interrupt) that lands at the same moment stays a cancellation (review
finding: it was taken back with the watchdog's, and the call failed over instead)."""

from __future__ import annotations

import asyncio

from qwen_dev_cli.core.watchdog import Watchdog


async def test_a_silence_alone_is_a_timeout() -> None:
    with Watchdog(0.01) as dog:
        dog.waiting()
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            assert dog.expired()
        else:
            raise AssertionError("the watchdog did not fire")


async def test_a_cancel_landing_with_the_watchdogs_stays_a_cancel() -> None:
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    with Watchdog(0.01) as dog:
        dog.waiting()
        # The user's Ctrl-C, due at the very moment the watchdog fires (its own due time).
        loop.call_at(dog._since + dog.timeout, task.cancel)
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            assert task.cancelling() == 2  # both landed before this task resumed
            assert not dog.expired()
            assert task.cancelling() == 1  # still being cancelled: it propagates
            task.uncancel()  # (the test's own bookkeeping)
        else:
            raise AssertionError("the watchdog did not fire")
