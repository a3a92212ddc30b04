"""One logical call through breakers, limiters, retries and failover.

A call runs in *rounds*. A round offers the request to each available provider in
ranked order and moves on at once after a failure; only when a whole round has failed
does the call sleep (backoff, Retry-After as a floor) and start another, up to
``max_retries`` more. The first round runs bare; tenacity takes over only on failure,
with that round's outcome as its attempt 1, so every decision is still its own.

Everything is an async generator, so a stream's tokens travel from the provider to
the consumer in the consumer's own task: no hand-off between tasks per token. The
last item of a call is its :class:`Answer`.

Account-wide restraint (issue 21, rules in :mod:`.account`): each first ask of a round
carries a draw from the client's random source for adaptive throttling, and an attempt
on an account this call already tried is a retry, which needs a token of the account's
retry budget. A failure whose account has no retry left is not retried: the call fails
over at once, or fails saying the budget is spent, without sleeping. A quota that is
exhausted (or a Retry-After beyond ``max_retry_after``) marks the account unavailable
until its reset for every process, and is said once (:class:`~.events.QuotaExhausted`).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import random
import secrets
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tenacity import AsyncRetrying, RetryCallState
from tenacity.stop import stop_base

from . import events as ev
from .account import AccountView, Admitted, Refused, Settlement, Transition
from .attempt import AttemptStatus, StreamGuard, completed, streamed
from .errors import (
    AllProvidersFailed,
    BudgetWaitExceeded,
    CircuitOpenError,
    InsufficientQuota,
    LLMError,
    LocallyThrottled,
    ProviderError,
    ProviderFailure,
    ProviderUnavailable,
    RateLimited,
    RateLimitExhausted,
    RequestTimeout,
    RequestTooLarge,
    RetryBudgetExhausted,
    RetryBudgetRefused,
    TransientError,
)
from .providers.base import request_for
from .retry import backoff_wait, retry_if_round_retryable, retry_stop
from .tokens import estimate_chars_tokens
from .types import ChatRequest, ProviderReply, StreamRestart, TextDelta

if TYPE_CHECKING:
    from .retry import RetryPolicy
    from .router import ProviderSlot, Router
    from .state import ProviderStateStore
    from .status import Activity
    from .telemetry import Telemetry
    from .watchdog import Timeouts

log = logging.getLogger(__name__)

#: Completion tokens reserved for a request that sets no ``max_tokens``.
DEFAULT_COMPLETION_ESTIMATE = 1024
#: Longest sleep, in seconds, between two admissions asked while queueing for budget.
QUEUE_RECHECK = 1.0
#: Shortest one: a store that answers "budget, wait 0" (or nonsense) is not asked
#: again in a busy loop.
QUEUE_MIN_RECHECK = 0.01
#: Default longest wait, in seconds, for an account's budget (``[rate_limit] max_wait``).
DEFAULT_MAX_WAIT = 120.0
#: Seconds an account is kept off when its quota is exhausted and the server did not
#: say until when: long enough not to knock on it all day, short enough that a user who
#: has just paid is not locked out (``reset_circuit_breaker`` ends it at once).
QUOTA_UNKNOWN_RESET = 3600.0

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class Answer:
    """The successful end of a call: the reply and who gave it."""

    reply: ProviderReply
    provider: str


Item = TextDelta | StreamRestart | Answer


@dataclass
class Call:
    """The state of one logical call across its rounds."""

    request: ChatRequest
    prompt_tokens: int
    stream: bool
    attempts: int = 0
    #: Whether the current attempt has shown text to the consumer.
    shown: bool = False
    #: Characters of answer the current attempt has streamed.
    streamed_chars: int = 0
    last_failed: str | None = None
    excluded: set[str] = field(default_factory=set)
    failed_attempts: list[tuple[str, str]] = field(default_factory=list)
    #: This call's place in an account's queue while it waits for budget.
    ticket: str = field(default_factory=lambda: secrets.token_hex(8))
    #: Admissions asked so far: numbers each reservation.
    asks: int = 0
    #: When the whole call must be over, on the dispatcher's clock (``give_up_after``
    #: from its start): attempts, retries, failovers and waits all count against it.
    deadline: float = math.inf
    #: Set when retrying stopped because the next round would begin past the deadline.
    gave_up: bool = False
    #: Seconds this call has waited in accounts' queues for budget (``max_wait`` bounds it).
    queued: float = 0.0
    #: Providers this call has been admitted to: another attempt on one is a retry.
    tried: set[str] = field(default_factory=set)
    #: Providers not retried because their account's retry budget is spent.
    budget_spent: set[str] = field(default_factory=set)


class Dispatcher:
    """Runs calls over the router's providers.

    Args:
        router: the providers with their breakers, limiters and health.
        retry: when and how long to back off. timeouts: how long an attempt may take.
        telemetry: counts everything. emit: publishes client events.
        activity: updated for ``status()``.
        state: where budgets, breakers and cool-downs live.
        rate_limiting: whether providers' ``x-ratelimit-*`` headers tighten budgets.
        max_wait: seconds a call may wait for budget in all before it fails
            (:class:`BudgetWaitExceeded`); a wait the store says is longer fails at once.
    """

    def __init__(
        self,
        router: Router,
        retry: RetryPolicy,
        *,
        timeouts: Timeouts,
        telemetry: Telemetry,
        emit: Callable[[ev.ClientEvent], None],
        activity: Activity,
        state: ProviderStateStore,
        rate_limiting: bool = True,
        max_wait: float = DEFAULT_MAX_WAIT,
        sleep: Sleep,
        rng: random.Random,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.router = router
        self.state = state
        self.rate_limiting = rate_limiting
        self.max_wait = max_wait
        self.retry = retry
        self.timeouts = timeouts
        self.telemetry = telemetry
        self.emit = emit
        self.activity = activity
        self.status = AttemptStatus(activity, emit)
        self.sleep = sleep
        self.rng = rng
        self.clock = clock

    async def run(self, call: Call) -> AsyncIterator[Item]:
        """The first round, then (only if it failed) tenacity's retry loop; all of it
        within the call's deadline (``give_up_after``). One generator: every token of a
        stream passes through it, so nothing here wraps another around it."""
        try:
            async for item in self._round(call):
                yield item
            return
        except AllProvidersFailed as exc:
            first_failure: AllProvidersFailed | None = exc
        retrying = AsyncRetrying(
            stop=retry_stop(self.retry) | _stop_past_deadline(call, self.clock),
            wait=backoff_wait(self.retry, self.rng),
            retry=retry_if_round_retryable(),
            sleep=self.sleep,
            before_sleep=lambda state: self._before_sleep(call, state),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    if first_failure is not None:
                        failure, first_failure = first_failure, None
                        raise failure
                    async for item in self._round(call):
                        yield item
        except AllProvidersFailed as exc:
            if not call.gave_up and self.clock() < call.deadline:
                raise
            raise self._out_of_time(call, exc) from exc

    def _out_of_time(self, call: Call, exc: AllProvidersFailed) -> AllProvidersFailed:
        """``exc``, saying that the request ran out of its time in all."""
        total = self.retry.give_up_after
        error = AllProvidersFailed(
            f"gave up after {total:g}s in all (give_up_after), {call.attempts} attempts: "
            f"{exc.message}",
            exc.failures,
            retry_after=exc.retry_after,
        )
        error.final = True
        return error

    def _remaining(self, call: Call) -> float:
        return call.deadline - self.clock()

    async def _round(self, call: Call) -> AsyncIterator[Item]:
        """Offer the request to each available provider once, in ranked order, moving
        on at once after a failure. Providers cooling down after a 429 are waited for
        (not counted as a failed round) when nothing else could be tried.

        Every token of a stream passes through each generator between the provider and
        the consumer, so an attempt is one generator (:mod:`.attempt`) iterated here
        directly; admission (:meth:`_candidates`) runs once per attempt."""
        while True:
            failures: list[ProviderFailure] = []
            async with aclosing(self._candidates(call, failures)) as candidates:
                async for slot, admitted in candidates:
                    try:
                        reply = None
                        # Closed here, not when the generator is collected: a consumer
                        # that stops at a yield must not leave a stream or a watchdog
                        # open, nor an error to the loop's handler in another task.
                        async with aclosing(self._attempt(slot, call)) as items:
                            async for item in items:
                                if isinstance(item, ProviderReply):
                                    reply = item
                                else:
                                    yield item
                        assert reply is not None
                        self.status.used(reply)
                    except ProviderError as exc:
                        said = await self._record_failure(slot, call, exc, admitted)
                        # x-should-retry: true makes even a 400 worth another round.
                        if not exc.fail_over and not exc.retryable:
                            raise
                        failures.append(ProviderFailure(slot.name, said))
                        continue
                    except BaseException:
                        await self._settle(slot, admitted, Settlement("neutral"))
                        raise
                    await self._settle(slot, admitted, self._success(slot, reply))
                    slot.health.record(True)
                    self.telemetry.attempt_finished(slot.name, ok=True)
                    yield Answer(reply, slot.name)
                    return
            cooling = _cooldown_wait(failures, call.excluded)
            if (
                cooling is None
                or cooling[1] > self.retry.max_retry_after
                or cooling[1] >= self._remaining(call)
            ):
                error = self._round_failed(failures, call)
                # A breaker that opened during this round leaves nobody to retry with,
                # nor does a spent retry budget: fail now rather than sleep a backoff
                # only to be refused.
                error.final = self._all_open(call) or self._none_left(call)
                raise error
            provider, wait = cooling
            self.telemetry.count("rate_limited")
            self._announce(ev.RateLimitWait(provider, wait))
            await self.sleep(wait)

    async def _candidates(
        self, call: Call, failures: list[ProviderFailure]
    ) -> AsyncGenerator[tuple[ProviderSlot, Admitted]]:
        """The providers to try this round, each admitted by the state store: first
        those with budget now, in ranked order; then those whose budget is spent, each
        waited for in the account's queue. A provider refused for its cool-down or its
        breaker is added to ``failures`` instead."""
        spent: list[tuple[float, int, ProviderSlot]] = []
        for index, slot in enumerate(self._order(call)):
            tokens = _estimate(slot, call)
            if self._too_large(slot, call, tokens, failures):
                continue
            draw = self.rng.random() if slot.policy.throttle_k > 0 else None
            decision = await self._admit(slot, call, tokens, ticket=None, draw=draw)
            if isinstance(decision, Refused):
                if decision.reason == "budget":
                    spent.append((decision.wait, index, slot))
                else:
                    self._skip(slot, call, decision, failures)
                continue
            self._note_failover(slot, call)
            yield slot, decision
        # Every provider with budget has been tried: queue for the one that frees first.
        for _, _, slot in sorted(spent, key=lambda item: item[:2]):
            admitted = await self._queue(slot, call, _estimate(slot, call), failures)
            if admitted is not None:
                self._note_failover(slot, call)
                yield slot, admitted

    async def _queue(
        self, slot: ProviderSlot, call: Call, tokens: int, failures: list[ProviderFailure]
    ) -> Admitted | None:
        """Wait in the account's queue until the budget admits the request (``None``
        when the provider stops being available meanwhile: a cool-down, its breaker).
        The call waits at most ``max_wait`` seconds for budget in all: past that, or
        told at once that the budget frees later than that, it fails
        (:class:`BudgetWaitExceeded`, exit 3), however the store's clock or state
        behaves."""
        announced = False
        started = self.clock()
        try:
            while True:
                decision = await self._admit(slot, call, tokens, ticket=call.ticket)
                if isinstance(decision, Admitted):
                    return decision
                if decision.reason != "budget":
                    self._skip(slot, call, decision, failures)
                    return None
                wait = decision.wait if math.isfinite(decision.wait) else math.inf
                waited = call.queued + self.clock() - started
                if waited >= self.max_wait or waited + wait > self.max_wait:
                    if not announced:  # one request is rate limited once, however it ends
                        self.telemetry.count("rate_limited")
                    raise self._budget_wait_exceeded(slot, call, failures, waited, wait)
                if not announced:
                    announced = True
                    self.telemetry.count("rate_limited")
                    self._announce(
                        ev.RateLimitWait(slot.name, wait, max_wait=self.max_wait - waited)
                    )
                remaining = self._remaining(call)
                if remaining <= 0 or wait > remaining:
                    # The request's time is up, or will be before this budget frees: no
                    # use waiting for it (the store's answer is when the oldest request
                    # leaves the window; only tokens given back free it sooner).
                    said = (
                        "waited for budget past the request's time"
                        if remaining <= 0
                        else f"budget frees in {wait:.0f}s, past the request's time in all"
                        f" ({remaining:.0f}s left of give_up_after)"
                    )
                    failures.append(
                        ProviderFailure(slot.name, RequestTimeout(said, provider=slot.name))
                    )
                    return None
                # Ask again at least every QUEUE_RECHECK seconds: that keeps the place in
                # the queue, and sees tokens other requests gave back.
                pause = min(wait, QUEUE_RECHECK, remaining, self.max_wait - waited)
                await self.sleep(max(pause, QUEUE_MIN_RECHECK))
        finally:
            call.queued += self.clock() - started

    def _budget_wait_exceeded(
        self,
        slot: ProviderSlot,
        call: Call,
        failures: list[ProviderFailure],
        waited: float,
        wait: float,
    ) -> BudgetWaitExceeded:
        frees = f" for {wait:.0f}s" if math.isfinite(wait) else ""
        detail = f"budget spent{frees}; waited {waited:.0f}s of max_wait {self.max_wait:g}s"
        # The others too: one may be out of the race for its retry budget, not its rate.
        others = []
        for failure in failures:
            said = failure.error.message
            if failure.provider in call.budget_spent and not isinstance(
                failure.error, RetryBudgetRefused
            ):
                said += "; not retried: the account's retry budget is spent"
            others.append(f"{failure.provider}: {said}")
        error = BudgetWaitExceeded(
            [*failures, ProviderFailure(slot.name, RateLimited(detail, provider=slot.name))],
            provider=slot.name,
            waited=waited,
            max_wait=self.max_wait,
            retry_after=wait if math.isfinite(wait) else None,
            others="; ".join(others),
        )
        log.info("gave up waiting %.1fs for %s's budget", waited, slot.name)
        return error

    async def _admit(
        self,
        slot: ProviderSlot,
        call: Call,
        tokens: int,
        *,
        ticket: str | None,
        draw: float | None = None,
    ) -> Admitted | Refused:
        call.asks += 1
        reservation = f"{call.ticket}.{call.asks}"
        decision = await self.state.admit(
            slot.account,
            slot.policy,
            tokens,
            reservation,
            ticket,
            draw=draw,
            retry=slot.name in call.tried,
        )
        self._transitions(slot, decision.transitions)
        if isinstance(decision, Refused):
            slot.learn_refusal(decision)
        else:
            call.tried.add(slot.name)
        return decision

    async def _settle(
        self, slot: ProviderSlot, admitted: Admitted, how: Settlement
    ) -> AccountView | None:
        """Report an attempt's end to the store, and return the account after it. Never
        raises: the answer (or the error being raised) matters more, and whatever is not
        settled expires on its own."""
        try:
            settled = await self.state.settle(slot.account, slot.policy, admitted, how)
        except Exception:
            log.exception("state store: settling an attempt on %s failed", slot.name)
            return None
        slot.learn(settled.view)
        self._transitions(slot, settled.transitions)
        return settled.view

    def _success(self, slot: ProviderSlot, reply: ProviderReply) -> Settlement:
        tokens = reply.usage.total_tokens if reply.usage is not None else None
        server = reply.rate_limit if self.rate_limiting else None
        return Settlement("success", tokens=tokens, server=server)

    def _too_large(
        self, slot: ProviderSlot, call: Call, tokens: int, failures: list[ProviderFailure]
    ) -> bool:
        """A request bigger than the whole token budget fails on that provider at once
        (nothing is sent; the request, not the provider, is at fault)."""
        tpm = slot.policy.tpm
        if tpm is None or tokens <= tpm:
            return False
        error = RequestTooLarge(
            f"request needs about {tokens} tokens but the budget is {tpm} tokens "
            "per minute; shorten the conversation or raise tpm",
            provider=slot.name,
        )
        self._note_attempt_failed(slot, call, error)
        call.excluded.add(slot.name)
        failures.append(ProviderFailure(slot.name, error))
        return True

    def _skip(
        self, slot: ProviderSlot, call: Call, refusal: Refused, failures: list[ProviderFailure]
    ) -> None:
        error: LLMError
        if refusal.reason in ("cooldown", "quota"):
            if refusal.reason == "quota":
                # Another process learnt it: this call fails over at once, and never
                # waits for the reset as if it were a cool-down, however near.
                call.excluded.add(slot.name)
            error = ProviderUnavailable(refusal.detail, provider=slot.name, retry_in=refusal.wait)
        elif refusal.reason == "throttled":
            self.emit(ev.Throttled(slot.name, refusal.chance))
            error = LocallyThrottled(refusal.detail, provider=slot.name, chance=refusal.chance)
        elif refusal.reason == "retry_budget":
            self._budget_spent(slot, call)
            error = RetryBudgetRefused(
                "not retried: the account's retry budget is spent", provider=slot.name
            )
        else:
            self.telemetry.count("circuit_breaker_blocks", slot.name)
            error = CircuitOpenError(refusal.detail, provider=slot.name, retry_in=refusal.wait)
        failures.append(ProviderFailure(slot.name, error))

    def _note_failover(self, slot: ProviderSlot, call: Call) -> None:
        if call.last_failed is not None and call.last_failed != slot.name:
            self.telemetry.count("failovers")
            reason = call.failed_attempts[-1][1] if call.failed_attempts else "failed"
            self.emit(ev.Failover(call.last_failed, slot.name, reason))

    def _transitions(self, slot: ProviderSlot, transitions: tuple[Transition, ...]) -> None:
        if not transitions:
            return
        slot.learn_transitions(transitions)
        for transition in transitions:
            log.info("circuit %s: %s -> %s", slot.name, transition.old, transition.new)
            self.emit(ev.BreakerTransition(slot.name, transition.old, transition.new))

    def _attempt(
        self, slot: ProviderSlot, call: Call
    ) -> AsyncGenerator[TextDelta | StreamRestart | ProviderReply]:
        """One attempt on one provider: text as it streams, then its reply."""
        provider = slot.provider
        # Tools native or written into the prompt: decided here, where the provider is known.
        request = request_for(provider, call.request)
        call.attempts += 1
        call.shown = False
        call.streamed_chars = 0
        self.status.started(slot.name, provider.model, call.attempts)
        timeouts = self._bounded(call)
        if not call.stream:
            return completed(provider, request, timeouts)
        chunks = provider.stream(request).__aiter__()
        first_byte = slot.first_byte_timeout
        guard = StreamGuard(slot.name, chunks, timeouts, first_byte, self.status, slot.health.clock)
        return streamed(guard, call)

    def _bounded(self, call: Call) -> Timeouts:
        """The attempt's timeouts, none of them past the call's deadline."""
        remaining = self._remaining(call)
        timeouts = self.timeouts
        if remaining >= timeouts.stream_deadline:
            return timeouts
        left = max(remaining, 0.001)
        return dataclasses.replace(timeouts, attempt=min(timeouts.attempt, left), deadline=left)

    # --- bookkeeping ----------------------------------------------------------------

    def _order(self, call: Call) -> list[ProviderSlot]:
        return [s for s in self.router.ranked() if s.name not in call.excluded]

    def _none_left(self, call: Call) -> bool:
        return all(slot.name in call.excluded for slot in self.router.slots)

    def _budget_spent(self, slot: ProviderSlot, call: Call) -> None:
        """The account allows no retry: this call leaves the provider alone."""
        log.info("retry budget spent for %s", slot.name)
        call.excluded.add(slot.name)
        call.budget_spent.add(slot.name)
        self.emit(ev.RetryBudgetSpent(slot.name))

    def _quota_of(self, exc: ProviderError) -> tuple[bool, float | None]:
        """Whether a failure says the account's quota is exhausted, and its reset
        (``None``: unknown): ``insufficient_quota`` and its kind, a 429 speaking of a
        quota with no reset, or any 429 whose Retry-After is beyond ``max_retry_after``
        (a far reset: Gemini's daily ``RESOURCE_EXHAUSTED``, say)."""
        if isinstance(exc, InsufficientQuota):
            return True, exc.reset_in
        if isinstance(exc, RateLimited):
            after = exc.retry_after
            if after is not None and after > self.retry.max_retry_after:
                return True, after
            if exc.quota and after is None:
                return True, None
        return False, None

    def _all_open(self, call: Call) -> bool:
        return all(
            slot.policy.breaker is not None and slot.breaker_state() == "OPEN"
            for slot in self.router.slots
            if slot.name not in call.excluded
        )

    def _note_attempt_failed(self, slot: ProviderSlot, call: Call, exc: ProviderError) -> None:
        # The kind and status only: a server's message may quote the prompt.
        log.info("attempt on %s failed: %s %s", slot.name, exc.kind, exc.status_code or "")
        call.failed_attempts.append((slot.name, exc.message))
        call.last_failed = slot.name

    async def _record_failure(
        self, slot: ProviderSlot, call: Call, exc: ProviderError, admitted: Admitted
    ) -> ProviderError:
        """Settle a failed attempt; returns the error to report for it (an exhausted
        quota with no reset is reported as :class:`InsufficientQuota`)."""
        self._note_attempt_failed(slot, call, exc)
        cooldown = 0.0
        quota, reset = self._quota_of(exc)
        if isinstance(exc, RateLimited):
            self.telemetry.count("rate_limited", slot.name)
            # Every process keeps off for the Retry-After, and at least the backoff's
            # floor: a tiny (or missing) one must not bring them all back at once.
            cooldown = max(exc.retry_after or 0.0, self.retry.base_delay)
        # The breaker judges the provider's health by what happened (5xx, timeout,
        # broken connection), whatever x-should-retry says about retrying; 4xx neutral.
        status = exc.status_code
        failed = isinstance(exc, TransientError) and (status is None or status >= 500)
        view = await self._settle(
            slot,
            admitted,
            Settlement(
                "failure" if failed else "neutral",
                tokens=_spent(call, exc),
                cooldown=cooldown,
                quota=(QUOTA_UNKNOWN_RESET if reset is None else reset) if quota else 0.0,
            ),
        )
        said: ProviderError = exc
        if quota:
            call.excluded.add(slot.name)
            self.emit(ev.QuotaExhausted(slot.name, reset, exc.message))
            if reset is None and not isinstance(exc, InsufficientQuota):
                said = InsufficientQuota(
                    f"{exc.message} (quota exhausted)",
                    provider=slot.name,
                    status_code=exc.status_code,
                )
        elif not exc.retryable:
            call.excluded.add(slot.name)
        elif view is not None and view.retry_budget is not None and view.retry_budget < 1:
            self._budget_spent(slot, call)
        slot.health.record(False)
        # Counted as a quota however it came: a 429 whose reset is beyond
        # max_retry_after stays RateLimited for the message, but is a quota.
        counted = said
        if quota and not isinstance(said, InsufficientQuota):
            counted = InsufficientQuota(
                said.message,
                provider=slot.name,
                status_code=said.status_code,
                retry_after=reset,
            )
        self.telemetry.attempt_finished(slot.name, ok=False, error=counted)
        return said

    def _round_failed(self, failures: list[ProviderFailure], call: Call) -> AllProvidersFailed:
        if not failures:
            return AllProvidersFailed("no provider is available", failures)
        spent = sorted(call.budget_spent & {f.provider for f in failures})
        if spent and self._none_left(call):
            summary = "; ".join(f"{f.provider}: {f.error.message}" for f in failures)
            return RetryBudgetExhausted(
                f"retry budget spent for {', '.join(spent)}: not retried (retries are "
                f"limited to {self.retry.retry_budget_ratio:.0%} of the account's recent "
                f"successes) ({summary})",
                failures,
            )
        waits = []
        for failure in failures:
            err = failure.error
            if isinstance(err, ProviderUnavailable):
                waits.append(err.retry_in)
            elif isinstance(err, ProviderError) and err.retryable:
                waits.append(err.retry_after or 0.0)
        retry_after = min(waits) if waits else None
        summary = "; ".join(f"{f.provider}: {f.error.message}" for f in failures)
        if retry_after is not None and retry_after > self.retry.max_retry_after:
            return RateLimitExhausted(
                f"rate limited: retry after {retry_after:.0f}s, more than "
                f"max_retry_after={self.retry.max_retry_after:.0f}s ({summary})",
                failures,
                retry_after=retry_after,
            )
        return AllProvidersFailed(
            f"all providers failed ({summary})", failures, retry_after=retry_after
        )

    def _before_sleep(self, call: Call, state: RetryCallState) -> None:
        self.telemetry.count("retries")
        call.last_failed = None
        outcome = state.outcome
        reason = "failed"
        if outcome is not None and outcome.failed:
            exc = outcome.exception()
            if isinstance(exc, AllProvidersFailed) and exc.failures:
                # Name a provider that was tried, rather than one skipped (circuit open,
                # cooling down), when there is one.
                tried = [f for f in exc.failures if isinstance(f.error, ProviderError)]
                last = (tried or exc.failures)[-1]
                reason = f"{last.provider}: {_short_reason(last.error)}"
        self._announce(
            ev.RetryScheduled(
                state.attempt_number, self.retry.max_retries, state.upcoming_sleep, reason
            )
        )

    def _announce(self, event: ev.ClientEvent) -> None:
        """Publish an event that is also what the client is doing now."""
        self.activity.doing = ev.describe(event)
        self.emit(event)


def _short_reason(error: LLMError) -> str:
    if isinstance(error, ProviderError) and error.status_code:
        label = {429: "rate limited", 529: "overloaded", 503: "unavailable"}.get(
            error.status_code, "server error" if error.status_code >= 500 else "error"
        )
        return f"{error.status_code} {label}"
    if isinstance(error, ProviderUnavailable):
        return "cooling down"
    # circuit_open_error -> "circuit open", request_timeout -> "request timeout"
    return error.kind.removesuffix("_error").replace("_", " ")


class _stop_past_deadline(stop_base):
    """Stop retrying when the next round would begin past the call's deadline."""

    def __init__(self, call: Call, clock: Callable[[], float]) -> None:
        self.call = call
        self.clock = clock

    def __call__(self, retry_state: RetryCallState) -> bool:
        upcoming = retry_state.upcoming_sleep or 0.0
        if self.clock() + upcoming < self.call.deadline:
            return False
        self.call.gave_up = True
        return True


def _cooldown_wait(failures: list[ProviderFailure], excluded: set[str]) -> tuple[str, float] | None:
    """When every failure of a scan is a provider cooling down or skipped by its
    breaker (nothing was attempted), the provider that cools down first and its wait;
    else ``None``. A provider the call has left (an exhausted quota) is not waited for:
    the next scan would not offer it the request."""
    if any(isinstance(f.error, ProviderError) for f in failures):
        return None
    cooling = [
        (f.error.retry_in, f.provider)
        for f in failures
        if isinstance(f.error, ProviderUnavailable) and f.provider not in excluded
    ]
    if not cooling:
        return None
    wait, provider = min(cooling)
    return provider, wait


def _spent(call: Call, error: ProviderError) -> int:
    """Tokens a failed attempt counts against the budget, instead of its whole
    reservation: none for a 429 (the server refused it), else the prompt (it was sent,
    and most providers count it) and whatever answer streamed before the failure."""
    if isinstance(error, RateLimited):
        return 0
    return call.prompt_tokens + estimate_chars_tokens(call.streamed_chars)


def _estimate(slot: ProviderSlot, call: Call) -> int:
    """Tokens to reserve: the prompt plus the most the answer may take."""
    request = call.request
    completion = request.max_tokens or slot.provider.max_tokens or DEFAULT_COMPLETION_ESTIMATE
    return call.prompt_tokens + completion
