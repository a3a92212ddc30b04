"""Events the client publishes while it works, for a UI to show (status bar, notices).

Listeners are plain callables; they run synchronously and must not block."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class AttemptStarted:
    """An attempt is about to go out to ``provider``."""

    provider: str
    model: str
    attempt: int


@dataclass(frozen=True)
class RetryScheduled:
    """Every available provider failed; the client sleeps ``delay`` s before retry
    ``retry`` of ``max_retries``."""

    retry: int
    max_retries: int
    delay: float
    reason: str


@dataclass(frozen=True)
class Failover:
    """An attempt failed on ``from_provider``; the request moves to ``to_provider``."""

    from_provider: str
    to_provider: str
    reason: str


@dataclass(frozen=True)
class BreakerTransition:
    provider: str
    old: str
    new: str


@dataclass(frozen=True)
class RateLimitWait:
    """The client-side budget of ``provider`` is spent; the request waits ``delay`` s
    (a queue's wait may run longer), and gives up after ``max_wait`` s (``None``: a
    cool-down's wait, bounded by ``max_retry_after`` instead)."""

    provider: str
    delay: float
    max_wait: float | None = None


@dataclass(frozen=True)
class Throttled:
    """Adaptive throttling refused a request to ``provider`` locally (it failed over or
    failed without touching the provider); ``probability`` was the refusal's chance."""

    provider: str
    probability: float


@dataclass(frozen=True)
class RetryBudgetSpent:
    """The account's retry budget for ``provider`` is spent: no retry, fail over or fail."""

    provider: str


@dataclass(frozen=True)
class QuotaExhausted:
    """``provider`` said its quota is gone; it is unavailable to the whole account for
    ``reset_in`` seconds (``None``: unknown, the store's longest cool-down)."""

    provider: str
    reset_in: float | None
    detail: str


ClientEvent = (
    AttemptStarted
    | RetryScheduled
    | Failover
    | BreakerTransition
    | RateLimitWait
    | Throttled
    | RetryBudgetSpent
    | QuotaExhausted
)
EventListener = Callable[[ClientEvent], None]


def describe(event: ClientEvent) -> str:
    """One short line for a status bar or a stderr notice."""
    if isinstance(event, RetryScheduled):
        return f"retry {event.retry}/{event.max_retries} in {event.delay:.1f}s ({event.reason})"
    if isinstance(event, Failover):
        return f"failover {event.from_provider} -> {event.to_provider} ({event.reason})"
    if isinstance(event, BreakerTransition):
        return f"circuit {event.provider}: {event.old} -> {event.new}"
    if isinstance(event, RateLimitWait):
        return f"rate limit: waiting {event.delay:.1f}s for {event.provider}"
    if isinstance(event, Throttled):
        return f"throttled {event.provider} locally (p={event.probability:.2f})"
    if isinstance(event, RetryBudgetSpent):
        return f"retry budget spent for {event.provider}"
    if isinstance(event, QuotaExhausted):
        when = "unknown" if event.reset_in is None else f"{event.reset_in:.0f}s"
        return f"quota exhausted on {event.provider} (resets in {when}): {event.detail}"
    return f"asking {event.provider} ({event.model})"
