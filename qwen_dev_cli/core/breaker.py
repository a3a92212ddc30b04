"""A circuit breaker for one provider.

CLOSED: calls pass; ``failure_threshold`` consecutive failures open it.
OPEN: calls are refused without touching the network until ``recovery_timeout``
has passed, then the breaker is HALF_OPEN.
HALF_OPEN: at most ``half_open_max_calls`` trial calls in flight; one failure re-opens
it (and restarts the timer), ``half_open_max_calls`` successes close it.

A call takes a :class:`Permit` from :meth:`CircuitBreaker.acquire` and reports exactly one
of success, failure or neutral on it. A permit issued before a state change reports into
the void, so a slow call from a past epoch cannot flip the current state.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from .errors import CircuitOpenError

log = logging.getLogger(__name__)


class BreakerState(enum.Enum):
    CLOSED = "CLOSED"
    OPEN = "OPEN"
    HALF_OPEN = "HALF_OPEN"


TransitionListener = Callable[[str, BreakerState, BreakerState], None]


@dataclass
class Permit:
    """Leave to make one call; report its outcome once."""

    breaker: CircuitBreaker
    epoch: int
    trial: bool
    done: bool = False

    def success(self) -> None:
        self._finish("success")

    def failure(self) -> None:
        self._finish("failure")

    def neutral(self) -> None:
        """The call ended in a way that says nothing about the provider's health
        (a 4xx, a rate limit, a cancellation)."""
        self._finish("neutral")

    def _finish(self, outcome: str) -> None:
        if self.done:
            return
        self.done = True
        self.breaker._record(self, outcome)


class CircuitBreaker:
    """Circuit breaker for one provider.

    Args:
        failure_threshold: consecutive failures that open the circuit.
        recovery_timeout: seconds OPEN before trial calls are let through.
        half_open_max_calls: trial calls in flight at once, and successes needed to close.
        name: the provider's name, for logs, errors and listeners.
        clock: monotonic seconds; injectable for tests.
        on_transition: called with ``(name, old, new)`` on every state change.
    """

    def __init__(
        self,
        failure_threshold: int = 5,
        recovery_timeout: float = 60.0,
        half_open_max_calls: int = 3,
        *,
        name: str = "provider",
        clock: Callable[[], float] = time.monotonic,
        on_transition: TransitionListener | None = None,
    ) -> None:
        if failure_threshold < 1 or half_open_max_calls < 1 or recovery_timeout < 0:
            raise ValueError(
                "failure_threshold and half_open_max_calls must be >= 1, recovery_timeout >= 0"
            )
        self.failure_threshold = failure_threshold
        self.recovery_timeout = recovery_timeout
        self.half_open_max_calls = half_open_max_calls
        self.name = name
        self._clock = clock
        self._listeners: list[TransitionListener] = [on_transition] if on_transition else []
        self._state = BreakerState.CLOSED
        self._epoch = 0
        self._failures = 0
        self._opened_at = 0.0
        self._trials_in_flight = 0
        self._trial_successes = 0
        self._open_reason = ""
        self.transitions = 0
        self.blocked = 0

    def add_listener(self, listener: TransitionListener) -> None:
        self._listeners.append(listener)

    @property
    def state(self) -> BreakerState:
        """The current state; an OPEN breaker whose timeout has passed reads HALF_OPEN."""
        self._maybe_half_open()
        return self._state

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    def retry_in(self) -> float:
        """Seconds until an OPEN breaker lets a trial through (0 when not OPEN)."""
        if self.state is not BreakerState.OPEN:
            return 0.0
        return max(0.0, self._opened_at + self.recovery_timeout - self._clock())

    def available(self) -> bool:
        """Whether :meth:`acquire` would grant a permit now (no side effects beyond the
        OPEN -> HALF_OPEN timeout transition)."""
        state = self.state
        if state is BreakerState.OPEN:
            return False
        return not (
            state is BreakerState.HALF_OPEN and self._trials_in_flight >= self.half_open_max_calls
        )

    def acquire(self) -> Permit:
        """A permit for one call, or :class:`CircuitOpenError` without any call made."""
        state = self.state
        if state is BreakerState.OPEN:
            self.blocked += 1
            wait = self.retry_in()
            raise CircuitOpenError(
                f"circuit open ({self._open_reason}); next trial in {wait:.0f}s",
                provider=self.name,
                retry_in=wait,
            )
        if state is BreakerState.HALF_OPEN:
            if self._trials_in_flight >= self.half_open_max_calls:
                self.blocked += 1
                raise CircuitOpenError(
                    f"circuit half-open with {self._trials_in_flight} trial calls in flight",
                    provider=self.name,
                    retry_in=0.0,
                )
            self._trials_in_flight += 1
            return Permit(self, self._epoch, trial=True)
        return Permit(self, self._epoch, trial=False)

    def reset(self) -> None:
        """Close the circuit and forget failures (``client.reset_circuit_breaker``)."""
        self._transition(BreakerState.CLOSED)

    # --- internals ------------------------------------------------------------------

    def _record(self, permit: Permit, outcome: str) -> None:
        if permit.epoch != self._epoch:
            return
        if permit.trial:
            self._trials_in_flight -= 1
        if outcome == "neutral":
            return
        if self._state is BreakerState.CLOSED:
            if outcome == "success":
                self._failures = 0
            else:
                self._failures += 1
                if self._failures >= self.failure_threshold:
                    self._open_reason = f"{self._failures} consecutive failures"
                    self._transition(BreakerState.OPEN)
        elif self._state is BreakerState.HALF_OPEN:
            if outcome == "failure":
                self._open_reason = "a trial call failed"
                self._transition(BreakerState.OPEN)
            else:
                self._trial_successes += 1
                if self._trial_successes >= self.half_open_max_calls:
                    self._transition(BreakerState.CLOSED)

    def _maybe_half_open(self) -> None:
        if (
            self._state is BreakerState.OPEN
            and self._clock() - self._opened_at >= self.recovery_timeout
        ):
            self._transition(BreakerState.HALF_OPEN)

    def _transition(self, new: BreakerState) -> None:
        old = self._state
        self._state = new
        self._epoch += 1
        self._failures = 0
        self._trials_in_flight = 0
        self._trial_successes = 0
        if new is BreakerState.OPEN:
            self._opened_at = self._clock()
        if old is new:
            return
        self.transitions += 1
        log.info("circuit %s: %s -> %s", self.name, old.value, new.value)
        for listener in self._listeners:
            try:
                listener(self.name, old, new)
            except Exception:  # a broken listener must not break the call that reports
                log.exception("circuit %s: transition listener failed", self.name)
