"""A client-side rate limiter for one provider: requests and tokens per sliding minute.

A request reserves its estimated tokens before it is sent (:meth:`RateLimiter.acquire`),
waiting its turn in FIFO order while the window is spent, and is reconciled with the
real usage afterwards (:meth:`Reservation.reconcile`). What the provider's
``x-ratelimit-*`` headers report tightens the budget until their reset time.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from .account import AccountPolicy, AccountState, Admitted, Settlement
from .errors import RequestTooLarge
from .types import RateLimitHeaders


@dataclass(frozen=True)
class RateLimits:
    """The client-side budgets of providers passed to ``LLMClient`` as objects
    (``LLMClient(rate_limits=RateLimits(...))``); a provider passed as settings carries its own
    ``rpm`` and ``tpm``. Either ``None``: unlimited, though what a provider's
    ``x-ratelimit-*`` headers report is still obeyed. ``rate_limits=None`` turns rate
    limiting off altogether, those headers included.

    Args:
        requests_per_minute, tokens_per_minute: at least 1 each, or ``None``.
    """

    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None

    def __post_init__(self) -> None:
        # An account's policy says what a budget may be; one home for that rule.
        AccountPolicy(self.requests_per_minute, self.tokens_per_minute, breaker=None)


@dataclass(eq=False)
class Reservation:
    """One admitted request's place in the window."""

    at: float
    tokens: int
    #: Seconds this request waited for its turn.
    waited: float = 0.0
    _limiter: RateLimiter | None = field(default=None, repr=False)
    _admitted: Admitted | None = field(default=None, repr=False)

    def reconcile(self, actual_tokens: int) -> None:
        """Replace the estimate with the tokens the provider actually counted."""
        actual = max(0, actual_tokens)
        limiter, admitted = self._limiter, self._admitted
        if limiter is not None and admitted is not None:
            how = Settlement("neutral", tokens=actual)
            limiter._state.settle(limiter._clock(), limiter._policy, admitted, how)
            # Settled once: a second reconcile starts from the real count.
            self._admitted = dataclasses.replace(admitted, tokens=actual)
            if actual < self.tokens:
                limiter._room_made.set()
        self.tokens = actual


class RateLimiter:
    """Sliding-window limiter. ``None`` for a limit means unlimited.

    The rules are :mod:`.account`'s, the same the client applies to an account in a
    state store; this class keeps them for one process, with a FIFO queue of waiters,
    for code that wants a limiter alone.

    Args:
        requests_per_minute: requests admitted in any ``window`` seconds.
        tokens_per_minute: estimated (then reconciled) tokens in any ``window`` seconds.
        window: the window's length, 60 s unless a test says otherwise.
        clock: monotonic seconds. sleep: awaitable sleep. Both injectable for tests.
        name: the provider's name, for errors.
    """

    def __init__(
        self,
        requests_per_minute: int | None = 50,
        tokens_per_minute: int | None = 10_000,
        *,
        window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        name: str = "provider",
    ) -> None:
        self._policy = AccountPolicy(
            requests_per_minute, tokens_per_minute, breaker=None, window=window
        )
        self._state = AccountState()
        self.name = name
        self._clock = clock
        self._sleep = sleep
        self._lock = asyncio.Lock()
        # Set when a reconciliation gives tokens back, to wake the queue head early.
        self._room_made = asyncio.Event()
        self._waiting = 0
        self.waits = 0

    @property
    def rpm(self) -> int | None:
        return self._policy.rpm

    @property
    def tpm(self) -> int | None:
        return self._policy.tpm

    @property
    def window(self) -> float:
        return self._policy.window

    @property
    def limited(self) -> bool:
        return self.rpm is not None or self.tpm is not None

    @property
    def waiting(self) -> int:
        """Requests queued for their turn right now."""
        return self._waiting

    def check(self, tokens: int) -> None:
        """Fail at once for a request that could never fit in the token budget."""
        if self.tpm is not None and tokens > self.tpm:
            raise RequestTooLarge(
                f"request needs about {tokens} tokens but the budget is {self.tpm} tokens "
                "per minute; shorten the conversation or raise tpm",
                provider=self.name,
            )

    async def acquire(self, tokens: int) -> Reservation:
        """Wait for room for one request of ``tokens`` estimated tokens, then take it."""
        self.check(tokens)
        started = self._clock()
        self._waiting += 1
        try:
            async with self._lock:
                counted = False
                while True:
                    now = self._clock()
                    decision = self._state.admit(now, self._policy, tokens, "r")
                    if isinstance(decision, Admitted):
                        return Reservation(now, tokens, now - started, self, decision)
                    if not counted:
                        self.waits += 1
                        counted = True
                    await self._wait(decision.wait)
        finally:
            self._waiting -= 1

    def time_until_available(self, tokens: int) -> float:
        """Seconds before a request of ``tokens`` could be admitted (0: now, and nobody
        is queued ahead of it)."""
        delay = self._state.budget_wait(self._clock(), self._policy, tokens)
        if self._lock.locked() or self._waiting:
            return max(delay, 1e-3)
        return delay

    def remaining(self) -> tuple[int | None, int | None]:
        """Requests and tokens left in the current window (``None``: unlimited)."""
        view = self._state.view(self._clock(), self._policy)
        return view.rpm_left, view.tpm_left

    def observe(self, headers: RateLimitHeaders) -> None:
        """Add what the provider says is left to the budget, until its reset (a window
        when it gives none). The local budget still applies: this only ever tightens it.
        The newest report replaces an older one: the server knows its own state best."""
        self._state.observe(self._clock(), self.window, headers)

    # --- internals ------------------------------------------------------------------

    async def _wait(self, delay: float) -> None:
        """Sleep ``delay``, or less if a reconciliation makes room meanwhile."""
        self._room_made.clear()
        sleeper = asyncio.ensure_future(self._sleep(delay))
        woken = asyncio.ensure_future(self._room_made.wait())
        try:
            await asyncio.wait((sleeper, woken), return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            woken.cancel()
