"""``LLMClient``: one logical call through breaker, limiter, retries and failover.

A call is run in *rounds* by tenacity. A round offers the request to each available
provider in ranked order and moves on at once after a failure; only when a whole
round has failed does the client sleep (backoff, Retry-After as a floor) and start
another. Providers whose breaker is open or who are cooling down after a 429 are
skipped without a network call. Everything is counted in :class:`Telemetry` and
announced to listeners as :mod:`events <qwen_dev_cli.core.events>`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from tenacity import AsyncRetrying, RetryCallState

from . import events as ev
from .breaker import BreakerState, CircuitBreaker
from .channel import Channel
from .errors import (
    AllProvidersFailed,
    CircuitOpenError,
    LLMError,
    NoProviderConfigured,
    ProviderError,
    ProviderFailure,
    ProviderUnavailable,
    RateLimited,
    RateLimitExhausted,
    RequestTimeout,
    RequestTooLarge,
    StreamInterrupted,
)
from .limiter import RateLimiter
from .retry import backoff_wait, retry_if_round_retryable, retry_stop
from .router import ProviderHealth, ProviderSlot, Router
from .settings import BreakerSettings, ClientSettings, ProviderSettings, RetrySettings
from .status import ClientStatus, ProviderStatus
from .telemetry import Telemetry
from .tokens import estimate_prompt_tokens, estimate_text_tokens
from .types import (
    ChatRequest,
    ChatResult,
    Message,
    ProviderReply,
    StreamEnd,
    StreamEvent,
    StreamRestart,
    TextDelta,
    ToolSpec,
    Usage,
)

if TYPE_CHECKING:
    import httpx

    from .providers.base import Provider

log = logging.getLogger(__name__)

#: Completion tokens reserved for a request that sets no ``max_tokens``.
DEFAULT_COMPLETION_ESTIMATE = 1024

Sleep = Callable[[float], Awaitable[None]]
Sink = Callable[[StreamEvent], None]


class _HasClientSettings(Protocol):
    @property
    def client(self) -> ClientSettings: ...


@dataclass
class _Call:
    """The state of one logical call across its rounds."""

    request: ChatRequest
    prompt_tokens: int
    sink: Sink | None = None
    attempts: int = 0
    rounds: int = 0
    #: Whether the current attempt has shown text to the consumer.
    shown: bool = False
    last_failed: str | None = None
    excluded: set[str] = field(default_factory=set)
    failed_attempts: list[tuple[str, str]] = field(default_factory=list)


class LLMClient:
    """A resilient chat client over one or more providers, in failover priority order.

    Args:
        providers: :class:`Provider` objects, or :class:`ProviderSettings` to build
            OpenAI-compatible ones from.
        max_retries: rounds retried after the first (each round tries every provider).
        base_delay, max_delay: backoff ``min(base_delay * 2**n, max_delay)`` plus jitter.
        timeout: seconds an attempt may take (non-streaming), or wait for the next chunk
            (streaming), whatever the provider's own timeouts.
        max_retry_after: a Retry-After longer than this is not slept: fail over or fail.
        jitter: ``"proportional"`` (+10-30 %) or ``"full"`` (AWS Full Jitter).
        enable_circuit_breaker, failure_threshold, recovery_timeout, half_open_max_calls:
            one breaker per provider.
        enable_rate_limiting, requests_per_minute, tokens_per_minute: a sliding-window
            limiter per provider; these budgets apply to providers passed as objects
            (settings carry their own ``rpm``/``tpm``). ``None``: unlimited, though the
            provider's ``x-ratelimit-*`` headers are still obeyed.
        enable_telemetry: count requests, latencies and tokens.
        transport: an httpx transport for providers built from settings (tests).
        clock, sleep, rng: injectable time, sleeping and randomness.
    """

    def __init__(
        self,
        providers: Sequence[Provider | ProviderSettings],
        *,
        max_retries: int = 3,
        base_delay: float = 1.0,
        max_delay: float = 60.0,
        timeout: float = 60.0,
        max_retry_after: float = 60.0,
        jitter: str = "proportional",
        enable_circuit_breaker: bool = True,
        failure_threshold: int = 5,
        recovery_timeout: float = 60.0,
        half_open_max_calls: int = 3,
        enable_rate_limiting: bool = True,
        requests_per_minute: int | None = None,
        tokens_per_minute: int | None = None,
        enable_telemetry: bool = True,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if not providers:
            raise NoProviderConfigured("no provider is configured")
        if jitter not in ("proportional", "full"):
            raise ValueError(f"jitter must be 'proportional' or 'full', not {jitter!r}")
        self.retry = RetrySettings(
            max_retries=max_retries,
            base_delay=base_delay,
            max_delay=max_delay,
            max_retry_after=max_retry_after,
            jitter="full" if jitter == "full" else "proportional",
        )
        self.timeout = timeout
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._listeners: list[ev.EventListener] = []
        self.telemetry = Telemetry(state_of=self._state_name, enabled=enable_telemetry)
        self._session_tokens = 0
        self._active: tuple[str, str] | None = None
        self._activity: str | None = None
        slots = []
        for priority, item in enumerate(providers):
            provider, rpm, tpm = _provider_of(
                item, requests_per_minute, tokens_per_minute, transport
            )
            slot = ProviderSlot(provider, priority, ProviderHealth(clock=clock))
            if enable_circuit_breaker:
                slot.breaker = CircuitBreaker(
                    failure_threshold,
                    recovery_timeout,
                    half_open_max_calls,
                    name=provider.name,
                    clock=clock,
                    on_transition=self._on_transition,
                )
            if enable_rate_limiting:
                slot.limiter = RateLimiter(rpm, tpm, clock=clock, sleep=sleep, name=provider.name)
            self.telemetry.register_provider(provider.name)
            slots.append(slot)
        names = [slot.name for slot in slots]
        if len(set(names)) != len(names):
            raise ValueError(f"provider names must be unique: {names}")
        self._router = Router(slots)

    @classmethod
    def from_settings(
        cls,
        settings: ClientSettings | _HasClientSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> LLMClient:
        """Build the client the configuration describes (``load_settings()``'s result or
        its ``.client``), exactly as the CLI does."""
        client_settings = settings if isinstance(settings, ClientSettings) else settings.client
        breaker: BreakerSettings = client_settings.circuit_breaker
        retry = client_settings.retry
        return cls(
            list(client_settings.providers),
            max_retries=retry.max_retries,
            base_delay=retry.base_delay,
            max_delay=retry.max_delay,
            max_retry_after=retry.max_retry_after,
            jitter=retry.jitter,
            timeout=max((p.timeout for p in client_settings.providers), default=60.0),
            enable_circuit_breaker=breaker.enabled,
            failure_threshold=breaker.failure_threshold,
            recovery_timeout=breaker.recovery_timeout,
            half_open_max_calls=breaker.half_open_max_calls,
            enable_rate_limiting=client_settings.rate_limit_enabled,
            enable_telemetry=client_settings.telemetry_enabled,
            transport=transport,
            clock=clock,
            sleep=sleep,
            rng=rng,
        )

    # --- public API -----------------------------------------------------------------

    @property
    def providers(self) -> list[Provider]:
        return [slot.provider for slot in self._router.slots]

    def subscribe(self, listener: ev.EventListener) -> Callable[[], None]:
        """Call ``listener`` with every :mod:`event <qwen_dev_cli.core.events>`; returns
        a function that unsubscribes it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    async def chat(
        self,
        messages: list[Message],
        tools: list[ToolSpec] | None = None,
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> ChatResult:
        """One complete answer, after retries and failover as needed."""
        request = ChatRequest(messages, tools, max_tokens, temperature)
        return await self._run(request, sink=None)

    async def stream(
        self,
        messages: list[Message],
        tools: list[ToolSpec] | None = None,
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> AsyncIterator[StreamEvent]:
        """Text deltas as they arrive, a :class:`StreamRestart` whenever a broken attempt
        voids the text shown so far, and a final :class:`StreamEnd` with the complete
        answer. Errors are raised as by :meth:`chat`."""
        request = ChatRequest(messages, tools, max_tokens, temperature)
        channel: Channel[StreamEvent | BaseException] = Channel()

        async def produce() -> None:
            try:
                result = await self._run(request, sink=channel.put)
            except asyncio.CancelledError:
                raise
            except BaseException as exc:  # handed to the consumer, which raises it
                channel.put(exc)
            else:
                channel.put(StreamEnd(result))

        task = asyncio.create_task(produce())
        try:
            while True:
                item = await channel.get()
                if isinstance(item, BaseException):
                    raise item
                yield item
                if isinstance(item, StreamEnd):
                    return
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    def get_metrics(self) -> dict[str, Any]:
        """The telemetry snapshot (DESIGN section 5 schema)."""
        return self.telemetry.snapshot()

    def reset_metrics(self) -> None:
        self.telemetry.reset()
        for slot in self._router.slots:
            self.telemetry.register_provider(slot.name)

    def reset_circuit_breaker(self, name: str | None = None) -> None:
        """Close one provider's breaker (and end its cool-down), or every provider's."""
        for slot in self._router.slots:
            if name is None or slot.name == name:
                if slot.breaker is not None:
                    slot.breaker.reset()
                slot.health.cooldown_until = 0.0

    def status(self) -> ClientStatus:
        """Breaker states, cool-downs and budgets now: what a status bar shows."""
        providers = []
        for slot in self._router.slots:
            rpm_left, tpm_left = slot.limiter.remaining() if slot.limiter else (None, None)
            providers.append(
                ProviderStatus(
                    name=slot.name,
                    model=slot.provider.model,
                    state=self._state_name(slot.name),
                    retry_in=slot.breaker.retry_in() if slot.breaker else 0.0,
                    cooldown=slot.health.cooldown_remaining(),
                    rpm_limit=slot.limiter.rpm if slot.limiter else None,
                    rpm_left=rpm_left,
                    tpm_limit=slot.limiter.tpm if slot.limiter else None,
                    tpm_left=tpm_left,
                    success_rate=slot.health.success_rate(),
                )
            )
        return ClientStatus(
            providers=providers,
            active_provider=self._active[0] if self._active else None,
            active_model=self._active[1] if self._active else None,
            activity=self._activity,
            session_tokens=self._session_tokens,
        )

    async def aclose(self) -> None:
        for slot in self._router.slots:
            await slot.provider.aclose()

    async def __aenter__(self) -> LLMClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # --- one logical call -----------------------------------------------------------

    async def _run(self, request: ChatRequest, sink: Sink | None) -> ChatResult:
        started = self._clock()
        call = _Call(request, estimate_prompt_tokens(request.messages, request.tools), sink)
        try:
            reply, provider = await self._rounds(call)
        except LLMError:
            self._finish(started, ok=False, tokens=0)
            raise
        finally:
            self._activity = None
        usage = reply.usage or Usage(
            call.prompt_tokens,
            estimate_text_tokens(reply.text),
            call.prompt_tokens + estimate_text_tokens(reply.text),
        )
        latency_ms = (self._clock() - started) * 1000.0
        self._finish(started, ok=True, tokens=usage.total_tokens)
        return ChatResult(
            text=reply.text,
            tool_calls=reply.tool_calls,
            usage=usage,
            provider=provider,
            model=reply.model,
            attempts=call.attempts,
            latency_ms=latency_ms,
            finish_reason=reply.finish_reason,
            failed_attempts=call.failed_attempts,
        )

    async def _rounds(self, call: _Call) -> tuple[ProviderReply, str]:
        """The first round, then (only if it failed) tenacity's retry loop."""
        try:
            return await self._round(call)
        except AllProvidersFailed as exc:
            first_failure: AllProvidersFailed | None = exc
        # The happy path skips building a retry loop (tenacity costs ~25 us a call); on
        # failure, tenacity takes over with the first round's outcome as its attempt 1,
        # so every decision (retry?, how long?, stop?) is still its own.

        async def next_round() -> tuple[ProviderReply, str]:
            nonlocal first_failure
            if first_failure is not None:
                failure, first_failure = first_failure, None
                raise failure
            return await self._round(call)

        retrying = AsyncRetrying(
            stop=retry_stop(self.retry),
            wait=backoff_wait(self.retry, self._rng),
            retry=retry_if_round_retryable(),
            sleep=self._sleep,
            before_sleep=lambda state: self._before_sleep(call, state),
            reraise=True,
        )
        result: tuple[ProviderReply, str] = await retrying(next_round)
        return result

    async def _round(self, call: _Call) -> tuple[ProviderReply, str]:
        """Offer the request to each available provider once. Providers cooling down
        after a 429 are waited for (not counted as a failed round) when nothing else
        could be tried."""
        call.rounds += 1
        while True:
            failures: list[ProviderFailure] = []
            answer = await self._scan(call, failures)
            if answer is not None:
                return answer
            cooling = _cooldown_wait(failures)
            if cooling is None or cooling[1] > self.retry.max_retry_after:
                raise self._round_failed(failures)
            provider, wait = cooling
            self.telemetry.count("rate_limited")
            event = ev.RateLimitWait(provider, wait)
            self._activity = ev.describe(event)
            self._emit(event)
            await self._sleep(wait)

    async def _scan(
        self, call: _Call, failures: list[ProviderFailure]
    ) -> tuple[ProviderReply, str] | None:
        for slot in self._order(call):
            cooldown = slot.health.cooldown_remaining()
            if cooldown > 0:
                failures.append(ProviderFailure(slot.name, _cooling(slot.name, cooldown)))
                continue
            permit = None
            if slot.breaker is not None:
                try:
                    permit = slot.breaker.acquire()
                except CircuitOpenError as exc:
                    self.telemetry.count("circuit_breaker_blocks")
                    failures.append(ProviderFailure(slot.name, exc))
                    continue
            if call.last_failed is not None and call.last_failed != slot.name:
                self.telemetry.count("failovers")
                reason = call.failed_attempts[-1][1] if call.failed_attempts else "failed"
                self._emit(ev.Failover(call.last_failed, slot.name, reason))
            try:
                reply = await self._attempt(slot, call)
            except ProviderError as exc:
                self._record_failure(slot, call, exc, permit)
                if not exc.fail_over:
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
            return reply, slot.name
        return None

    async def _attempt(self, slot: ProviderSlot, call: _Call) -> ProviderReply:
        provider = slot.provider
        request = call.request
        reservation = None
        if slot.limiter is not None:
            tokens = _estimate(slot, call)
            slot.limiter.check(tokens)
            delay = slot.limiter.time_until_available(tokens)
            if delay > 0:
                self.telemetry.count("rate_limited")
                wait = ev.RateLimitWait(slot.name, delay)
                self._activity = ev.describe(wait)
                self._emit(wait)
            reservation = await slot.limiter.acquire(tokens)
        call.attempts += 1
        self._active = (slot.name, provider.model)
        self._activity = None
        self._emit(ev.AttemptStarted(slot.name, provider.model, call.attempts))
        call.shown = False
        try:
            async with asyncio.timeout(None) as deadline:
                if call.sink is None:
                    deadline.reschedule(self._deadline())
                    reply = await provider.chat(request)
                else:
                    reply = await self._stream_attempt(provider, call, deadline)
        except TimeoutError as exc:
            error = RequestTimeout(f"no answer within {self.timeout:.0f}s", provider=slot.name)
            raise self._interrupted(call, error) from exc
        if reservation is not None:
            if reply.usage is not None:
                reservation.reconcile(reply.usage.total_tokens)
            if reply.rate_limit is not None and slot.limiter is not None:
                slot.limiter.observe(reply.rate_limit)
        if reply.usage is not None:
            self._session_tokens += reply.usage.total_tokens
        return reply

    async def _stream_attempt(
        self, provider: Provider, call: _Call, deadline: asyncio.Timeout
    ) -> ProviderReply:
        assert call.sink is not None
        sink = call.sink
        now = asyncio.get_running_loop().time
        timeout = self.timeout
        # The deadline is pushed back only once a tenth of it is used up, not per chunk:
        # re-arming a timer for every token was a tenth of the streaming cost. The
        # allowed silence between chunks is therefore between 0.9 and 1.0 of timeout.
        slack = timeout * 0.9
        deadline.reschedule(now() + timeout)
        try:
            async for chunk in provider.stream(call.request):
                if isinstance(chunk, TextDelta):
                    call.shown = True
                    sink(chunk)
                    moment = now()
                    if (deadline.when() or moment) - moment < slack:
                        deadline.reschedule(moment + timeout)
                else:
                    return chunk
        except ProviderError as exc:
            raise self._interrupted(call, exc) from exc
        raise self._interrupted(
            call, StreamInterrupted("stream ended without a final reply", provider=provider.name)
        )

    def _interrupted(self, call: _Call, error: ProviderError) -> ProviderError:
        """After text was shown, tell the consumer to discard it, and report the failure
        as an interrupted stream; before, report it as it is."""
        if not call.shown or call.sink is None:
            return error
        call.sink(StreamRestart(error.provider or "", error.message))
        if isinstance(error, StreamInterrupted):
            return error
        return StreamInterrupted(
            f"stream broke off mid-answer: {error.message}",
            provider=error.provider,
            status_code=error.status_code,
            after_first_token=True,
        )

    # --- helpers --------------------------------------------------------------------

    def _order(self, call: _Call) -> list[ProviderSlot]:
        ranked = [s for s in self._router.ranked() if s.name not in call.excluded]
        # A provider with budget now goes before one that would make the request wait.
        ready = [
            s
            for s in ranked
            if s.limiter is None or s.limiter.time_until_available(_estimate(s, call)) <= 0
        ]
        return ready + [s for s in ranked if s not in ready]

    def _record_failure(
        self, slot: ProviderSlot, call: _Call, exc: ProviderError, permit: Any
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
            if exc.retryable and not isinstance(exc, RateLimited):
                permit.failure()
            else:
                permit.neutral()
        if not exc.retryable:
            call.excluded.add(slot.name)
        slot.health.record(False)
        self.telemetry.attempt_finished(slot.name, ok=False)

    def _round_failed(self, failures: list[ProviderFailure]) -> AllProvidersFailed:
        waits = []
        for failure in failures:
            err = failure.error
            if isinstance(err, ProviderUnavailable):
                waits.append(err.retry_in)
            elif isinstance(err, ProviderError) and err.retryable:
                waits.append(err.retry_after or 0.0)
        retry_after = min(waits) if waits else None
        summary = "; ".join(f"{f.provider}: {f.error.message}" for f in failures)
        if not failures:
            return AllProvidersFailed("no provider is available", failures)
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

    def _before_sleep(self, call: _Call, state: RetryCallState) -> None:
        self.telemetry.count("retries")
        call.last_failed = None
        outcome = state.outcome
        reason = "failed"
        if outcome is not None and outcome.failed:
            exc = outcome.exception()
            if isinstance(exc, AllProvidersFailed) and exc.failures:
                reason = _short_reason(exc.failures[-1].error)
        event = ev.RetryScheduled(
            state.attempt_number, self.retry.max_retries, state.upcoming_sleep, reason
        )
        self._activity = ev.describe(event)
        self._emit(event)

    def _deadline(self) -> float:
        return asyncio.get_running_loop().time() + self.timeout

    def _finish(self, started: float, *, ok: bool, tokens: int) -> None:
        latency_ms = (self._clock() - started) * 1000.0
        self.telemetry.request_finished(ok=ok, latency_ms=latency_ms, tokens=tokens)

    def _emit(self, event: ev.ClientEvent) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:  # a broken listener must not break the request
                log.exception("event listener failed")

    def _on_transition(self, name: str, old: BreakerState, new: BreakerState) -> None:
        self._emit(ev.BreakerTransition(name, old.value, new.value))

    def _state_name(self, name: str) -> str:
        slot = self._router.get(name)
        if slot is None or slot.breaker is None:
            return BreakerState.CLOSED.value
        return slot.breaker.state.value


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


def _estimate(slot: ProviderSlot, call: _Call) -> int:
    """Tokens to reserve: the prompt plus the most the answer may take."""
    request = call.request
    completion = request.max_tokens or slot.provider.max_tokens or DEFAULT_COMPLETION_ESTIMATE
    return call.prompt_tokens + completion


def _provider_of(
    item: Provider | ProviderSettings,
    rpm: int | None,
    tpm: int | None,
    transport: httpx.AsyncBaseTransport | None,
) -> tuple[Provider, int | None, int | None]:
    if isinstance(item, ProviderSettings):
        from .providers.factory import build_provider

        return build_provider(item, transport=transport), item.rpm, item.tpm
    return item, rpm, tpm
