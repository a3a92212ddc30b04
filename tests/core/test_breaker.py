"""Circuit breaker: every transition, permits from past states, listeners and counters."""

from __future__ import annotations

import asyncio

import pytest

from qwen_dev_cli.core.breaker import BreakerState, CircuitBreaker, Permit
from qwen_dev_cli.core.errors import CircuitOpenError

from .fakes import FakeClock, settle

CLOSED, OPEN, HALF_OPEN = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN
Transition = tuple[str, BreakerState, BreakerState]


def make(
    clock: FakeClock, threshold: int = 3, recovery: float = 30.0, trials: int = 2
) -> tuple[CircuitBreaker, list[Transition]]:
    seen: list[Transition] = []
    breaker = CircuitBreaker(
        threshold,
        recovery,
        trials,
        name="hf",
        clock=clock,
        on_transition=lambda *t: seen.append(t),
    )
    return breaker, seen


def fail(breaker: CircuitBreaker, times: int = 1) -> None:
    for _ in range(times):
        breaker.acquire().failure()


def open_breaker(breaker: CircuitBreaker) -> None:
    fail(breaker, breaker.failure_threshold)
    assert breaker.state is OPEN


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=1000.0)


# --- CLOSED --------------------------------------------------------------------------


def test_new_breaker_is_closed_and_lets_calls_through(clock: FakeClock) -> None:
    breaker, _ = make(clock)
    assert breaker.state is CLOSED
    assert breaker.available()
    assert breaker.retry_in() == 0.0
    breaker.acquire().success()


def test_opens_exactly_at_failure_threshold(clock: FakeClock) -> None:
    breaker, _ = make(clock, threshold=3)
    fail(breaker, 2)
    assert breaker.state is CLOSED
    fail(breaker)
    assert breaker.state is OPEN


def test_success_resets_consecutive_failures(clock: FakeClock) -> None:
    breaker, _ = make(clock, threshold=3)
    fail(breaker, 2)
    breaker.acquire().success()
    fail(breaker, 2)
    assert breaker.state is CLOSED
    assert breaker.consecutive_failures == 2


def test_neutral_outcomes_neither_count_nor_reset(clock: FakeClock) -> None:
    breaker, _ = make(clock, threshold=3)
    fail(breaker, 2)
    for _ in range(10):
        breaker.acquire().neutral()  # 4xx, rate limits, cancellations
    assert breaker.state is CLOSED
    fail(breaker)
    assert breaker.state is OPEN


def test_a_permit_reports_only_once(clock: FakeClock) -> None:
    breaker, _ = make(clock, threshold=2)
    permit = breaker.acquire()
    permit.failure()
    permit.failure()
    assert breaker.state is CLOSED


# --- OPEN ----------------------------------------------------------------------------


def test_open_refuses_with_time_until_trial(clock: FakeClock) -> None:
    breaker, _ = make(clock, recovery=30.0)
    open_breaker(breaker)
    clock.advance(10.0)
    assert not breaker.available()
    with pytest.raises(CircuitOpenError) as refused:
        breaker.acquire()
    assert refused.value.retry_in == pytest.approx(20.0)
    assert refused.value.provider == "hf"
    assert breaker.retry_in() == pytest.approx(20.0)


def test_open_refusals_make_no_call_and_are_counted(clock: FakeClock) -> None:
    breaker, _ = make(clock)
    open_breaker(breaker)
    calls = 0
    for _ in range(4):
        try:
            breaker.acquire()
            calls += 1  # the network call would go here
        except CircuitOpenError:
            pass
    assert calls == 0
    assert breaker.blocked == 4


def test_open_becomes_half_open_after_recovery_timeout(clock: FakeClock) -> None:
    breaker, _ = make(clock, recovery=30.0)
    open_breaker(breaker)
    clock.advance(29.5)
    assert breaker.state is OPEN
    clock.advance(0.5)
    assert breaker.state is HALF_OPEN
    assert breaker.available()


# --- HALF_OPEN -----------------------------------------------------------------------


def half_open(clock: FakeClock, trials: int = 2) -> tuple[CircuitBreaker, list[Transition]]:
    breaker, seen = make(clock, recovery=30.0, trials=trials)
    open_breaker(breaker)
    clock.advance(30.0)
    assert breaker.state is HALF_OPEN
    return breaker, seen


def test_half_open_admits_at_most_max_trials_in_flight(clock: FakeClock) -> None:
    breaker, _ = half_open(clock, trials=2)
    first, _second = breaker.acquire(), breaker.acquire()
    assert not breaker.available()
    with pytest.raises(CircuitOpenError) as refused:
        breaker.acquire()
    assert refused.value.retry_in == 0.0
    first.success()
    breaker.acquire()  # a finished trial frees its place


def test_half_open_failure_reopens_and_restarts_timer(clock: FakeClock) -> None:
    breaker, _ = half_open(clock)
    clock.advance(5.0)
    breaker.acquire().failure()
    assert breaker.state is OPEN
    assert breaker.retry_in() == pytest.approx(30.0)
    clock.advance(29.0)
    assert breaker.state is OPEN
    clock.advance(1.0)
    assert breaker.state is HALF_OPEN


def test_half_open_closes_after_max_trials_successes(clock: FakeClock) -> None:
    breaker, _ = half_open(clock, trials=3)
    breaker.acquire().success()
    breaker.acquire().success()
    assert breaker.state is HALF_OPEN
    breaker.acquire().success()
    assert breaker.state is CLOSED
    assert breaker.consecutive_failures == 0


