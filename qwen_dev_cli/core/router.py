"""Which provider to try first: configured priority, re-ranked by recent success.

Each provider keeps its recent outcomes (the last minute, at most 50). Its score is the
success rate smoothed with ``prior`` imaginary successes, so one failure after a quiet
spell does not demote a provider, while a run of them does. Providers whose score is
within ``tolerance`` of the best keep their configured order; the others drop behind,
best first. A demoted provider gets no traffic, so its record ages out of the window
and it gets its turn again after a minute. A provider whose breaker is HALF_OPEN keeps
its configured place whatever its record, so that its trial calls happen.
"""

from __future__ import annotations

import dataclasses
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .account import AccountPolicy, AccountView, Refused, Transition

if TYPE_CHECKING:
    from .providers.base import Provider


@dataclass
class ProviderHealth:
    """This process's recent outcomes with one provider."""

    clock: Callable[[], float] = time.monotonic
    window: float = 60.0
    max_samples: int = 50
    _outcomes: deque[tuple[float, bool]] = field(default_factory=deque)
    _ok: int = 0

    def record(self, ok: bool) -> None:
        self._outcomes.append((self.clock(), ok))
        self._ok += ok
        if len(self._outcomes) > self.max_samples:
            self._ok -= self._outcomes.popleft()[1]

    def counts(self) -> tuple[int, int]:
        """Recent successes and attempts (kept as running counts: the router asks for
        every request)."""
        horizon = self.clock() - self.window
        outcomes = self._outcomes
        while outcomes and outcomes[0][0] < horizon:
            self._ok -= outcomes.popleft()[1]
        return self._ok, len(outcomes)

    def success_rate(self) -> float | None:
        """Share of recent attempts that succeeded; ``None`` with no recent attempts."""
        ok, total = self.counts()
        return ok / total if total else None

    def score(self, prior: float) -> float:
        """The success rate as if ``prior`` more attempts had succeeded (1.0 when idle)."""
        ok, total = self.counts()
        return (ok + prior) / (total + prior) if total + prior else 1.0


@dataclass(eq=False)
class ProviderSlot:
    """A provider, its account in the state store, and what this process last learned
    of that account (``view``, at ``viewed_at`` on the health clock). Compared by
    identity: field-by-field equality (the default) cost 40 us a request in the
    router's list operations.

    Args:
        account: the store key (:func:`~qwen_dev_cli.core.state.account_key`).
        policy: the limits and breaker settings this process applies to it.
        first_byte_timeout: seconds a streamed answer may take to begin.
    """

    provider: Provider
    priority: int
    health: ProviderHealth
    account: str = ""
    policy: AccountPolicy = field(default_factory=AccountPolicy)
    view: AccountView = field(default_factory=AccountView)
    viewed_at: float = 0.0
    #: Seconds a streamed answer may take to begin (``None``: the client's timeout).
    first_byte_timeout: float | None = None

    @property
    def name(self) -> str:
        return self.provider.name

    def learn(self, view: AccountView) -> None:
        self.view = view
        self.viewed_at = self.health.clock()

    def learn_transitions(self, transitions: tuple[Transition, ...]) -> None:
        if transitions:
            new = transitions[-1].new
            retry_in = 0.0
            if new == "OPEN" and self.policy.breaker is not None:
                retry_in = self.policy.breaker.recovery_timeout
            self.learn(dataclasses.replace(self.view, state=new, retry_in=retry_in, failures=0))

    def learn_refusal(self, refusal: Refused) -> None:
        if refusal.reason == "cooldown":
            self.learn(dataclasses.replace(self.view, cooldown=refusal.wait))
        elif refusal.reason == "open":
            self.learn(dataclasses.replace(self.view, state="OPEN", retry_in=refusal.wait))
        elif refusal.reason == "half_open_full":
            self.learn(dataclasses.replace(self.view, state="HALF_OPEN", retry_in=0.0))

    def breaker_state(self) -> str:
        """The breaker's state as last learned, aged: an OPEN breaker whose timeout has
        passed since reads HALF_OPEN."""
        state = self.view.state
        if state == "OPEN" and self.retry_in() <= 0:
            return "HALF_OPEN"
        return state

    def retry_in(self) -> float:
        if self.view.state != "OPEN":
            return 0.0
        return max(0.0, self.view.retry_in - (self.health.clock() - self.viewed_at))

    def cooldown(self) -> float:
        return max(0.0, self.view.cooldown - (self.health.clock() - self.viewed_at))


class Router:
    """Orders provider slots for each request.

    Args:
        slots: in configured priority order.
        tolerance: score margin (0-1) within which configured order wins.
        prior: imaginary successes added to each record (0: raw success rate).
    """

    def __init__(
        self, slots: Sequence[ProviderSlot], tolerance: float = 0.1, prior: float = 10.0
    ) -> None:
        self.slots = list(slots)
        self.tolerance = tolerance
        self.prior = prior

    def ranked(self) -> list[ProviderSlot]:
        # No recent record reads as healthy: new providers get their configured turn.
        score = {slot.name: slot.health.score(self.prior) for slot in self.slots}
        best = max(score.values(), default=1.0)
        leading: list[ProviderSlot] = []
        trailing: list[ProviderSlot] = []
        for slot in self.slots:
            probing = slot.breaker_state() == "HALF_OPEN"
            # The epsilon keeps "exactly tolerance below" inside: 0.8 - 0.1 > 0.7 in floats.
            if probing or best - score[slot.name] <= self.tolerance + 1e-9:
                leading.append(slot)
            else:
                trailing.append(slot)
        trailing.sort(key=lambda slot: (-score[slot.name], slot.priority))
        return leading + trailing

    def get(self, name: str) -> ProviderSlot | None:
        for slot in self.slots:
            if slot.name == name:
                return slot
        return None
