"""The rules of one provider account's shared state, as pure data and pure functions.

An account (an endpoint, a model and a hash of the key) has one sliding window of
admitted requests and their tokens, the caps its server's ``x-ratelimit-*`` headers
reported, a 429 cool-down deadline, a circuit breaker, and a queue of requests waiting
for budget. :class:`AccountState` holds them as plain JSON-able data, and its methods
apply every rule with an explicit ``now`` in the store's own clock, so the same code
serves the in-process store and the SQLite one (load, apply, save inside one
transaction); the Redis store runs a line-for-line port of it as a server-side script.

Two calls make a request: :meth:`AccountState.admit` (cool-down, breaker, then budget:
check and charge at once) before it is sent, and :meth:`AccountState.settle` (real
tokens, the breaker's verdict, a cool-down, the server's headers) after. Anything a
process takes and never gives back expires: window entries with the window, breaker
trial slots after their lease, queue tickets after :data:`TICKET_LEASE`.

Account-wide restraint (issue 21) lives here too, in :attr:`AccountState.health`: a few
five-second buckets of attempts, accepts, retries and local refusals.

- **Retry budget**, after Finagle's ``RetryBudget`` rather than gRPC's
  ``retryThrottling``. gRPC keeps one token count with no time in it (each failure
  costs 1, each success earns ``token_ratio``; retries stop below half of
  ``max_tokens``): it rations *failures*, so it stops every retry once more than about
  a tenth of requests fail and allows them all below that, and an account's count from
  yesterday's outage would govern today. Finagle rations *retries* against recent
  traffic: deposits expire after ``ttl``, and a retry may be made while retries in the
  window stay under ``percentCanRetry`` of the deposits plus a reserve of
  ``minRetriesPerSec`` for clients with little traffic. That bounds the amplification
  directly (attempts <= requests x (1 + ratio) + the floor), forgets an old outage on
  its own, and is one more column in a window like the rate limit's. Here: a retry on
  an account is allowed while retries in the last :data:`RETRY_WINDOW` seconds are
  fewer than ``retry_ratio`` x its successes there plus :data:`RETRY_FLOOR`. The floor
  is per minute, not per second: an LLM account serves tens of requests a minute, and
  a few retries a second would be more than its whole traffic. A retry takes its token
  when it is admitted; a failure whose account has no token left fails over at once.
- **Adaptive throttling** (Google SRE, "Handling Overload"): over
  :data:`HEALTH_WINDOW` seconds, ``attempts`` (those that reached the provider, counted
  when they end, so requests in flight at a cold start never count against a healthy
  provider) and ``accepts`` (successes); a new request is refused locally with
  probability ``max(0, (attempts - K * accepts) / (attempts + 1))``, the random draw
  made by the caller (so the Redis script needs no randomness). Below
  :data:`THROTTLE_MIN_ATTEMPTS` attempts nothing is refused: one user's single failure
  would otherwise refuse their next request half the time (the breaker and the retry
  budget guard that range). Local refusals are counted apart and do not feed back into
  ``attempts``, so successes bring the provider back without a cliff.
- **Quota exhaustion** marks the account unavailable until ``quota_until`` for every
  process (:meth:`AccountState.admit` refuses it with reason ``quota``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Literal

from .types import RateLimitHeaders

#: Seconds a waiting request's place in the queue lasts without being renewed: a
#: killed process stops renewing, and those behind it move up after this.
TICKET_LEASE = 3.0
#: Seconds a request behind an older waiter waits before asking again.
QUEUE_POLL = 0.05
#: The longest cool-down one Retry-After can impose, in seconds: a hostile or broken
#: server cannot lock an account away for good.
MAX_COOLDOWN = 86_400.0
#: The window is kept as at most about this many buckets of admissions, so an
#: operation costs the same at 10 or 10,000 requests a minute. A bucket leaves the
#: window when its latest admission does: at worst a request waits 1/BUCKETS of the
#: window longer than an exact log would make it, and never less.
BUCKETS = 100
#: Seconds the client's accounts keep an admission past the 60 s window
#: (:attr:`AccountPolicy.guard`): more than a request takes to leave the machine, even a
#: loaded one, and under 2% of the budget's rate.
WINDOW_GUARD = 1.0
#: Seconds of attempts and accepts adaptive throttling looks at (Google SRE: two minutes).
HEALTH_WINDOW = 120.0
#: Seconds each health bucket covers (aligned to the clock: 24 buckets at most).
HEALTH_BUCKET = 5.0
#: Seconds of successes and retries the retry budget looks at (Finagle's ``ttl``).
RETRY_WINDOW = 60.0
#: Retries an account may make per :data:`RETRY_WINDOW` whatever its successes.
RETRY_FLOOR = 10.0
#: Attempts in the window before adaptive throttling refuses anything.
THROTTLE_MIN_ATTEMPTS = 10

Outcome = Literal["success", "failure", "neutral"]
RefusalReason = Literal[
    "cooldown", "open", "half_open_full", "budget", "quota", "throttled", "retry_budget"
]
BreakerStateName = Literal["CLOSED", "OPEN", "HALF_OPEN"]


@dataclass(frozen=True)
class BreakerPolicy:
    """A circuit breaker's rules: ``LLMClient(breaker=BreakerPolicy(...))``, one breaker
    per provider account (see :class:`~qwen_dev_cli.core.breaker.CircuitBreaker`).

    Args:
        failure_threshold: consecutive failures that open the circuit.
        recovery_timeout: seconds OPEN before trial calls are let through.
        half_open_max_calls: trial calls in flight at once, and successes needed to close.
        trial_lease: seconds a half-open trial slot is held at most, so a process killed
            during its trial call cannot keep the slot forever. ``LLMClient`` holds it
            at least four attempt timeouts: a stream may outlast one.
    """

    failure_threshold: int = 5
    recovery_timeout: float = 60.0
    half_open_max_calls: int = 3
    trial_lease: float = 60.0

    def __post_init__(self) -> None:
        if self.failure_threshold < 1 or self.half_open_max_calls < 1 or self.recovery_timeout < 0:
            raise ValueError(
                "failure_threshold and half_open_max_calls must be >= 1, recovery_timeout >= 0"
            )


@dataclass(frozen=True)
class AccountPolicy:
    """What one process believes the account's limits are. ``None``: unlimited, or
    (``breaker``) no breaker."""

    rpm: int | None = None
    tpm: int | None = None
    breaker: BreakerPolicy | None = BreakerPolicy()
    window: float = 60.0
    #: Seconds an admission stays counted past ``window``. We stamp a request when it is
    #: admitted; a server counts it when it arrives, later by the time it took to send.
    #: Without a margin, a request admitted just as the oldest leaves our window can
    #: reach the server a fraction of a second inside the server's, and earn a 429.
    #: The client keeps :data:`WINDOW_GUARD`; 0 here keeps the arithmetic exact.
    guard: float = 0.0
    #: Retries may add this share of the account's recent successes (plus
    #: :data:`RETRY_FLOOR`); ``None``: no retry budget kept.
    retry_ratio: float | None = None
    #: Adaptive throttling's K; 0: off.
    throttle_k: float = 0.0
    #: Retries allowed per :data:`RETRY_WINDOW` whatever the successes.
    retry_floor: float = RETRY_FLOOR

    @property
    def held(self) -> float:
        """Seconds an admission counts against the budget: the window and its guard."""
        return self.window + self.guard

    def __post_init__(self) -> None:
        if not (0.0 <= self.guard < math.inf):
            raise ValueError("guard must be a finite number of seconds >= 0")
        for label, limit in (("requests", self.rpm), ("tokens", self.tpm)):
            if limit is not None and limit < 1:
                raise ValueError(f"{label} per minute must be at least 1 (or None: unlimited)")


@dataclass(frozen=True)
class Transition:
    """A breaker state change one operation caused."""

    old: BreakerStateName
    new: BreakerStateName
    reason: str = ""


@dataclass(frozen=True)
class Admitted:
    """Leave to send one request; settle it exactly once."""

    reservation: str
    epoch: int
    trial: bool
    #: Its bucket's stamp (store clock, whole milliseconds): found again when settled.
    at: int = 0
    #: The tokens it reserved (its estimate), replaced by the real count when settled.
    tokens: int = 0
    transitions: tuple[Transition, ...] = ()


@dataclass(frozen=True)
class Refused:
    """Not now: ``wait`` seconds until it may be worth asking again."""

    reason: RefusalReason
    wait: float
    detail: str = ""
    transitions: tuple[Transition, ...] = ()
    #: For ``throttled``: the probability the refusal was drawn with.
    chance: float = 0.0


@dataclass(frozen=True)
class Settlement:
    """How an admitted request ended.

    Args:
        outcome: the breaker's verdict on the provider's health.
        tokens: the tokens the provider counted, replacing the estimate (``None``: keep it).
        cooldown: seconds every process keeps off the account (a 429's Retry-After).
        server: what the provider's ``x-ratelimit-*`` headers said.
        quota: seconds every process keeps off the account because its quota is
            exhausted (0: no quota signal).
    """

    outcome: Outcome = "neutral"
    tokens: int | None = None
    cooldown: float = 0.0
    server: RateLimitHeaders | None = None
    quota: float = 0.0


@dataclass(frozen=True)
class Settled:
    """What settling a request changed: breaker transitions, and the account after."""

    transitions: tuple[Transition, ...]
    view: AccountView


@dataclass(frozen=True)
class AccountView:
    """The account as a status bar shows it."""

    state: BreakerStateName = "CLOSED"
    retry_in: float = 0.0
    cooldown: float = 0.0
    rpm_left: int | None = None
    tpm_left: int | None = None
    failures: int = 0
    waiting: int = 0
    #: Retries the account's retry budget allows now (``None``: no budget kept).
    retry_budget: float | None = None
    #: Requests refused locally by adaptive throttling in its two-minute window.
    throttled: int = 0
    #: Seconds until an exhausted quota resets (0: none known).
    quota_reset_in: float = 0.0


@dataclass
class BreakerRecord:
    state: BreakerStateName = "CLOSED"
    epoch: int = 0
    failures: int = 0
    opened_at: float = 0.0
    successes: int = 0
    reason: str = ""
    #: reservation id -> the time its trial slot expires.
    trials: dict[str, float] = field(default_factory=dict)


@dataclass
class AccountState:
    """Everything shared about one account. ``entries`` are the window's buckets,
    ``[first, last, requests, tokens]`` (admission times in whole milliseconds of the
    store's clock, rounded up, and totals), oldest first;
    ``requests`` and ``tokens`` are their sums; the ``server_*`` caps are ``[left,
    until]``; ``waiters`` maps a ticket to ``[arrived, expires]``."""

    entries: list[list[int]] = field(default_factory=list)
    requests: int = 0
    tokens: int = 0
    server_requests: list[float] | None = None
    server_tokens: list[float] | None = None
    cooldown_until: float = 0.0
    breaker: BreakerRecord = field(default_factory=BreakerRecord)
    waiters: dict[str, list[float]] = field(default_factory=dict)
    #: Restraint buckets, ``[start, attempts, accepts, retries, throttled]`` (start in
    #: whole milliseconds, a multiple of :data:`HEALTH_BUCKET`), oldest first.
    health: list[list[int]] = field(default_factory=list)
    #: Until when (store clock) the account's quota is exhausted.
    quota_until: float = 0.0

    # --- the two calls of a request ------------------------------------------------

    def admit(
        self,
        now: float,
        policy: AccountPolicy,
        tokens: int,
        reservation: str,
        ticket: str | None = None,
        *,
        draw: float | None = None,
        retry: bool = False,
    ) -> Admitted | Refused:
        """Check the cool-down, the breaker and the budget, and charge the budget when
        all three allow. With a ``ticket``, a request refused for budget keeps (or
        takes) its place in the queue; requests that queued earlier go first.

        ``draw`` (uniform in [0, 1), from the caller's random source) submits the
        request to adaptive throttling; ``retry`` marks it a retry on this account,
        which needs (and takes) a token of the retry budget."""
        transitions: list[Transition] = []
        self._prune(now, policy.held)
        if now < self.cooldown_until:
            wait = self.cooldown_until - now
            return Refused("cooldown", wait, f"rate limited; cooling down for {wait:.1f}s")
        record = self.breaker
        if policy.breaker is not None:
            self._maybe_half_open(now, policy.breaker, transitions)
            if record.state == "OPEN":
                wait = max(0.0, record.opened_at + policy.breaker.recovery_timeout - now)
                detail = f"circuit open ({record.reason}); next trial in {wait:.0f}s"
                return Refused("open", wait, detail, tuple(transitions))
            if record.state == "HALF_OPEN":
                live = {r: t for r, t in record.trials.items() if t > now}
                record.trials = live
                if len(live) >= policy.breaker.half_open_max_calls:
                    detail = f"circuit half-open with {len(live)} trial calls in flight"
                    return Refused("half_open_full", 0.0, detail, tuple(transitions))
        restraint = self._restrain(now, policy, draw, retry)
        if restraint is not None:
            reason, wait, detail, chance = restraint
            return Refused(reason, wait, detail, tuple(transitions), chance)
        delay = self._delay_for(now, policy, tokens)
        arrived = self.waiters[ticket][0] if ticket in self.waiters else now
        ahead = any(t != ticket and w[0] < arrived for t, w in self.waiters.items())
        if delay > 0 or ahead:
            if ticket is not None:
                self.waiters[ticket] = [arrived, now + TICKET_LEASE]
            wait = max(delay, QUEUE_POLL if ahead else 0.0)
            return Refused("budget", wait, f"budget spent for {wait:.1f}s", tuple(transitions))
        if ticket is not None:
            self.waiters.pop(ticket, None)
        at = self._charge(now, policy.held, tokens)
        for cap, spent in ((self.server_requests, 1), (self.server_tokens, tokens)):
            if cap is not None and now < cap[1]:
                cap[0] -= spent
        if retry and policy.retry_ratio is not None:
            self._count(now, 3)
        trial = policy.breaker is not None and record.state == "HALF_OPEN"
        if trial:
            assert policy.breaker is not None
            record.trials[reservation] = now + policy.breaker.trial_lease
        return Admitted(reservation, record.epoch, trial, at, tokens, tuple(transitions))

    def settle(
        self, now: float, policy: AccountPolicy, admitted: Admitted, settlement: Settlement
    ) -> Settled:
        """Record how an admitted request ended: the transitions it caused, and the
        account's view after it (so a status bar is current without another read)."""
        transitions: list[Transition] = []
        self._prune(now, policy.held)
        if settlement.tokens is not None:
            actual = max(0, settlement.tokens)
            for entry in reversed(self.entries):
                if entry[0] <= admitted.at <= entry[1]:
                    # Its estimate is in this bucket's total: swap it for the real count.
                    change = max(actual - admitted.tokens, -int(entry[3]))
                    entry[3] += change
                    self.tokens += change
                    break
        if settlement.server is not None:
            self._observe(now, policy.held, settlement.server)
        if settlement.cooldown > 0:  # NaN is not: a server's nonsense is ignored
            cooldown = min(settlement.cooldown, MAX_COOLDOWN)
            self.cooldown_until = max(self.cooldown_until, now + cooldown)
        self._tally(now, settlement)
        self._judge(now, policy, admitted, settlement.outcome, transitions)
        return Settled(tuple(transitions), self.view(now, policy))

    def _judge(
        self,
        now: float,
        policy: AccountPolicy,
        admitted: Admitted,
        outcome: Outcome,
        transitions: list[Transition],
    ) -> None:
        """The breaker's part of settling."""
        record = self.breaker
        if admitted.trial:
            record.trials.pop(admitted.reservation, None)
        if policy.breaker is None or admitted.epoch != record.epoch:
            return  # a permit from a past epoch reports into the void
        if outcome == "neutral":
            return
        if record.state == "CLOSED":
            if outcome == "success":
                record.failures = 0
            else:
                record.failures += 1
                if record.failures >= policy.breaker.failure_threshold:
                    reason = f"{record.failures} consecutive failures"
                    self._transition(now, "OPEN", reason, transitions)
        elif record.state == "HALF_OPEN":
            if outcome == "failure":
                self._transition(now, "OPEN", "a trial call failed", transitions)
            else:
                record.successes += 1
                if record.successes >= policy.breaker.half_open_max_calls:
                    self._transition(now, "CLOSED", "trial calls succeeded", transitions)

    # --- for the per-process RateLimiter and CircuitBreaker ----------------------------

    def budget_wait(self, now: float, policy: AccountPolicy, tokens: int) -> float:
        """Seconds before a request of ``tokens`` fits the budget (0: now), changing
        nothing but what has left the window."""
        self._prune(now, policy.held)
        return self._delay_for(now, policy, tokens)

    def observe(self, now: float, window: float, headers: RateLimitHeaders) -> None:
        """Tighten the budget with what the provider's headers report."""
        self._observe(now, window, headers)

    def recover(self, now: float, policy: BreakerPolicy) -> tuple[Transition, ...]:
        """The OPEN -> HALF_OPEN transition a passed recovery timeout makes."""
        transitions: list[Transition] = []
        self._maybe_half_open(now, policy, transitions)
        return tuple(transitions)

    # --- reading and resetting -----------------------------------------------------

    def view(self, now: float, policy: AccountPolicy) -> AccountView:
        """The account now, without changing it (an OPEN breaker past its timeout reads
        HALF_OPEN, as the next admission will make it)."""
        requests, tokens = self.requests, self.tokens
        horizon = (now - policy.held) * 1000
        for entry in self.entries:  # buckets that have left the window, not yet pruned
            if entry[1] > horizon:
                break
            requests -= int(entry[2])
            tokens -= int(entry[3])
        requests_left = None if policy.rpm is None else max(0, policy.rpm - requests)
        tokens_left = None if policy.tpm is None else max(0, policy.tpm - tokens)
        for cap, kind in ((self.server_requests, "r"), (self.server_tokens, "t")):
            if cap is not None and now < cap[1]:
                left = int(cap[0])
                if kind == "r":
                    requests_left = left if requests_left is None else min(requests_left, left)
                else:
                    tokens_left = left if tokens_left is None else min(tokens_left, left)
        record = self.breaker
        state: BreakerStateName = "CLOSED"
        retry_in = 0.0
        if policy.breaker is not None:
            state = record.state
            if state == "OPEN":
                retry_in = record.opened_at + policy.breaker.recovery_timeout - now
                if retry_in <= 0:
                    state, retry_in = "HALF_OPEN", 0.0
        _, _, _, throttled = self._health(now, HEALTH_WINDOW)
        return AccountView(
            state=state,
            retry_in=retry_in,
            cooldown=max(0.0, self.cooldown_until - now),
            rpm_left=requests_left,
            tpm_left=tokens_left,
            failures=record.failures if state == "CLOSED" else 0,
            waiting=sum(1 for w in self.waiters.values() if w[1] > now),
            retry_budget=self._retry_budget(now, policy),
            throttled=throttled,
            quota_reset_in=max(0.0, self.quota_until - now),
        )

    def reset(self, now: float) -> tuple[Transition, ...]:
        """Close the breaker and end the cool-down, an exhausted quota and what adaptive
        throttling remembers (``client.reset_circuit_breaker``)."""
        transitions: list[Transition] = []
        self.cooldown_until = 0.0
        self.quota_until = 0.0
        self.health = []
        self._transition(now, "CLOSED", "reset", transitions)
        return tuple(transitions)

    # --- serialisation --------------------------------------------------------------

    def to_json(self) -> str:
        b = self.breaker
        return json.dumps(
            {
                "e": self.entries,
                "q": self.requests,
                "n": self.tokens,
                "sr": self.server_requests,
                "st": self.server_tokens,
                "cd": self.cooldown_until,
                "b": [b.state, b.epoch, b.failures, b.opened_at, b.successes, b.reason, b.trials],
                "w": self.waiters,
                "h": self.health,
                "qu": self.quota_until,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str | bytes | None) -> AccountState:
        """The state stored as ``text``; a fresh one for ``None``. Raises ``ValueError``
        for anything that is not a state this module wrote."""
        if text is None:
            return cls()
        try:
            data = json.loads(text)
            b = data["b"]
            return cls(
                entries=[
                    [int(first), int(last), int(count), int(tokens)]
                    for first, last, count, tokens in _seq(data["e"])
                ],
                requests=int(data["q"]),
                tokens=int(data["n"]),
                server_requests=_cap(data.get("sr")),
                server_tokens=_cap(data.get("st")),
                cooldown_until=float(data["cd"]),
                breaker=BreakerRecord(
                    state=_state_name(b[0]),
                    epoch=int(b[1]),
                    failures=int(b[2]),
                    opened_at=float(b[3]),
                    successes=int(b[4]),
                    reason=str(b[5]),
                    trials={str(k): float(v) for k, v in _map(b[6]).items()},
                ),
                waiters={str(k): [float(v[0]), float(v[1])] for k, v in _map(data["w"]).items()},
                health=[
                    [int(start), int(attempts), int(accepts), int(retries), int(throttled)]
                    for start, attempts, accepts, retries, throttled in _seq(data.get("h"))
                ],
                quota_until=float(data.get("qu", 0.0)),
            )
        # OverflowError: an infinite stamp, which int() refuses as ValueError does NaN.
        except (KeyError, IndexError, TypeError, ValueError, OverflowError) as exc:
            raise ValueError(f"not an account state: {exc}") from exc

    # --- internals ------------------------------------------------------------------

    def _prune(self, now: float, window: float) -> None:
        self._clamp(now)
        horizon = (now - window) * 1000
        entries = self.entries
        drop = 0
        while drop < len(entries) and entries[drop][1] <= horizon:
            self.requests -= int(entries[drop][2])
            self.tokens -= int(entries[drop][3])
            drop += 1
        if drop:
            del entries[:drop]
        if self.waiters:
            self.waiters = {t: w for t, w in self.waiters.items() if w[1] > now}

    def _clamp(self, now: float) -> None:
        """Bring stamps from the future back to now. A clock stepped back (or a peer
        whose clock runs ahead, or a damaged row) would otherwise keep them in the window
        for as long as the step: an hour back closed the budget for an hour. Clamped, a
        request waits at most one window; a queue ticket lasts at most its lease, and a
        breaker opened "in the future" counts its recovery from now."""
        latest = math.ceil(now * 1000)
        entries = self.entries
        # Stamps never go back (see _charge), so only the newest can tell: the loop is
        # for a clock that stepped back, not for every operation.
        if entries and entries[-1][1] > latest:
            for entry in entries:
                if entry[1] > latest:
                    entry[1] = latest
                    entry[0] = min(entry[0], latest)
        for waiter in self.waiters.values():
            if not waiter[0] <= now:
                waiter[0] = now
            if not waiter[1] <= now + TICKET_LEASE:
                waiter[1] = now + TICKET_LEASE
        if not self.breaker.opened_at <= now:
            self.breaker.opened_at = now

    def _charge(self, now: float, window: float, tokens: int) -> int:
        """Add one admission to the window; returns its bucket's stamp. Stamps never go
        back, whatever the clock does, so buckets stay in order."""
        entries = self.entries
        at = math.ceil(now * 1000)
        if entries:
            last = entries[-1]
            at = max(at, last[1])
            if at - last[0] < window * 1000 / BUCKETS:
                last[1] = at
                last[2] += 1
                last[3] += tokens
                self.requests += 1
                self.tokens += tokens
                return at
        entries.append([at, at, 1, tokens])
        self.requests += 1
        self.tokens += tokens
        return at

    def _delay_for(self, now: float, policy: AccountPolicy, tokens: int) -> float:
        """Seconds until one more request of ``tokens`` fits (0: now)."""
        delay = 0.0
        if policy.rpm is not None and self.requests + 1 > policy.rpm:
            delay = self._until_freed(now, policy.held, 2, self.requests + 1 - policy.rpm)
        if policy.tpm is not None and self.tokens + tokens > policy.tpm:
            excess = self.tokens + tokens - policy.tpm
            delay = max(delay, self._until_freed(now, policy.held, 3, excess))
        for cap, need in ((self.server_requests, 1), (self.server_tokens, tokens)):
            if cap is not None and now < cap[1] and cap[0] < need:
                delay = max(delay, cap[1] - now)
        return delay

    def _until_freed(self, now: float, window: float, column: int, excess: float) -> float:
        """Seconds until the oldest buckets that hold ``excess`` requests (column 2) or
        tokens (column 3) have left the window."""
        for entry in self.entries:
            excess -= entry[column]
            if excess <= 0:
                return max(0.0, entry[1] / 1000 + window - now)
        # Only a request larger than the whole budget gets here; the client refuses
        # those before asking (RequestTooLarge).
        return 0.0

    def _observe(self, now: float, window: float, headers: RateLimitHeaders) -> None:
        # The newest report replaces an older one: the server knows its own state best.
        if headers.remaining_requests is not None:
            reset = headers.reset_requests
            until = now + (window if reset is None else reset)
            self.server_requests = [float(headers.remaining_requests), until]
        if headers.remaining_tokens is not None:
            reset = headers.reset_tokens
            until = now + (window if reset is None else reset)
            self.server_tokens = [float(headers.remaining_tokens), until]

    # --- account-wide restraint (issue 21) ---------------------------------------------

    def _restrain(
        self, now: float, policy: AccountPolicy, draw: float | None, retry: bool
    ) -> tuple[RefusalReason, float, str, float] | None:
        """Quota, adaptive throttling, then the retry budget: a refusal, or ``None``."""
        self._prune_health(now)
        if now < self.quota_until:
            wait = self.quota_until - now
            return "quota", wait, f"quota exhausted; resets in {wait:.0f}s", 0.0
        if draw is not None and policy.throttle_k > 0:
            attempts, accepts, _, _ = self._health(now, HEALTH_WINDOW)
            if attempts >= THROTTLE_MIN_ATTEMPTS:
                chance = max(0.0, (attempts - policy.throttle_k * accepts) / (attempts + 1))
                if draw < chance:
                    self._count(now, 4)
                    detail = (
                        f"throttled locally: {accepts} of the last {attempts} attempts "
                        f"succeeded (p={chance:.2f})"
                    )
                    return "throttled", 0.0, detail, chance
        if retry:
            budget = self._retry_budget(now, policy)
            if budget is not None and budget < 1:
                return "retry_budget", 0.0, "retry budget spent", 0.0
        return None

    def _tally(self, now: float, settlement: Settlement) -> None:
        """Count a finished attempt for adaptive throttling and the retry budget (those
        the provider's health is not in question for, such as a 400, are not counted),
        and mark an exhausted quota."""
        if settlement.quota > 0:  # NaN is not
            quota = min(settlement.quota, MAX_COOLDOWN)
            self.quota_until = max(self.quota_until, now + quota)
        outcome = settlement.outcome
        if outcome != "neutral" or settlement.cooldown > 0 or settlement.quota > 0:
            self._prune_health(now)
            self._count(now, 1)
            if outcome == "success":
                self._count(now, 2)

    def _count(self, now: float, column: int) -> None:
        """One more in ``column`` of the current health bucket. A bucket's start never
        goes back, whatever the clock does, so buckets stay in order."""
        health = self.health
        start = math.floor(now / HEALTH_BUCKET) * int(HEALTH_BUCKET * 1000)
        if not health or start > health[-1][0]:
            health.append([start, 0, 0, 0, 0])
        health[-1][column] += 1

    def _prune_health(self, now: float) -> None:
        horizon = (now - HEALTH_WINDOW - HEALTH_BUCKET) * 1000
        drop = 0
        while drop < len(self.health) and self.health[drop][0] <= horizon:
            drop += 1
        if drop:
            del self.health[:drop]

    def _health(self, now: float, window: float) -> tuple[int, int, int, int]:
        """Attempts, accepts, retries and local refusals in the buckets that reach into
        the last ``window`` seconds."""
        horizon = (now - window - HEALTH_BUCKET) * 1000
        attempts = accepts = retries = throttled = 0
        for bucket in self.health:
            if bucket[0] > horizon:
                attempts += bucket[1]
                accepts += bucket[2]
                retries += bucket[3]
                throttled += bucket[4]
        return attempts, accepts, retries, throttled

    def _retry_budget(self, now: float, policy: AccountPolicy) -> float | None:
        """Retries the account may make now (``None``: no budget kept)."""
        if policy.retry_ratio is None:
            return None
        _, accepts, retries, _ = self._health(now, RETRY_WINDOW)
        return max(0.0, policy.retry_floor + policy.retry_ratio * accepts - retries)

    def _maybe_half_open(
        self, now: float, policy: BreakerPolicy, transitions: list[Transition]
    ) -> None:
        record = self.breaker
        if record.state == "OPEN" and now - record.opened_at >= policy.recovery_timeout:
            self._transition(now, "HALF_OPEN", "recovery timeout passed", transitions)

    def _transition(
        self, now: float, new: BreakerStateName, reason: str, transitions: list[Transition]
    ) -> None:
        record = self.breaker
        old = record.state
        record.state = new
        record.epoch += 1
        record.failures = 0
        record.successes = 0
        record.trials = {}
        if new == "OPEN":
            record.opened_at = now
            record.reason = reason
        if old != new:
            transitions.append(Transition(old, new, reason))


def _seq(value: Any) -> list[Any]:
    # Lua's cjson writes an empty array as an empty object.
    if value == {} or value is None:
        return []
    if not isinstance(value, list):
        raise TypeError("expected a list")
    return value


def _map(value: Any) -> dict[str, Any]:
    if value == [] or value is None:
        return {}
    if not isinstance(value, dict):
        raise TypeError("expected an object")
    return value


def _cap(value: Any) -> list[float] | None:
    if value is None or value == {} or value == []:
        return None
    left, until = value
    return [float(left), float(until)]


def _state_name(value: Any) -> BreakerStateName:
    if value == "CLOSED" or value == "OPEN" or value == "HALF_OPEN":
        return value  # type: ignore[no-any-return]  # narrowed by the comparison above
    raise ValueError(f"unknown breaker state {value!r}")
