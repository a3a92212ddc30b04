"""How many of a batch's prompts may be in flight: what the accounts' minute can serve,
times how long a request takes (Little's law), under the ``--concurrency`` ceiling.

More prompts in flight than that would only wait in the account's queue for budget,
ahead of a REPL that shares it, and time out there; fewer would leave budget unused.
An account's minute is its ``rpm`` or, with ``tpm``, its tokens divided by what a
request costs, whichever serves fewer: prompts of 4,000 tokens under ``tpm = 20000``
are five a minute, whatever ``rpm`` says. Until a request has been answered, the
latency is guessed (:data:`GUESSED_LATENCY`) and a request's cost is what the client
reserves for it (the prompt's estimate plus its answer's room); then both are measured
from answered prompts (the latency from each one's last attempt, waits for budget left
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
#: Weight of the latest figure (a latency, a request's tokens) in its running average.
LATENCY_WEIGHT = 0.3
#: Tokens a request is assumed to reserve before one has started: the client's room for
#: an answer without ``max_tokens`` (``DEFAULT_COMPLETION_ESTIMATE``).
GUESSED_TOKENS = 1024


def _averaged(average: float | None, value: float) -> float:
    return value if average is None else average + LATENCY_WEIGHT * (value - average)


@dataclass(frozen=True)
class Budget:
    """One provider's account limits (``None``: unlimited)."""

    rpm: int | None
    tpm: int | None

    def rate(self, tokens: float) -> float | None:
        """Requests a second the account serves when each costs ``tokens``; ``None``:
        unlimited."""
        rates = []
        if self.rpm is not None:
            rates.append(self.rpm / 60.0)
        if self.tpm is not None:
            rates.append(self.tpm / 60.0 / max(1.0, tokens))
        return min(rates) if rates else None


@dataclass
class Pacing:
    """The in-flight limit of a batch.

    Args:
        ceiling: prompts in flight at most (``--concurrency``).
        budgets: each provider's limits; with a provider that has neither ``rpm`` nor
            ``tpm`` (or with none), the ceiling alone limits.
    """

    ceiling: int
    budgets: tuple[Budget, ...] = ()
    #: The running average of answered requests' latency, in seconds.
    latency: float | None = None
    #: The running average of what a request reserves from ``tpm`` when admitted.
    reserved: float | None = None
    #: The running average of what an answered request cost in the end (its usage).
    spent: float | None = None

    @classmethod
    def of(cls, ceiling: int, providers: Sequence[ProviderStatus]) -> Pacing:
        """The pacing of a client whose providers are ``providers``."""
        return cls(ceiling, tuple(Budget(p.rpm_limit, p.tpm_limit) for p in providers))

    @property
    def rate(self) -> float | None:
        """Requests a second the providers' budgets serve together (``None``: one of
        them is unlimited, or there are none). Over a minute, a request costs what it
        was reconciled to; before any is answered, what it reserves."""
        if not self.budgets:
            return None
        tokens = self.spent or self.reserved or GUESSED_TOKENS
        total = 0.0
        for budget in self.budgets:
            rate = budget.rate(tokens)
            if rate is None:
                return None
            total += rate
        return total

    def reserving(self, tokens: int) -> None:
        """A prompt starts that will reserve ``tokens`` (the client's estimate: its
        prompt plus its answer's room)."""
        if tokens > 0:
            self.reserved = _averaged(self.reserved, float(tokens))

    def observe(self, seconds: float, tokens: int | None = None) -> None:
        """One answered request took ``seconds`` (its attempt, not its wait for
        budget) and, as its usage says, ``tokens``."""
        if math.isfinite(seconds) and seconds >= 0:
            self.latency = _averaged(self.latency, seconds)
        if tokens is not None and tokens > 0:
            self.spent = _averaged(self.spent, float(tokens))

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
        left = budget_left(providers, self.reserved or GUESSED_TOKENS)
        return left is None or left > unadmitted

    def limit(self) -> int:
        """Prompts that may be in flight now: at least one, at most the ceiling."""
        rate = self.rate
        if rate is None:
            return self.ceiling
        latency = GUESSED_LATENCY if self.latency is None else self.latency
        return max(1, min(self.ceiling, math.ceil(rate * latency)))


def budget_left(providers: Sequence[ProviderStatus], tokens: float = GUESSED_TOKENS) -> int | None:
    """Requests reserving ``tokens`` that the providers able to take one now (not open,
    not cooling down) have room for in their current minute, together; ``None``:
    unlimited (one has neither ``rpm`` nor ``tpm``, or its store cannot say)."""
    usable = [p for p in providers if p.state != "OPEN" and p.cooldown <= 0]
    total = 0
    for provider in usable:
        fits: list[int] = []
        if provider.rpm_limit is not None and provider.rpm_left is not None:
            fits.append(provider.rpm_left)
        if provider.tpm_limit is not None and provider.tpm_left is not None:
            fits.append(int(provider.tpm_left // max(1.0, tokens)))
        if not fits:
            return None
        total += min(fits)
    return total
