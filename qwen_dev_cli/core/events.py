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
    """The client-side budget of ``provider`` is spent; the request waits ``delay`` s."""

    provider: str
    delay: float


ClientEvent = AttemptStarted | RetryScheduled | Failover | BreakerTransition | RateLimitWait
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
    return f"asking {event.provider} ({event.model})"
