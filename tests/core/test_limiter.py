"""Rate limiter: the sliding minute holds for requests and tokens, the queue is FIFO,
server headers tighten it, and a cancelled waiter does not jam it."""

from __future__ import annotations

import asyncio
import contextlib
import random

import pytest

from qwen_dev_cli.core.errors import RequestTooLarge
from qwen_dev_cli.core.limiter import RateLimiter, Reservation
from qwen_dev_cli.core.types import RateLimitHeaders

from .fakes import FakeClock, ManualClock, settle

WINDOW = 60.0


def limiter_on(
    clock: FakeClock | ManualClock, rpm: int | None = None, tpm: int | None = None
) -> RateLimiter:
    return RateLimiter(rpm, tpm, clock=clock, sleep=clock.sleep, name="hf")


def assert_every_window_within_budget(
    admissions: list[tuple[float, int]], rpm: int, tpm: int
) -> None:
    """In each window starting at an admission, no more than rpm requests and tpm tokens."""
    for start, _ in admissions:
        inside = [tokens for at, tokens in admissions if start <= at < start + WINDOW]
        assert len(inside) <= rpm, start
        assert sum(inside) <= tpm, start


# --- the sliding window under load ---------------------------------------------------


async def test_200_concurrent_requests_stay_within_rpm_tpm_and_fifo() -> None:
    clock = FakeClock()
    limiter = limiter_on(clock, rpm=20, tpm=1000)
    rng = random.Random(42)
    admitted: list[tuple[int, Reservation]] = []
    halfway = asyncio.Event()

    async def request(index: int, tokens: int) -> None:
        admitted.append((index, await limiter.acquire(tokens)))
        if len(admitted) == 50:
            halfway.set()

    first = [asyncio.create_task(request(i, rng.randint(1, 400))) for i in range(120)]
    await halfway.wait()
    assert limiter.waiting > 0  # the second wave arrives behind a queue
    second = [asyncio.create_task(request(i, rng.randint(1, 400))) for i in range(120, 200)]
    await asyncio.gather(*first, *second)

    assert [index for index, _ in admitted] == list(range(200))
    admissions = [(r.at, r.tokens) for _, r in admitted]
    assert_every_window_within_budget(admissions, rpm=20, tpm=1000)
    # No needless waiting: whoever waited got in the moment an earlier one left the window.
    times = {at for at, _ in admissions}
    for _, reservation in admitted:
        if reservation.waited > 0:
            assert reservation.at - WINDOW in times
    assert limiter.waiting == 0


async def test_rpm_admits_in_bursts_of_rpm_per_window() -> None:
    clock = FakeClock()
    limiter = limiter_on(clock, rpm=3)
    times = [(await limiter.acquire(1)).at for _ in range(7)]
    assert times == [0.0, 0.0, 0.0, 60.0, 60.0, 60.0, 120.0]
    assert limiter.waits == 2


async def test_a_waiting_big_request_is_not_overtaken_by_a_small_one() -> None:
    clock = FakeClock()
    limiter = limiter_on(clock, tpm=100)
    await limiter.acquire(60)
    big = asyncio.create_task(limiter.acquire(60))
    small = asyncio.create_task(limiter.acquire(10))  # would fit now, but arrived later
    big_at, small_at = (r.at for r in await asyncio.gather(big, small))
    assert big_at == 60.0
    assert small_at >= big_at


async def test_request_gets_in_once_just_enough_tokens_have_left() -> None:
    clock = FakeClock()
    limiter = limiter_on(clock, tpm=100)
    await limiter.acquire(60)
    clock.advance(30.0)
    await limiter.acquire(40)
    # 60 must leave: the first reservation alone frees exactly enough, at t=60.
    assert (await limiter.acquire(60)).at == 60.0


async def test_waited_reports_time_in_queue() -> None:
    clock = FakeClock()
    limiter = limiter_on(clock, rpm=1)
    assert (await limiter.acquire(1)).waited == 0.0
    assert (await limiter.acquire(1)).waited == 60.0


