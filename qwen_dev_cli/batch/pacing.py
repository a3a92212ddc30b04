"""How many of a batch's prompts may be in flight: what the account's minute can serve,
times how long a request takes (Little's law), under the ``--concurrency`` ceiling.

More prompts in flight than that would only wait in the account's queue for budget,
ahead of a REPL that shares it, and time out there; fewer would leave budget unused.
Until a request has been answered, the latency is guessed (:data:`GUESSED_LATENCY`);
then it is measured from each answered prompt's last attempt (waits for budget left
out: counting them would let a queue feed itself). Independently of the latency, a
prompt starts only while the budget the accounts have left this minute (as the state
store says, other processes' requests included) exceeds the prompts already started
and not yet admitted: the batch never sends work the budget cannot take now.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..core.status import ProviderStatus

#: Seconds a request is assumed to take before one has been answered: one prompt in
#: flight per 10 requests a minute of budget, as before latencies were measured.
GUESSED_LATENCY = 6.0
#: Weight of the latest latency in the running average.
LATENCY_WEIGHT = 0.3


@dataclass
class Pacing:
    """The in-flight limit of a batch.

    Args:
        ceiling: prompts in flight at most (``--concurrency``).
        rate: requests a second the providers' budgets serve together (``None``: a
            provider without ``rpm``, so the ceiling alone limits).
    """

    ceiling: int
    rate: float | None
    #: The running average of answered requests' latency, in seconds.
    latency: float | None = None

    @classmethod
    def of(cls, ceiling: int, providers: Sequence[ProviderStatus]) -> Pacing:
        """The pacing of a client whose providers are ``providers``."""
        limits = [p.rpm_limit for p in providers]
        if not limits or any(rpm is None for rpm in limits):
            return cls(ceiling, None)
        return cls(ceiling, sum(rpm or 0 for rpm in limits) / 60.0)

    def observe(self, seconds: float) -> None:
        """One answered request took ``seconds`` (its attempt, not its wait for budget)."""
        if not math.isfinite(seconds) or seconds < 0:
            return
        if self.latency is None:
            self.latency = seconds
        else:
            self.latency += LATENCY_WEIGHT * (seconds - self.latency)

    def allows(self, flying: int, unadmitted: int, providers: Sequence[ProviderStatus]) -> bool:
        """Whether one more prompt may start, with ``flying`` in flight of which
        ``unadmitted`` have not been admitted by the budget yet, and the providers as
        the state store last said. One is always let go when none is in flight (it
        waits in the client, bounded, and learns how long the budget needs)."""
        if flying == 0:
            return True
        if flying >= self.limit():
            return False
        if self.rate is None:
            return True
        left = budget_left(providers)
        return left is None or left > unadmitted

    def limit(self) -> int:
        """Prompts that may be in flight now: at least one, at most the ceiling."""
        if self.rate is None:
            return self.ceiling
        latency = GUESSED_LATENCY if self.latency is None else self.latency
        return max(1, min(self.ceiling, math.ceil(self.rate * latency)))


def budget_left(providers: Sequence[ProviderStatus]) -> int | None:
    """Requests the providers that can take one now (not open, not cooling down) have
    left in their current minute, together; ``None``: unlimited (one has no ``rpm``)."""
    usable = [p for p in providers if p.state != "OPEN" and p.cooldown <= 0]
    total = 0
    for provider in usable:
        if provider.rpm_limit is None or provider.rpm_left is None:
            return None
        total += provider.rpm_left
    return total
