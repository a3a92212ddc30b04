"""A client-side rate limiter for one provider: requests and tokens per sliding minute.

A request reserves its estimated tokens before it is sent (:meth:`RateLimiter.acquire`),
waiting its turn in FIFO order while the window is spent, and is reconciled with the
real usage afterwards (:meth:`Reservation.reconcile`). What the provider's
``x-ratelimit-*`` headers report tightens the budget until their reset time.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from .errors import RequestTooLarge
from .types import RateLimitHeaders


@dataclass(eq=False)
class Reservation:
    """One admitted request's place in the window."""

    at: float
    tokens: int
    #: Seconds this request waited for its turn.
    waited: float = 0.0
    _limiter: RateLimiter | None = field(default=None, repr=False)
    _live: bool = field(default=True, repr=False)

    def reconcile(self, actual_tokens: int) -> None:
        """Replace the estimate with the tokens the provider actually counted."""
        actual = max(0, actual_tokens)
        if self._live and self._limiter is not None:
            self._limiter._tokens_in_window += actual - self.tokens
            if actual < self.tokens:
                self._limiter._room_made.set()
        self.tokens = actual


@dataclass
class _ServerCap:
    """What the provider says is left until ``until``; admissions spend it."""

    left: int
    until: float


class RateLimiter:
    """Sliding-window limiter. ``None`` for a limit means unlimited.

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
        for label, limit in (("requests", requests_per_minute), ("tokens", tokens_per_minute)):
            if limit is not None and limit < 1:
                raise ValueError(f"{label} per minute must be at least 1 (or None: unlimited)")
        self.rpm = requests_per_minute
        self.tpm = tokens_per_minute
        self.window = window
        self.name = name
        self._clock = clock
        self._sleep = sleep
        self._entries: deque[Reservation] = deque()
        self._tokens_in_window = 0
        self._lock = asyncio.Lock()
        # Set when a reconciliation gives tokens back, to wake the queue head early.
        self._room_made = asyncio.Event()
        self._waiting = 0
        self._server_requests: _ServerCap | None = None
        self._server_tokens: _ServerCap | None = None
        self.waits = 0

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
                    delay = self._delay_for(tokens)
                    if delay <= 0:
                        break
                    if not counted:
                        self.waits += 1
                        counted = True
                    await self._wait(delay)
                return self._admit(tokens, waited=self._clock() - started)
        finally:
            self._waiting -= 1

    def time_until_available(self, tokens: int) -> float:
        """Seconds before a request of ``tokens`` could be admitted (0: now, and nobody
        is queued ahead of it)."""
        if self._lock.locked() or self._waiting:
            return max(self._delay_for(tokens), 1e-3)
        return self._delay_for(tokens)

    def remaining(self) -> tuple[int | None, int | None]:
        """Requests and tokens left in the current window (``None``: unlimited)."""
        self._prune(self._clock())
        req = None if self.rpm is None else max(0, self.rpm - len(self._entries))
        tok = None if self.tpm is None else max(0, self.tpm - self._tokens_in_window)
        now = self._clock()
        if self._server_requests is not None and now < self._server_requests.until:
            left = self._server_requests.left
            req = left if req is None else min(req, left)
        if self._server_tokens is not None and now < self._server_tokens.until:
            left = self._server_tokens.left
            tok = left if tok is None else min(tok, left)
        return req, tok

    def observe(self, headers: RateLimitHeaders) -> None:
        """Add what the provider says is left to the budget, until its reset (a window
        when it gives none). The local budget still applies: this only ever tightens it.
        The newest report replaces an older one: the server knows its own state best."""
        now = self._clock()
        if headers.remaining_requests is not None:
            reset = headers.reset_requests
            self._server_requests = _ServerCap(
                headers.remaining_requests, now + (self.window if reset is None else reset)
            )
        if headers.remaining_tokens is not None:
            reset = headers.reset_tokens
            self._server_tokens = _ServerCap(
                headers.remaining_tokens, now + (self.window if reset is None else reset)
            )

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

    def _prune(self, now: float) -> None:
        horizon = now - self.window
        entries = self._entries
        while entries and entries[0].at <= horizon:
            entry = entries.popleft()
            entry._live = False
            self._tokens_in_window -= entry.tokens

    def _delay_for(self, tokens: int) -> float:
        now = self._clock()
        self._prune(now)
        delay = 0.0
        entries = self._entries
        if self.rpm is not None and len(entries) >= self.rpm:
            # The request that must leave the window before there is room.
            delay = entries[len(entries) - self.rpm].at + self.window - now
        if self.tpm is not None and self._tokens_in_window + tokens > self.tpm:
            excess = self._tokens_in_window + tokens - self.tpm
            for entry in entries:
                excess -= entry.tokens
                if excess <= 0:
                    delay = max(delay, entry.at + self.window - now)
                    break
        for cap, need in ((self._server_requests, 1), (self._server_tokens, tokens)):
            if cap is not None and now < cap.until and cap.left < need:
                delay = max(delay, cap.until - now)
        return delay

    def _admit(self, tokens: int, waited: float) -> Reservation:
        now = self._clock()
        reservation = Reservation(now, tokens, waited, self)
        self._entries.append(reservation)
        self._tokens_in_window += tokens
        for cap, spent in ((self._server_requests, 1), (self._server_tokens, tokens)):
            if cap is not None and now < cap.until:
                cap.left -= spent
        return reservation