# --- requests that can never fit -----------------------------------------------------


async def test_request_bigger_than_tpm_fails_at_once() -> None:
    clock = FakeClock()
    limiter = limiter_on(clock, tpm=1000)
    with pytest.raises(RequestTooLarge, match="1001 tokens") as refused:
        await limiter.acquire(1001)
    assert refused.value.provider == "hf"
    assert clock.sleeps == []
    assert (await limiter.acquire(1000)).at == 0.0  # the whole budget is fine


async def test_request_bigger_than_tpm_fails_at_once_even_behind_a_queue() -> None:
    clock = ManualClock()
    limiter = limiter_on(clock, rpm=1, tpm=1000)
    await limiter.acquire(1)
    queued = asyncio.create_task(limiter.acquire(1))
    await settle()
    with pytest.raises(RequestTooLarge):
        await limiter.acquire(5000)
    queued.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await queued


# --- reconcile -----------------------------------------------------------------------


async def test_unreconciled_estimate_holds_the_budget() -> None:
    clock = FakeClock()
    limiter = limiter_on(clock, tpm=100)
    await limiter.acquire(80)
    assert (await limiter.acquire(80)).at == 60.0


async def test_reconcile_lower_lets_the_next_request_in_sooner() -> None:
    clock = FakeClock()
    limiter = limiter_on(clock, tpm=100)
    (await limiter.acquire(80)).reconcile(10)
    assert (await limiter.acquire(80)).at == 0.0
    assert clock.sleeps == []


async def test_reconcile_higher_makes_the_next_request_wait() -> None:
    clock = FakeClock()
    limiter = limiter_on(clock, tpm=100)
    (await limiter.acquire(30)).reconcile(90)
    assert limiter.remaining() == (None, 10)
    assert (await limiter.acquire(50)).at == 60.0


async def test_reconcile_after_leaving_the_window_changes_nothing() -> None:
    clock = FakeClock()
    limiter = limiter_on(clock, tpm=100)
    reservation = await limiter.acquire(50)
    clock.advance(WINDOW)
    assert limiter.remaining() == (None, 100)
    reservation.reconcile(99)
    assert limiter.remaining() == (None, 100)


# --- what the server says ------------------------------------------------------------


async def test_no_requests_left_holds_requests_until_reset() -> None:
    clock = FakeClock()
    limiter = limiter_on(clock, rpm=50, tpm=10_000)
    limiter.observe(RateLimitHeaders(remaining_requests=0, reset_requests=5.0))
    assert (await limiter.acquire(10)).at == 5.0
    assert (await limiter.acquire(10)).at == 5.0  # after the reset, the local budget rules


async def test_few_tokens_left_holds_bigger_requests_until_reset() -> None:
    clock = FakeClock()
    limiter = limiter_on(clock, rpm=50, tpm=10_000)
    limiter.observe(RateLimitHeaders(remaining_tokens=100, reset_tokens=20.0))
    assert (await limiter.acquire(60)).at == 0.0
    assert (await limiter.acquire(60)).at == 20.0  # only 40 were left


async def test_server_cap_without_reset_time_holds_for_one_window() -> None:
    clock = FakeClock()
    limiter = limiter_on(clock, rpm=50)
    limiter.observe(RateLimitHeaders(remaining_requests=0))
    assert (await limiter.acquire(1)).at == 60.0


async def test_server_remaining_counts_even_without_local_budget() -> None:
    clock = FakeClock()
    limiter = limiter_on(clock, rpm=None, tpm=None)
    limiter.observe(RateLimitHeaders(remaining_requests=2))
    assert limiter.remaining() == (2, None)
    await limiter.acquire(1)
    await limiter.acquire(1)
    assert (await limiter.acquire(1)).at == 60.0


def test_zero_budget_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        RateLimiter(requests_per_minute=0)
    with pytest.raises(ValueError, match="at least 1"):
        RateLimiter(tokens_per_minute=0)


