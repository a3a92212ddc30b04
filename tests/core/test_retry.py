"""Retry policy: backoff schedule and jitter, the Retry-After floor, when to stop and
whether a failed round is worth another."""

from __future__ import annotations

import random

import pytest
from tenacity import AsyncRetrying, RetryCallState, Retrying

from qwen_dev_cli.core.errors import (
    AllProvidersFailed,
    AuthenticationError,
    BadRequestError,
    CircuitOpenError,
    ConnectionFailed,
    ContextLengthExceeded,
    LLMError,
    MalformedResponse,
    NotFoundError,
    Overloaded,
    PermanentError,
    ProviderFailure,
    ProviderUnavailable,
    RateLimited,
    RateLimitExhausted,
    RequestTimeout,
    RequestTooLarge,
    ServerError,
    StreamInterrupted,
)
from qwen_dev_cli.core.retry import backoff_wait, retry_if_round_retryable, retry_stop
from qwen_dev_cli.core.settings import RetrySettings

from .fakes import FakeClock

SETTINGS = RetrySettings(max_retries=3, base_delay=1.0, max_delay=60.0, max_retry_after=60.0)
FULL = RetrySettings(base_delay=0.5, max_delay=8.0, jitter="full")


def failed_round(*errors: LLMError, retry_after: float | None = None) -> AllProvidersFailed:
    failures = [ProviderFailure(f"p{i}", err) for i, err in enumerate(errors)]
    return AllProvidersFailed("every provider failed", failures, retry_after=retry_after)


def after_attempt(attempt: int, error: BaseException | None = None) -> RetryCallState:
    """The state tenacity hands its strategies once attempt ``attempt`` has failed."""
    state = RetryCallState(retry_object=Retrying(), fn=None, args=(), kwargs={})
    state.attempt_number = attempt
    if error is not None:
        state.set_exception((type(error), error, None))
    return state


def schedule(settings: RetrySettings, n: int) -> float:
    """docs/architecture.md section 4: the delay before retry n (0-based), before jitter."""
    return min(settings.base_delay * 2.0**n, settings.max_delay)


class LowestRandom(random.Random):
    """Always draws the low end of a uniform range."""

    def uniform(self, a: float, b: float) -> float:
        return a


# --- backoff_wait --------------------------------------------------------------------


def test_proportional_wait_follows_doubling_schedule_capped_at_max_delay() -> None:
    wait = backoff_wait(SETTINGS, LowestRandom())
    waits = [wait(after_attempt(n + 1, failed_round(ServerError("503")))) for n in range(9)]
    expected = [1.1 * d for d in (1, 2, 4, 8, 16, 32, 60, 60, 60)]
    assert waits == pytest.approx(expected)


@pytest.mark.parametrize("n", [0, 1, 3, 5, 6, 10, 40])
def test_proportional_jitter_adds_10_to_30_percent(n: int) -> None:
    wait = backoff_wait(SETTINGS, random.Random(n))
    base = schedule(SETTINGS, n)
    waits = [wait(after_attempt(n + 1, failed_round(ServerError("503")))) for _ in range(500)]
    assert all(base * 1.1 <= w <= base * 1.3 for w in waits)
    # Jitter that spreads clients covers the range, not one point of it.
    assert min(waits) < base * 1.12
    assert max(waits) > base * 1.28


@pytest.mark.parametrize("n", [0, 1, 4, 10])
def test_full_jitter_is_between_zero_and_schedule(n: int) -> None:
    wait = backoff_wait(FULL, random.Random(n))
    base = schedule(FULL, n)
    waits = [wait(after_attempt(n + 1, failed_round(ServerError("503")))) for _ in range(500)]
    assert all(0.0 <= w <= base for w in waits)
    assert min(waits) < base * 0.05
    assert max(waits) > base * 0.95


def test_same_seed_same_waits() -> None:
    def waits(seed: int) -> list[float]:
        wait = backoff_wait(SETTINGS, random.Random(seed))
        return [wait(after_attempt(a, failed_round(ServerError("x")))) for a in range(1, 6)]

    assert waits(7) == waits(7)
    assert waits(7) != waits(8)


def test_retry_after_raises_the_wait_to_its_value() -> None:
    wait = backoff_wait(SETTINGS, random.Random(1))
    error = failed_round(RateLimited("429", retry_after=10.0), retry_after=10.0)
    assert wait(after_attempt(1, error)) == 10.0


def test_retry_after_floor_applies_to_full_jitter_too() -> None:
    wait = backoff_wait(FULL, random.Random(1))
    assert wait(after_attempt(1, failed_round(RateLimited("429"), retry_after=5.0))) == 5.0


def test_a_tiny_retry_after_still_waits_the_backoffs_floor() -> None:
    """Full jitter may draw 0; a Retry-After of 0 (or 1 ms) must not let the retry go
    at once: base_delay is the floor whenever the server asked for a wait."""
    wait = backoff_wait(FULL, LowestRandom())
    tiny = failed_round(RateLimited("429", retry_after=0.001), retry_after=0.001)
    assert wait(after_attempt(1, tiny)) == FULL.base_delay
    assert wait(after_attempt(1, failed_round(ServerError("x")))) == 0.0  # no Retry-After


def test_retry_after_never_lowers_the_wait() -> None:
    with_floor = backoff_wait(SETTINGS, random.Random(3))
    without = backoff_wait(SETTINGS, random.Random(3))
    short = failed_round(RateLimited("429"), retry_after=0.5)
    plain = failed_round(RateLimited("429"))
    for attempt in range(1, 6):
        expected = without(after_attempt(attempt, plain))
        assert with_floor(after_attempt(attempt, short)) == expected
        assert expected > 0.5


