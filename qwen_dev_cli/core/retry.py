"""Retry policy as tenacity strategies.

The client retries *rounds*: one round offers the request to every available provider
in turn, moving on at once after a retryable failure. Only when a whole round fails
does the client sleep, and these strategies decide whether and how long:

- :func:`backoff_wait`: ``min(base_delay * 2**n, max_delay)`` with jitter, never less
  than the Retry-After the providers asked for (:class:`wait_retry_after_floor`);
- :func:`retry_stop`: after ``max_retries`` sleeps, or at once when the soonest any
  provider can be tried again is beyond ``max_retry_after`` (:class:`stop_if_retry_after_exceeds`);
- :class:`retry_if_round_retryable`: only if some failure in the round may go away.

Every decision is a pure function of tenacity's ``RetryCallState`` (random injected),
so tests check them without sleeping.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from tenacity import stop_after_attempt, wait_exponential
from tenacity.retry import retry_base
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from .errors import AllProvidersFailed, ProviderError, ProviderUnavailable

if TYPE_CHECKING:
    from tenacity import RetryCallState

    from .settings import RetrySettings


def _round_error(retry_state: RetryCallState) -> AllProvidersFailed | None:
    outcome = retry_state.outcome
    if outcome is None or not outcome.failed:
        return None
    exc = outcome.exception()
    return exc if isinstance(exc, AllProvidersFailed) else None


class wait_proportional_jitter(wait_base):
    """The inner wait plus a random 10-30 % of it: spreads clients without ever
    shortening the wait below what the backoff schedule promises."""

    def __init__(
        self,
        inner: wait_base,
        low: float = 0.1,
        high: float = 0.3,
        rng: random.Random | None = None,
    ) -> None:
        self.inner = inner
        self.low = low
        self.high = high
        self.rng = rng or random.Random()

    def __call__(self, retry_state: RetryCallState) -> float:
        delay = self.inner(retry_state)
        return delay * (1.0 + self.rng.uniform(self.low, self.high))


class wait_full_jitter(wait_base):
    """AWS "Full Jitter": uniformly random between 0 and the inner wait."""

    def __init__(self, inner: wait_base, rng: random.Random | None = None) -> None:
        self.inner = inner
        self.rng = rng or random.Random()

    def __call__(self, retry_state: RetryCallState) -> float:
        return self.rng.uniform(0.0, self.inner(retry_state))


class wait_retry_after_floor(wait_base):
    """The inner wait, but never less than the Retry-After the failed round carries."""

    def __init__(self, inner: wait_base) -> None:
        self.inner = inner

    def __call__(self, retry_state: RetryCallState) -> float:
        delay = self.inner(retry_state)
        error = _round_error(retry_state)
        if error is not None and error.retry_after is not None:
            return max(delay, error.retry_after)
        return delay


class stop_if_retry_after_exceeds(stop_base):
    """Stop when the soonest retry the providers allow is further off than ``cap`` seconds."""

    def __init__(self, cap: float) -> None:
        self.cap = cap

    def __call__(self, retry_state: RetryCallState) -> bool:
        error = _round_error(retry_state)
        return error is not None and error.retry_after is not None and error.retry_after > self.cap


class retry_if_round_retryable(retry_base):
    """Retry a failed round only if one of its failures is transient."""

    def __call__(self, retry_state: RetryCallState) -> bool:
        error = _round_error(retry_state)
        return error is not None and round_is_retryable(error)


def round_is_retryable(error: AllProvidersFailed) -> bool:
    """Whether sleeping and trying again could change the outcome of a failed round."""
    if error.final:
        return False
    for failure in error.failures:
        err = failure.error
        if isinstance(err, ProviderUnavailable):
            return True
        if isinstance(err, ProviderError) and err.retryable:
            return True
    return False


def backoff_wait(settings: RetrySettings, rng: random.Random | None = None) -> wait_base:
    """The wait before the next round, per ``settings``."""
    schedule = wait_exponential(multiplier=settings.base_delay, exp_base=2, max=settings.max_delay)
    jittered: wait_base
    if settings.jitter == "full":
        jittered = wait_full_jitter(schedule, rng)
    else:
        jittered = wait_proportional_jitter(schedule, rng=rng)
    return wait_retry_after_floor(jittered)


def retry_stop(settings: RetrySettings) -> stop_base:
    """When to give up: after ``max_retries`` retries, or a Retry-After beyond the cap."""
    return stop_after_attempt(settings.max_retries + 1) | stop_if_retry_after_exceeds(
        settings.max_retry_after
    )
