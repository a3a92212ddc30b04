"""One logical call through breakers, limiters, retries and failover.

A call runs in *rounds*. A round offers the request to each available provider in
ranked order and moves on at once after a failure; only when a whole round has failed
does the call sleep (backoff, Retry-After as a floor) and start another, up to
``max_retries`` more. The first round runs bare; tenacity takes over only on failure,
with that round's outcome as its attempt 1, so every decision is still its own.

Everything is an async generator, so a stream's tokens travel from the provider to
the consumer in the consumer's own task: no hand-off between tasks per token. The
last item of a call is its :class:`Answer`.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from tenacity import AsyncRetrying, RetryCallState

from . import events as ev
from .breaker import BreakerState
from .errors import (
    AllProvidersFailed,
    CircuitOpenError,
    LLMError,
    ProviderError,
    ProviderFailure,
    ProviderUnavailable,
    RateLimited,
    RateLimitExhausted,
    RequestTimeout,
    RequestTooLarge,
    StreamInterrupted,
    TransientError,
    mid_answer,
)
from .retry import backoff_wait, retry_if_round_retryable, retry_stop
from .types import ChatRequest, ProviderReply, StreamRestart, TextDelta
from .watchdog import Watchdog

if TYPE_CHECKING:
    from .breaker import Permit
    from .router import ProviderSlot, Router
    from .settings import RetrySettings
    from .telemetry import Telemetry

log = logging.getLogger(__name__)

#: Completion tokens reserved for a request that sets no ``max_tokens``.
DEFAULT_COMPLETION_ESTIMATE = 1024

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
    last_failed: str | None = None
    excluded: set[str] = field(default_factory=set)
    failed_attempts: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Activity:
    """What a status bar shows of the client at work."""

    active: tuple[str, str] | None = None
    doing: str | None = None
    session_tokens: int = 0


class Dispatcher:
    """Runs calls over the router's providers.

    Args:
        router: the providers with their breakers, limiters and health.
        retry: backoff settings. timeout: seconds an attempt may take (non-streaming)
            or a stream may stay silent.
        telemetry: counts everything. emit: publishes client events.
        activity: updated for ``status()``.
    """

    def __init__(
        self,
        router: Router,
        retry: RetrySettings,
        *,
        timeout: float,
        telemetry: Telemetry,
        emit: Callable[[ev.ClientEvent], None],
        activity: Activity,
        sleep: Sleep,
        rng: random.Random,
    ) -> None:
        self.router = router
        self.retry = retry
        self.timeout = timeout
        self.telemetry = telemetry
        self.emit = emit
        self.activity = activity
        self.sleep = sleep
        self.rng = rng

    async def run(self, call: Call) -> AsyncIterator[Item]:
        """The first round, then (only if it failed) tenacity's retry loop."""
        try:
            async for item in self._round(call):
                yield item
            return
        except AllProvidersFailed as exc:
            first_failure: AllProvidersFailed | None = exc
        retrying = AsyncRetrying(
            stop=retry_stop(self.retry),
            wait=backoff_wait(self.retry, self.rng),
            retry=retry_if_round_retryable(),
            sleep=self.sleep,
            before_sleep=lambda state: self._before_sleep(call, state),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                if first_failure is not None:
                    failure, first_failure = first_failure, None
                    raise failure
                async for item in self._round(call):
                    yield item

    async def _round(self, call: Call) -> AsyncIterator[Item]:
        """Offer the request to each available provider once, in ranked order, moving
        on at once after a failure. Providers cooling down after a 429 are waited for
        (not counted as a failed round) when nothing else could be tried.

        Every token of a stream passes through each generator between the provider and
        the consumer, so the scan, the attempt and the stream are deliberately not
        split into more of them."""
        while True:
            failures: list[ProviderFailure] = []
            for slot in self._order(call):
                permit = self._admit(slot, call, failures)
                if permit is False:
                    continue
                try:
                    reply = None
                    async for item in self._attempt(slot, call):
                        if isinstance(item, ProviderReply):
                            reply = item
                        else:
                            yield item
                    assert reply is not None
                except ProviderError as exc:
                    self._record_failure(slot, call, exc, permit)
                    # x-should-retry: true makes even a 400 worth another round.
                    if not exc.fail_over and not exc.retryable:
                        raise
                    failures.append(ProviderFailure(slot.name, exc))
                    continue
                except BaseException:
                    if permit is not None:
                        permit.neutral()
                    raise
                if permit is not None:
                    permit.success()
                slot.health.record(True)
                self.telemetry.attempt_finished(slot.name, ok=True)
                yield Answer(reply, slot.name)
                return
            cooling = _cooldown_wait(failures)
            if cooling is None or cooling[1] > self.retry.max_retry_after:
                error = self._round_failed(failures)
                # A breaker that opened during this round leaves nobody to retry with:
                # fail now rather than sleep a backoff only to be refused.
                error.final = self._all_open(call)
                raise error
            provider, wait = cooling
            self.telemetry.count("rate_limited")
            self._announce(ev.RateLimitWait(provider, wait))
            await self.sleep(wait)

    def _admit(
        self, slot: ProviderSlot, call: Call, failures: list[ProviderFailure]
    ) -> Permit | Literal[False] | None:
        """Whether ``slot`` may be tried now: its breaker permit (``None`` without a
        breaker), or ``False`` with the reason added to ``failures``."""
        cooldown = slot.health.cooldown_remaining()
        if cooldown > 0:
            failures.append(ProviderFailure(slot.name, _cooling(slot.name, cooldown)))
            return False
        permit = None
        if slot.breaker is not None:
            try:
                permit = slot.breaker.acquire()
            except CircuitOpenError as exc:
                self.telemetry.count("circuit_breaker_blocks")
                failures.append(ProviderFailure(slot.name, exc))
                return False
        if call.last_failed is not None and call.last_failed != slot.name:
            self.telemetry.count("failovers")
            reason = call.failed_attempts[-1][1] if call.failed_attempts else "failed"
            self.emit(ev.Failover(call.last_failed, slot.name, reason))
        return permit

    async def _attempt(
        self, slot: ProviderSlot, call: Call
    ) -> AsyncIterator[TextDelta | StreamRestart | ProviderReply]:
        """One attempt on one provider: text as it streams, then its reply."""
        reservation = None
        if slot.limiter is not None:
            tokens = _estimate(slot, call)
            slot.limiter.check(tokens)
            delay = slot.limiter.time_until_available(tokens)
            if delay > 0:
                self.telemetry.count("rate_limited")
                self._announce(ev.RateLimitWait(slot.name, delay))
            reservation = await slot.limiter.acquire(tokens)
        provider = slot.provider
        call.attempts += 1
        self.activity.active = (slot.name, provider.model)
        self.activity.doing = None
        self.emit(ev.AttemptStarted(slot.name, provider.model, call.attempts))
        call.shown = False
        if call.stream:
            error: ProviderError | None = None
            chunks = provider.stream(call.request).__aiter__()
            try:
                with Watchdog(self.timeout) as watchdog:
                    while True:
                        watchdog.waiting()
                        try:
                            chunk = await chunks.__anext__()
                        except StopAsyncIteration:
                            error = StreamInterrupted(
                                "stream ended without a final reply", provider=slot.name
                            )
                            break
                        except ProviderError as exc:
                            error = exc
                            break
                        except asyncio.CancelledError:
                            if not watchdog.expired():
                                raise
                            error = RequestTimeout(
                                f"no data for {self.timeout:g}s", provider=slot.name
                            )
                            break
                        finally:
                            watchdog.received()
                        if not isinstance(chunk, TextDelta):
                            reply = chunk
                            break
                        yield chunk
                        call.shown = True
            finally:
                await _close(chunks)
            if error is not None:
                if call.shown:
                    # The consumer has shown text that is now void: say so before retrying.
                    yield StreamRestart(slot.name, error.message)
                    error = mid_answer(error)
                raise error
        else:
            try:
                async with asyncio.timeout(self.timeout):
                    reply = await provider.chat(call.request)
            except TimeoutError as exc:
                raise RequestTimeout(
                    f"no answer within {self.timeout:g}s", provider=slot.name
                ) from exc
        if reservation is not None:
            if reply.usage is not None:
                reservation.reconcile(reply.usage.total_tokens)
            if reply.rate_limit is not None and slot.limiter is not None:
                slot.limiter.observe(reply.rate_limit)
        if reply.usage is not None:
            self.activity.session_tokens += reply.usage.total_tokens
        yield reply

    # --- bookkeeping ----------------------------------------------------------------

    def _order(self, call: Call) -> list[ProviderSlot]:
        ranked = [s for s in self.router.ranked() if s.name not in call.excluded]
        # A provider with budget now goes before one that would make the request wait.
        ready = [
            s
            for s in ranked
            if s.limiter is None or s.limiter.time_until_available(_estimate(s, call)) <= 0
        ]
        return ready + [s for s in ranked if s not in ready]

    def _all_open(self, call: Call) -> bool:
        return all(
            slot.breaker is not None and slot.breaker.state is BreakerState.OPEN
            for slot in self.router.slots
            if slot.name not in call.excluded
        )

    def _record_failure(
        self, slot: ProviderSlot, call: Call, exc: ProviderError, permit: Permit | None
    ) -> None:
        # The kind and status only: a server's message may quote the prompt.
        log.info("attempt on %s failed: %s %s", slot.name, exc.kind, exc.status_code or "")
        call.failed_attempts.append((slot.name, exc.message))
        call.last_failed = slot.name
        if isinstance(exc, RequestTooLarge):
            # Nothing was sent: the request, not the provider, is at fault.
            call.excluded.add(slot.name)
            if permit is not None:
                permit.neutral()
            return
        if isinstance(exc, RateLimited):
            self.telemetry.count("rate_limited")
            if exc.retry_after:
                slot.health.cool_down(exc.retry_after)
        if permit is not None:
            # The breaker judges the provider's health by what happened (5xx, timeout,
            # broken connection), whatever x-should-retry says about retrying.
            status = exc.status_code
            if isinstance(exc, TransientError) and (status is None or status >= 500):
                permit.failure()  # 5xx, timeouts, connections, broken streams; 4xx neutral
            else:
                permit.neutral()
        if not exc.retryable:
            call.excluded.add(slot.name)
        slot.health.record(False)
        self.telemetry.attempt_finished(slot.name, ok=False)

    def _round_failed(self, failures: list[ProviderFailure]) -> AllProvidersFailed:
        if not failures:
            return AllProvidersFailed("no provider is available", failures)
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
                reason = _short_reason(exc.failures[-1].error)
        self._announce(
            ev.RetryScheduled(
                state.attempt_number, self.retry.max_retries, state.upcoming_sleep, reason
            )
        )

    def _announce(self, event: ev.ClientEvent) -> None:
        """Publish an event that is also what the client is doing now."""
        self.activity.doing = ev.describe(event)
        self.emit(event)


async def _close(chunks: AsyncIterator[Any]) -> None:
    aclose = getattr(chunks, "aclose", None)
    if aclose is not None:
        await aclose()


def _short_reason(error: LLMError) -> str:
    if isinstance(error, ProviderError) and error.status_code:
        label = {429: "rate limited", 529: "overloaded", 503: "unavailable"}.get(
            error.status_code, "server error" if error.status_code >= 500 else "error"
        )
        return f"{error.status_code} {label}"
    return error.kind.replace("_", " ")


def _cooldown_wait(failures: list[ProviderFailure]) -> tuple[str, float] | None:
    """When every failure of a scan is a provider cooling down or skipped by its
    breaker (nothing was attempted), the provider that cools down first and its wait;
    else ``None``."""
    if any(isinstance(f.error, ProviderError) for f in failures):
        return None
    cooling = [
        (f.error.retry_in, f.provider) for f in failures if isinstance(f.error, ProviderUnavailable)
    ]
    if not cooling:
        return None
    wait, provider = min(cooling)
    return provider, wait


def _cooling(name: str, remaining: float) -> ProviderUnavailable:
    return ProviderUnavailable(
        f"rate limited; cooling down for {remaining:.1f}s", provider=name, retry_in=remaining
    )


def _estimate(slot: ProviderSlot, call: Call) -> int:
    """Tokens to reserve: the prompt plus the most the answer may take."""
    request = call.request
    completion = request.max_tokens or slot.provider.max_tokens or DEFAULT_COMPLETION_ESTIMATE
    return call.prompt_tokens + completion