# --- retry_stop ----------------------------------------------------------------------


@pytest.mark.parametrize("max_retries", [0, 1, 3])
def test_stop_after_max_retries_plus_one_attempts(max_retries: int) -> None:
    stop = retry_stop(RetrySettings(max_retries=max_retries))
    error = failed_round(ServerError("503"))
    decisions = [stop(after_attempt(a, error)) for a in range(1, max_retries + 3)]
    assert decisions == [False] * max_retries + [True, True]


def test_stop_at_once_when_retry_after_exceeds_cap() -> None:
    stop = retry_stop(SETTINGS)
    error = failed_round(RateLimited("429"), retry_after=61.0)
    assert stop(after_attempt(1, error)) is True


def test_rate_limit_exhausted_stops_at_once() -> None:
    stop = retry_stop(SETTINGS)
    error = RateLimitExhausted("wait too long", [], retry_after=3600.0)
    assert stop(after_attempt(1, error)) is True


@pytest.mark.parametrize("retry_after", [None, 0.0, 30.0, 60.0])
def test_no_early_stop_for_retry_after_within_cap(retry_after: float | None) -> None:
    stop = retry_stop(SETTINGS)
    error = failed_round(RateLimited("429"), retry_after=retry_after)
    assert stop(after_attempt(1, error)) is False


# --- retry_if_round_retryable --------------------------------------------------------


@pytest.mark.parametrize(
    "errors",
    [
        [ServerError("500")],
        [Overloaded("529")],
        [RequestTimeout("read timeout")],
        [ConnectionFailed("reset")],
        [RateLimited("429")],
        [StreamInterrupted("cut")],
        [MalformedResponse("not json")],
        [ProviderUnavailable("cooling down", retry_in=3.0)],
        [CircuitOpenError("open"), AuthenticationError("401"), ServerError("502")],
    ],
    ids=lambda errors: "+".join(type(e).__name__ for e in errors),
)
def test_round_with_a_transient_failure_is_retried(errors: list[LLMError]) -> None:
    assert retry_if_round_retryable()(after_attempt(1, failed_round(*errors))) is True


@pytest.mark.parametrize(
    "errors",
    [
        [CircuitOpenError("open", retry_in=30.0)],
        [AuthenticationError("401")],
        [NotFoundError("404")],
        [BadRequestError("400")],
        [ContextLengthExceeded("too long")],
        [RequestTooLarge("huge")],
        [CircuitOpenError("open"), PermanentError("bad url"), BadRequestError("422")],
        [],
    ],
    ids=lambda errors: "+".join(type(e).__name__ for e in errors) or "none",
)
def test_round_of_only_permanent_or_open_failures_is_not_retried(
    errors: list[LLMError],
) -> None:
    assert retry_if_round_retryable()(after_attempt(1, failed_round(*errors))) is False


def test_x_should_retry_false_makes_a_5xx_final() -> None:
    error = ServerError("500")
    error.retryable = False
    assert retry_if_round_retryable()(after_attempt(1, failed_round(error))) is False


def test_x_should_retry_true_makes_a_4xx_retryable() -> None:
    error = BadRequestError("409-ish")
    error.retryable = True
    assert retry_if_round_retryable()(after_attempt(1, failed_round(error))) is True


def test_no_retry_without_a_failed_round() -> None:
    retry = retry_if_round_retryable()
    assert retry(after_attempt(1)) is False
    assert retry(after_attempt(1, ValueError("a bug, not a provider"))) is False


# --- the strategies composed as the client composes them ----------------------------


async def run_rounds(error: AllProvidersFailed, settings: RetrySettings) -> tuple[int, FakeClock]:
    clock = FakeClock()
    calls = 0

    async def one_round() -> None:
        nonlocal calls
        calls += 1
        raise error

    retrying = AsyncRetrying(
        stop=retry_stop(settings),
        wait=backoff_wait(settings, random.Random(0)),
        retry=retry_if_round_retryable(),
        sleep=clock.sleep,
        reraise=True,
    )
    with pytest.raises(AllProvidersFailed):
        await retrying(one_round)
    return calls, clock


async def test_transient_rounds_sleep_between_each_and_give_up() -> None:
    calls, clock = await run_rounds(failed_round(ServerError("503")), SETTINGS)
    assert calls == SETTINGS.max_retries + 1
    assert len(clock.sleeps) == SETTINGS.max_retries
    for n, slept in enumerate(clock.sleeps):
        assert schedule(SETTINGS, n) * 1.1 <= slept <= schedule(SETTINGS, n) * 1.3


async def test_retry_after_is_slept_when_longer_than_backoff() -> None:
    _, clock = await run_rounds(failed_round(RateLimited("429"), retry_after=20.0), SETTINGS)
    assert clock.sleeps[:2] == [20.0, 20.0]


async def test_retry_after_beyond_cap_fails_without_sleeping() -> None:
    calls, clock = await run_rounds(failed_round(RateLimited("429"), retry_after=120.0), SETTINGS)
    assert (calls, clock.sleeps) == (1, [])


async def test_permanent_round_fails_without_sleeping() -> None:
    calls, clock = await run_rounds(failed_round(AuthenticationError("401")), SETTINGS)
    assert (calls, clock.sleeps) == (1, [])