def test_neutral_trial_frees_its_place_without_counting(clock: FakeClock) -> None:
    breaker, _ = half_open(clock, trials=2)
    breaker.acquire().neutral()
    breaker.acquire().neutral()
    breaker.acquire().success()
    assert breaker.state is HALF_OPEN
    breaker.acquire().success()
    assert breaker.state is CLOSED


def test_closed_after_recovery_needs_threshold_failures_again(clock: FakeClock) -> None:
    breaker, _ = half_open(clock, trials=1)
    breaker.acquire().success()
    fail(breaker, breaker.failure_threshold - 1)
    assert breaker.state is CLOSED


# --- permits from a past state -------------------------------------------------------


def test_stale_success_does_not_close_an_open_breaker(clock: FakeClock) -> None:
    breaker, _ = make(clock)
    slow = breaker.acquire()
    open_breaker(breaker)
    slow.success()
    assert breaker.state is OPEN


def test_stale_failures_do_not_count_after_reset(clock: FakeClock) -> None:
    breaker, _ = make(clock, threshold=2)
    slow = [breaker.acquire() for _ in range(2)]
    breaker.reset()
    for permit in slow:
        permit.failure()
    assert breaker.state is CLOSED
    assert breaker.consecutive_failures == 0


def test_stale_trial_permit_does_not_touch_the_next_half_open(clock: FakeClock) -> None:
    breaker, _ = half_open(clock, trials=2)
    old_trial = breaker.acquire()
    breaker.acquire().failure()  # re-opens
    clock.advance(30.0)
    assert breaker.state is HALF_OPEN
    new = [breaker.acquire(), breaker.acquire()]
    old_trial.success()  # must neither free a place nor count as a success
    assert not breaker.available()
    assert breaker.state is HALF_OPEN
    for permit in new:
        permit.success()
    assert breaker.state is CLOSED


# --- listeners, counters, reset ------------------------------------------------------


def test_listener_sees_every_transition_and_counter_matches(clock: FakeClock) -> None:
    breaker, seen = make(clock, trials=1)
    also: list[Transition] = []
    breaker.add_listener(lambda *t: also.append(t))
    open_breaker(breaker)
    clock.advance(30.0)
    breaker.acquire().failure()
    clock.advance(30.0)
    breaker.acquire().success()
    assert seen == [
        ("hf", CLOSED, OPEN),
        ("hf", OPEN, HALF_OPEN),
        ("hf", HALF_OPEN, OPEN),
        ("hf", OPEN, HALF_OPEN),
        ("hf", HALF_OPEN, CLOSED),
    ]
    assert also == seen
    assert breaker.transitions == 5


def test_reset_closes_an_open_breaker(clock: FakeClock) -> None:
    breaker, seen = make(clock)
    open_breaker(breaker)
    breaker.reset()
    assert breaker.state is CLOSED
    assert seen[-1] == ("hf", OPEN, CLOSED)
    breaker.acquire().success()


def test_reset_of_closed_breaker_forgets_failures_silently(clock: FakeClock) -> None:
    breaker, seen = make(clock, threshold=3)
    fail(breaker, 2)
    breaker.reset()
    fail(breaker, 2)
    assert breaker.state is CLOSED
    assert seen == []
    assert breaker.transitions == 0


@pytest.mark.parametrize(
    ("threshold", "recovery", "trials"), [(0, 30.0, 1), (1, -1.0, 1), (1, 30.0, 0)]
)
def test_nonsense_settings_are_refused(threshold: int, recovery: float, trials: int) -> None:
    with pytest.raises(ValueError, match="must be"):
        CircuitBreaker(threshold, recovery, trials)


# --- real tasks ----------------------------------------------------------------------


async def test_concurrent_trials_beyond_the_limit_are_refused(clock: FakeClock) -> None:
    breaker, seen = half_open(clock, trials=2)
    gate = asyncio.Event()
    outcomes: list[str] = []

    async def trial() -> None:
        try:
            permit = breaker.acquire()
        except CircuitOpenError:
            outcomes.append("refused")
            return
        outcomes.append("admitted")
        await gate.wait()
        permit.success()

    tasks = [asyncio.create_task(trial()) for _ in range(5)]
    await settle()
    assert sorted(outcomes) == ["admitted"] * 2 + ["refused"] * 3
    assert breaker.state is HALF_OPEN
    gate.set()
    await asyncio.gather(*tasks)
    assert breaker.state is CLOSED
    assert seen[-1] == ("hf", HALF_OPEN, CLOSED)


async def test_trial_failure_reopens_while_others_are_in_flight(clock: FakeClock) -> None:
    breaker, _ = half_open(clock, trials=3)
    gate = asyncio.Event()

    async def trial(ok: bool) -> None:
        permit = breaker.acquire()
        await gate.wait()
        if ok:
            permit.success()
        else:
            permit.failure()

    tasks = [asyncio.create_task(trial(ok)) for ok in (False, True, True)]
    await settle()
    gate.set()
    await asyncio.gather(*tasks)
    # The two late successes come from the half-open state that is gone.
    assert breaker.state is OPEN
    assert breaker.retry_in() == pytest.approx(30.0)


async def test_burst_of_concurrent_failures_opens_once(clock: FakeClock) -> None:
    breaker, seen = make(clock, threshold=3)
    gate = asyncio.Event()
    permits: list[Permit] = []

    async def call() -> None:
        permit = breaker.acquire()
        permits.append(permit)
        await gate.wait()
        permit.failure()

    tasks = [asyncio.create_task(call()) for _ in range(10)]
    await settle()
    assert len(permits) == 10  # CLOSED does not limit concurrency
    gate.set()
    await asyncio.gather(*tasks)
    assert breaker.state is OPEN
    assert seen == [("hf", CLOSED, OPEN)]
    assert breaker.transitions == 1
