"""The counts of a running batch: done, ok, failed, rates, waits and the ETA, which the
progress displays and the final summary read. Pure bookkeeping, time injected."""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

#: Seconds over which rates are measured: the providers' budget window.
WINDOW = 60.0


@dataclass(frozen=True)
class Wait:
    """A prompt waiting for providers to accept requests again."""

    until: float
    reason: str


class Tally:
    """Counts of one run.

    Args:
        total: prompts in the input (in this shard).
        skipped: answered by an earlier run, not sent.
        get_time: the clock rates and waits are measured with.
    """

    def __init__(
        self, total: int, skipped: int, *, get_time: Callable[[], float] = time.monotonic
    ) -> None:
        self.total = total
        self.skipped = skipped
        self.ok = 0
        self.failed = 0
        self.in_flight = 0
        self.tokens = 0
        #: Set when the batch stops early: why (shown by the displays).
        self.note: str | None = None
        self._get_time = get_time
        self.started = get_time()
        self._recent: deque[tuple[float, int]] = deque()
        self._waits: dict[int, Wait] = {}
        self._wait_ids = itertools.count()

    # --- updates from the runner -------------------------------------------------------

    def prompt_started(self) -> None:
        self.in_flight += 1

    def prompt_dropped(self) -> None:
        """An in-flight prompt left unanswered (interrupted): a resume sends it again."""
        self.in_flight -= 1

    def prompt_finished(self, *, ok: bool, tokens: int) -> None:
        self.in_flight -= 1
        if ok:
            self.ok += 1
        else:
            self.failed += 1
        self.tokens += tokens
        now = self._get_time()
        self._recent.append((now, tokens))
        self._prune(now)

    def wait_started(self, seconds: float, reason: str) -> int:
        key = next(self._wait_ids)
        self._waits[key] = Wait(self._get_time() + seconds, reason)
        return key

    def wait_ended(self, key: int) -> None:
        self._waits.pop(key, None)

    # --- reading -------------------------------------------------------------------

    @property
    def done(self) -> int:
        """Prompts finished in this run (ok or failed)."""
        return self.ok + self.failed

    @property
    def remaining(self) -> int:
        """Prompts neither answered before nor finished in this run."""
        return max(0, self.total - self.skipped - self.done)

    @property
    def elapsed(self) -> float:
        return self._get_time() - self.started

    def waiting(self) -> Wait | None:
        """The wait that ends last, if any prompt is waiting."""
        return max(self._waits.values(), key=lambda wait: wait.until, default=None)

    def wait_left(self, wait: Wait) -> float:
        return max(0.0, wait.until - self._get_time())

    def per_minute(self) -> tuple[float, float]:
        """Prompts and tokens per minute, over the last :data:`WINDOW` seconds."""
        now = self._get_time()
        self._prune(now)
        span = min(WINDOW, max(1.0, now - self.started))
        tokens = sum(spent for _, spent in self._recent)
        return len(self._recent) * 60.0 / span, tokens * 60.0 / span

    def eta(self, rpm: int | None = None, rpm_left: int | None = None) -> float | None:
        """Seconds until every prompt is done, at the recent pace; with the account's
        request budget (``rpm``, ``rpm_left`` in its current window), never sooner than
        the budget allows, nor than a wait in progress ends. ``None`` before there is
        anything to go by."""
        remaining = self.remaining
        if remaining == 0:
            return 0.0
        estimates = []
        rate, _ = self.per_minute()
        if rate > 0:
            estimates.append(remaining * 60.0 / rate)
        if rpm:
            beyond = remaining - (rpm_left or 0)
            if beyond > 0:
                estimates.append(beyond * 60.0 / rpm)
        wait = self.waiting()
        if wait is not None:  # nothing moves before the wait is over
            estimates.append(self.wait_left(wait))
        return max(estimates) if estimates else None

    def _prune(self, now: float) -> None:
        while self._recent and self._recent[0][0] <= now - WINDOW:
            self._recent.popleft()


def duration(seconds: float) -> str:
    """``42s``, ``3m05s``, ``2h07m``."""
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def amount(value: float) -> str:
    """``950``, ``23.4k``, ``1.2M``."""
    if value < 1000:
        return f"{value:.0f}"
    if value < 1_000_000:
        return f"{value / 1000:.1f}k"
    return f"{value / 1_000_000:.1f}M"
