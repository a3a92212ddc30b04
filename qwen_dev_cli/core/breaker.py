"""A circuit breaker for one provider, in this process.

CLOSED: calls pass; ``failure_threshold`` consecutive failures open it.
OPEN: calls are refused without touching the network until ``recovery_timeout``
has passed, then the breaker is HALF_OPEN.
HALF_OPEN: at most ``half_open_max_calls`` trial calls in flight; one failure re-opens
it (and restarts the timer), ``half_open_max_calls`` successes close it.

A call takes a :class:`Permit` from :meth:`CircuitBreaker.acquire` and reports exactly one
of success, failure or neutral on it. A permit issued before a state change reports into
the void, so a slow call from a past epoch cannot flip the current state.

The rules are :mod:`.account`'s, the same the client applies to an account in a state
store; this class keeps them for one process, for code that wants a breaker alone.
"""

from __future__ import annotations

import enum
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from .account import (
    AccountPolicy,
    AccountState,
    AccountView,
    Admitted,
    BreakerPolicy,
    Outcome,
    Settlement,
    Transition,
)
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
    admitted: Admitted
    done: bool = False

    @property
    def trial(self) -> bool:
        return self.admitted.trial

    def success(self) -> None:
        self._finish("success")

    def failure(self) -> None:
        self._finish("failure")

    def neutral(self) -> None:
        """The call ended in a way that says nothing about the provider's health
        (a 4xx, a rate limit, a cancellation)."""
        self._finish("neutral")

    def _finish(self, outcome: Outcome) -> None:
        if self.done:
            return
        self.done = True
        breaker = self.breaker
        how = Settlement(outcome)
        settled = breaker._state.settle(breaker._clock(), breaker._policy, self.admitted, how)
        breaker._announce(settled.transitions)


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
        # In one process every permit reports back, so a trial slot needs no lease.
        self._breaker = BreakerPolicy(
            failure_threshold, recovery_timeout, half_open_max_calls, trial_lease=math.inf
        )
        self._policy = AccountPolicy(breaker=self._breaker)
        self._state = AccountState()
        self.name = name
        self._clock = clock
        self._listeners: list[TransitionListener] = [on_transition] if on_transition else []
        self._issued = 0
        self.transitions = 0
        self.blocked = 0

    @property
    def failure_threshold(self) -> int:
        return self._breaker.failure_threshold

    @property
    def recovery_timeout(self) -> float:
        return self._breaker.recovery_timeout

    @property
    def half_open_max_calls(self) -> int:
        return self._breaker.half_open_max_calls

    def add_listener(self, listener: TransitionListener) -> None:
        self._listeners.append(listener)

    @property
    def state(self) -> BreakerState:
        """The current state; an OPEN breaker whose timeout has passed turns HALF_OPEN."""
        self._announce(self._state.recover(self._clock(), self._breaker))
        return BreakerState(self._state.breaker.state)

    @property
    def consecutive_failures(self) -> int:
        return self._state.breaker.failures

    def retry_in(self) -> float:
        """Seconds until an OPEN breaker lets a trial through (0 when not OPEN)."""
        if self.state is not BreakerState.OPEN:
            return 0.0
        return self._view().retry_in

    def available(self) -> bool:
        """Whether :meth:`acquire` would grant a permit now (no side effects beyond the
        OPEN -> HALF_OPEN timeout transition)."""
        state = self.state
        if state is BreakerState.OPEN:
            return False
        in_flight = len(self._state.breaker.trials)
        return not (state is BreakerState.HALF_OPEN and in_flight >= self.half_open_max_calls)

    def acquire(self) -> Permit:
        """A permit for one call, or :class:`CircuitOpenError` without any call made."""
        self._issued += 1
        decision = self._state.admit(self._clock(), self._policy, 0, f"p{self._issued}")
        self._announce(decision.transitions)
        if isinstance(decision, Admitted):
            return Permit(self, decision)
        self.blocked += 1
        raise CircuitOpenError(decision.detail, provider=self.name, retry_in=decision.wait)

    def reset(self) -> None:
        """Close the circuit and forget failures (``client.reset_circuit_breaker``)."""
        self._announce(self._state.reset(self._clock()))

    # --- internals ------------------------------------------------------------------

    def _view(self) -> AccountView:
        return self._state.view(self._clock(), self._policy)

    def _announce(self, transitions: tuple[Transition, ...]) -> None:
        for transition in transitions:
            old, new = BreakerState(transition.old), BreakerState(transition.new)
            self.transitions += 1
            log.info("circuit %s: %s -> %s", self.name, old.value, new.value)
            for listener in self._listeners:
                try:
                    listener(self.name, old, new)
                except Exception:  # a broken listener must not break the call that reports
                    log.exception("circuit %s: transition listener failed", self.name)
