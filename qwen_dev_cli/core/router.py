"""Which provider to try first: configured priority, re-ranked by recent success.

Each provider keeps its recent outcomes (a time window, bounded). Providers whose
success rate is within ``tolerance`` of the best keep their configured order; the others
drop behind, best first. A provider whose breaker is HALF_OPEN keeps its configured
place whatever its record, so that its trial calls happen and it can recover.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .breaker import BreakerState

if TYPE_CHECKING:
    from .breaker import CircuitBreaker
    from .limiter import RateLimiter
    from .providers.base import Provider


@dataclass
class ProviderHealth:
    """Recent outcomes and the 429 cool-down of one provider."""

    clock: Callable[[], float] = time.monotonic
    window: float = 300.0
    max_samples: int = 50
    cooldown_until: float = 0.0
    _outcomes: deque[tuple[float, bool]] = field(default_factory=deque)

    def record(self, ok: bool) -> None:
        self._outcomes.append((self.clock(), ok))
        if len(self._outcomes) > self.max_samples:
            self._outcomes.popleft()

    def success_rate(self) -> float | None:
        """Share of recent attempts that succeeded; ``None`` with no recent attempts."""
        horizon = self.clock() - self.window
        outcomes = self._outcomes
        while outcomes and outcomes[0][0] < horizon:
            outcomes.popleft()
        if not outcomes:
            return None
        return sum(ok for _, ok in outcomes) / len(outcomes)

    def cool_down(self, seconds: float) -> None:
        self.cooldown_until = max(self.cooldown_until, self.clock() + seconds)

    def cooldown_remaining(self) -> float:
        return max(0.0, self.cooldown_until - self.clock())


@dataclass
class ProviderSlot:
    """A provider with the layers that guard it."""

    provider: Provider
    priority: int
    health: ProviderHealth
    breaker: CircuitBreaker | None = None
    limiter: RateLimiter | None = None

    @property
    def name(self) -> str:
        return self.provider.name


class Router:
    """Orders provider slots for each request.

    Args:
        slots: in configured priority order.
        tolerance: success-rate margin (0-1) within which configured order wins.
    """

    def __init__(self, slots: Sequence[ProviderSlot], tolerance: float = 0.1) -> None:
        self.slots = list(slots)
        self.tolerance = tolerance

    def ranked(self) -> list[ProviderSlot]:
        rates = {slot.name: slot.health.success_rate() for slot in self.slots}
        # No recent record reads as healthy: new providers get their configured turn.
        score = {name: 1.0 if rate is None else rate for name, rate in rates.items()}
        best = max(score.values(), default=1.0)
        leading: list[ProviderSlot] = []
        trailing: list[ProviderSlot] = []
        for slot in self.slots:
            probing = slot.breaker is not None and slot.breaker.state is BreakerState.HALF_OPEN
            if probing or score[slot.name] >= best - self.tolerance:
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