async def test_reconciling_down_wakes_the_waiting_request_early() -> None:
    clock = ManualClock()
    limiter = RateLimiter(None, 1000, clock=clock, sleep=clock.sleep)
    first = await limiter.acquire(900)
    waiter = asyncio.create_task(limiter.acquire(500))
    await settle()
    assert not waiter.done()
    first.reconcile(100)  # the answer was short: 800 tokens come back
    await settle()
    assert waiter.done()
    assert waiter.result().at == 0.0


async def test_server_cap_applies_to_an_otherwise_unlimited_limiter() -> None:
    clock = FakeClock()
    limiter = limiter_on(clock)
    limiter.observe(RateLimitHeaders(remaining_requests=0, reset_requests=3.0))
    assert limiter.remaining() == (0, None)
    assert (await limiter.acquire(1)).at == 3.0


# --- remaining -----------------------------------------------------------------------


async def test_remaining_counts_down_and_recovers_after_the_window() -> None:
    clock = FakeClock()
    limiter = limiter_on(clock, rpm=5, tpm=1000)
    assert limiter.remaining() == (5, 1000)
    await limiter.acquire(100)
    clock.advance(30.0)
    await limiter.acquire(200)
    assert limiter.remaining() == (3, 700)
    clock.advance(30.0)
    assert limiter.remaining() == (4, 800)
    clock.advance(30.0)
    assert limiter.remaining() == (5, 1000)


async def test_remaining_reports_the_tighter_of_local_and_server() -> None:
    clock = FakeClock()
    limiter = limiter_on(clock, rpm=50, tpm=1000)
    limiter.observe(
        RateLimitHeaders(
            remaining_requests=2, remaining_tokens=5000, reset_requests=10.0, reset_tokens=10.0
        )
    )
    assert limiter.remaining() == (2, 1000)
    clock.advance(10.0)
    assert limiter.remaining() == (50, 1000)


# --- cancellation --------------------------------------------------------------------


async def test_cancelling_the_sleeping_head_lets_the_next_waiter_in() -> None:
    clock = ManualClock()
    limiter = limiter_on(clock, rpm=1)
    await limiter.acquire(1)
    head = asyncio.create_task(limiter.acquire(1))
    behind = asyncio.create_task(limiter.acquire(1))
    await settle()
    assert limiter.waiting == 2
    head.cancel()
    await settle()
    assert not behind.done()
    await clock.advance(WINDOW)
    assert behind.done()
    assert behind.result().at == WINDOW
    assert limiter.waiting == 0


async def test_cancelling_a_waiter_in_the_middle_keeps_the_queue_moving() -> None:
    clock = ManualClock()
    limiter = limiter_on(clock, rpm=1)
    await limiter.acquire(1)
    waiters = [asyncio.create_task(limiter.acquire(1)) for _ in range(3)]
    await settle()
    waiters[1].cancel()
    await clock.advance(WINDOW)
    assert waiters[0].done()
    assert not waiters[2].done()
    await clock.advance(WINDOW)
    assert waiters[2].result().at == 2 * WINDOW
    assert limiter.waiting == 0


# --- unlimited -----------------------------------------------------------------------


async def test_no_limits_never_waits() -> None:
    clock = FakeClock()
    limiter = limiter_on(clock)
    assert not limiter.limited
    for _ in range(500):
        await limiter.acquire(1_000_000)
    assert clock.sleeps == []
    assert limiter.remaining() == (None, None)


async def test_rpm_only_ignores_token_sizes() -> None:
    clock = FakeClock()
    limiter = limiter_on(clock, rpm=2)
    assert [(await limiter.acquire(10**9)).at for _ in range(3)] == [0.0, 0.0, 60.0]


async def test_tpm_only_ignores_request_count() -> None:
    clock = FakeClock()
    limiter = limiter_on(clock, tpm=100)
    times = [(await limiter.acquire(1)).at for _ in range(150)]
    assert times.count(0.0) == 100
    assert set(times[100:]) == {60.0}
