"""``LLMClient``: the public face of the resilient client.

It builds a breaker, a limiter and a health record for each provider, and hands each
call to the :class:`~qwen_dev_cli.core.dispatch.Dispatcher` (rounds, retries,
failover). Everything is counted in :class:`Telemetry` and announced to listeners as
:mod:`events <qwen_dev_cli.core.events>`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING, Any, Final, Protocol

from . import events as ev
from .account import WINDOW_GUARD, AccountPolicy, BreakerPolicy
from .dispatch import DEFAULT_MAX_WAIT, Answer, Call, Dispatcher, Sleep
from .errors import LLMError, NoProviderConfigured
from .limiter import RateLimits
from .retry import RetryPolicy
from .router import ProviderHealth, ProviderSlot, Router
from .settings import ClientSettings, ProviderSettings
from .state import FallbackStore, MemoryStore, account_key
from .status import Activity, ClientStatus, ProviderStatus
from .telemetry import Telemetry
from .tokens import estimate_chars_tokens, estimate_prompt_tokens
from .types import (
    ChatRequest,
    ChatResult,
    Message,
    StreamEnd,
    StreamEvent,
    TextDelta,
    TextTools,
    ToolSpec,
    Usage,
)
from .watchdog import Timeouts

if TYPE_CHECKING:
    import httpx

    from .providers.base import Provider
    from .state import ProviderStateStore

#: Seconds a status read from the state store is shown before it is refreshed.
STATUS_MAX_AGE = 0.5
#: Seconds a stream may be slow to begin before the status says who is being waited for.
WAITING_SHOWN_AFTER = 3.0

# The defaults of each concern (frozen, so one object serves every client).
DEFAULT_RETRY: Final = RetryPolicy()
DEFAULT_BREAKER: Final = BreakerPolicy()
DEFAULT_RATE_LIMITS: Final = RateLimits()
DEFAULT_TIMEOUTS: Final = Timeouts()

log = logging.getLogger(__name__)


class _HasClientSettings(Protocol):
    @property
    def client(self) -> ClientSettings: ...


class LLMClient:
    """A resilient chat client over one or more providers, in failover priority order.

    Each concern is one small object, checked when it is made (``ValueError``), with
    today's defaults when left out; ``None`` turns a concern off::

        LLMClient(providers, retry=RetryPolicy(max_retries=5), breaker=None)

    Args:
        providers: :class:`Provider` objects, or :class:`ProviderSettings` to build
            OpenAI-compatible ones from.
        retry: when a failed round is retried, and how long the client backs off
            (:class:`~qwen_dev_cli.core.retry.RetryPolicy`).
        breaker: one circuit breaker per provider
            (:class:`~qwen_dev_cli.core.account.BreakerPolicy`); ``None``: none.
        rate_limits: budgets for providers passed as objects
            (:class:`~qwen_dev_cli.core.limiter.RateLimits`); ``None``: no rate limiting
            at all, the providers' ``x-ratelimit-*`` headers and their settings'
            ``rpm``/``tpm`` included.
        timeouts: how long an attempt may take (:class:`~qwen_dev_cli.core.watchdog.Timeouts`).
        telemetry: count requests, latencies and tokens.
        transport: an httpx transport for providers built from settings (tests).
        state: where budgets, breakers and cool-downs live
            (:class:`~qwen_dev_cli.core.state.ProviderStateStore`); default a
            :class:`~qwen_dev_cli.core.state.MemoryStore` of this client's own. A shared
            store passed bare is wrapped in a
            :class:`~qwen_dev_cli.core.state.FallbackStore`, so its failures never cost
            an answer. The caller closes a store it passes.
        max_wait: seconds a request may wait for a provider's budget in all, then it
            fails (:class:`~qwen_dev_cli.core.errors.BudgetWaitExceeded`).
        clock, sleep, rng: injectable time, sleeping and randomness.
    """

    def __init__(
        self,
        providers: Sequence[Provider | ProviderSettings],
        *,
        retry: RetryPolicy = DEFAULT_RETRY,
        breaker: BreakerPolicy | None = DEFAULT_BREAKER,
        rate_limits: RateLimits | None = DEFAULT_RATE_LIMITS,
        timeouts: Timeouts = DEFAULT_TIMEOUTS,
        telemetry: bool = True,
        transport: httpx.AsyncBaseTransport | None = None,
        state: ProviderStateStore | None = None,
        max_wait: float = DEFAULT_MAX_WAIT,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if not providers:
            raise NoProviderConfigured("no provider is configured")
        if not max_wait > 0:  # NaN is not either
            raise ValueError(f"max_wait must be a number of seconds above 0, not {max_wait!r}")
        self.retry = retry
        self.timeouts = timeouts
        self._clock = clock
        self._listeners: list[ev.EventListener] = []
        self.telemetry = Telemetry(state_of=self._state_name, enabled=telemetry, clock=clock)
        self._listeners.append(self.telemetry.observe)
        self._activity = Activity()
        if state is None:
            state = MemoryStore(clock=clock)
        elif not isinstance(state, MemoryStore | FallbackStore):
            # A shared store may fail; the client must not (docs/architecture.md section 8).
            state = FallbackStore(state)
        self.state: ProviderStateStore = state
        if breaker is not None:
            # A trial call holds its slot at most this long (a killed process's slot
            # frees itself); a stream may outlast one timeout, so allow a few.
            lease = max(breaker.trial_lease, 4 * timeouts.attempt)
            breaker = dataclasses.replace(breaker, trial_lease=lease)
        slots = []
        for priority, item in enumerate(providers):
            provider, rpm, tpm, account = _provider_of(item, rate_limits, transport)
            policy = AccountPolicy(
                rpm,
                tpm,
                breaker,
                guard=WINDOW_GUARD,
                retry_ratio=retry.retry_budget_ratio,
                throttle_k=retry.throttle_k,
            )
            health = ProviderHealth(clock=clock)
            first = (
                item.first_byte_deadline()
                if isinstance(item, ProviderSettings)
                else timeouts.first_byte
            )
            slots.append(
                ProviderSlot(provider, priority, health, account, policy, first_byte_timeout=first)
            )
            self.telemetry.register_provider(provider.name)
        names = [slot.name for slot in slots]
        if len(set(names)) != len(names):
            raise ValueError(f"provider names must be unique: {names}")
        self._router = Router(slots)
        self._refreshing: asyncio.Task[None] | None = None
        self._refreshed_at = -1.0
        self._dispatcher = Dispatcher(
            self._router,
            retry,
            timeouts=timeouts,
            telemetry=self.telemetry,
            emit=self._emit,
            activity=self._activity,
            state=self.state,
            rate_limiting=rate_limits is not None,
            max_wait=max_wait,
            sleep=sleep,
            rng=rng or random.Random(),
            clock=clock,
        )

    @classmethod
    def from_settings(
        cls,
        settings: ClientSettings | _HasClientSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        state: ProviderStateStore | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> LLMClient:
        """Build the client the configuration describes (``load_settings()``'s result or
        its ``.client``), exactly as the CLI does."""
        client = settings if isinstance(settings, ClientSettings) else settings.client
        breaker = client.circuit_breaker
        timeout = max((p.timeout for p in client.providers), default=DEFAULT_TIMEOUTS.attempt)
        return cls(
            list(client.providers),
            retry=RetryPolicy.of(client.retry),
            breaker=(
                BreakerPolicy(
                    breaker.failure_threshold,
                    breaker.recovery_timeout,
                    breaker.half_open_max_calls,
                )
                if breaker.enabled
                else None
            ),
            rate_limits=DEFAULT_RATE_LIMITS if client.rate_limit_enabled else None,
            timeouts=Timeouts(attempt=timeout),
            telemetry=client.telemetry_enabled,
            transport=transport,
            state=state,
            max_wait=client.rate_limit_max_wait,
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
        text_tools: TextTools | None = None,
    ) -> ChatResult:
        """One complete answer, after retries and failover as needed. ``text_tools``
        writes ``tools`` into the prompt for each attempt on a provider without native
        tools (:class:`~qwen_dev_cli.core.types.TextTools`)."""
        request = ChatRequest(messages, tools, max_tokens, temperature, text_tools)
        result = None
        async for event in self._run(request, stream=False):  # run to its end, see _round
            if isinstance(event, StreamEnd):
                result = event.result
        assert result is not None, "a call always ends with its result"
        return result

    def stream(
        self,
        messages: list[Message],
        tools: list[ToolSpec] | None = None,
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        text_tools: TextTools | None = None,
        ends_apart: bool = False,
    ) -> AsyncIterator[StreamEvent]:
        """Text deltas as they arrive, a :class:`StreamRestart` whenever a broken attempt
        voids the text shown so far, and a final :class:`StreamEnd` with the complete
        answer. Errors are raised as by :meth:`chat`. The request runs in the consumer's
        task: stop iterating (or cancel) and it stops. ``ends_apart``: an answer of plain
        prose comes with the blanks at its ends apart (:attr:`ChatResult.lead`,
        :attr:`ChatResult.trail`), for a caller that trims it anyway."""
        request = ChatRequest(
            messages, tools, max_tokens, temperature, text_tools, ends_apart=ends_apart
        )
        return self._run(request, stream=True)

    def get_metrics(self) -> dict[str, Any]:
        """The telemetry snapshot (the schema of docs/architecture.md section 5)."""
        return self.telemetry.snapshot()

    def reset_metrics(self) -> None:
        self.telemetry.reset()
        for slot in self._router.slots:
            self.telemetry.register_provider(slot.name)

    async def reset_circuit_breaker(self, name: str | None = None) -> None:
        """Close one provider's breaker (and end its cool-down), or every provider's,
        for every process that shares the account."""
        for slot in self._router.slots:
            if name is None or slot.name == name:
                await self.state.reset(slot.account)
                slot.learn(await self.state.view(slot.account, slot.policy))

    def status(self) -> ClientStatus:
        """Breaker states, cool-downs and budgets as last learned from the state store:
        what a status bar shows. Inside a running event loop, a status older than
        :data:`STATUS_MAX_AGE` seconds is refreshed in the background (see
        :meth:`refresh_status`), so a status bar that polls stays current."""
        self._refresh_soon()
        providers = []
        for slot in self._router.slots:
            view = slot.view
            providers.append(
                ProviderStatus(
                    name=slot.name,
                    model=slot.provider.model,
                    state=slot.breaker_state(),
                    retry_in=slot.retry_in(),
                    cooldown=slot.cooldown(),
                    rpm_limit=slot.policy.rpm,
                    rpm_left=view.rpm_left,
                    tpm_limit=slot.policy.tpm,
                    tpm_left=view.tpm_left,
                    success_rate=slot.health.success_rate(),
                    retry_budget=view.retry_budget,
                    throttled=view.throttled,
                    quota_reset_in=view.quota_reset_in,
                )
            )
        degraded = getattr(self.state, "degraded", False)
        return ClientStatus(
            providers=providers,
            active_provider=self._activity.active[0] if self._activity.active else None,
            active_model=self._activity.active[1] if self._activity.active else None,
            activity=self._activity.doing or self._waiting(),
            session_tokens=self._activity.session_tokens,
            store=self.state.kind,
            store_location=self.state.location,
            store_shared=self.state.kind != "memory" and not degraded,
        )

    def _waiting(self) -> str | None:
        """Why nothing happens, once a stream has been slow to begin for a while."""
        waiting = self._activity.waiting
        if waiting is None:
            return None
        provider, since, limit = waiting
        elapsed = self._clock() - since
        if elapsed < WAITING_SHOWN_AFTER:
            return None
        return f"{provider}: no answer yet, {elapsed:.0f}s of {limit:g}s"

    async def refresh_status(self) -> ClientStatus:
        """Read every account's state from the store (budgets spent by other processes
        included), then :meth:`status`."""
        self._refreshed_at = self._clock()
        for slot in self._router.slots:
            slot.learn(await self.state.view(slot.account, slot.policy))
        return self.status()

    def _refresh_soon(self) -> None:
        if self._refreshing is not None and not self._refreshing.done():
            return
        if self._clock() - self._refreshed_at < STATUS_MAX_AGE and self._refreshed_at >= 0:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._refreshed_at = self._clock()
        self._refreshing = loop.create_task(self._refresh_quietly())

    async def _refresh_quietly(self) -> None:
        try:
            await self.refresh_status()
        except Exception:  # a status bar must not break over a store hiccup
            log.exception("refreshing the status from the state store failed")

    async def aclose(self) -> None:
        """Close the providers. The state store is the caller's: it may outlive the
        client (and one store may serve several clients)."""
        if self._refreshing is not None:
            self._refreshing.cancel()
        for slot in self._router.slots:
            await slot.provider.aclose()

    async def __aenter__(self) -> LLMClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # --- one logical call -----------------------------------------------------------

    async def _run(self, request: ChatRequest, *, stream: bool) -> AsyncIterator[StreamEvent]:
        started = self._clock()
        prompt_tokens = estimate_prompt_tokens(request.messages, request.tools)
        call = Call(request, prompt_tokens, stream, deadline=started + self.retry.give_up_after)
        trace = self.telemetry.request_started(request, stream=stream)
        answer = None
        first_token: float | None = None
        try:
            async for item in self._dispatcher.run(call):
                if isinstance(item, Answer):
                    answer = item
                else:
                    if first_token is None and isinstance(item, TextDelta):
                        first_token = self._clock()
                    yield item
        except LLMError as exc:
            latency_ms = (self._clock() - started) * 1000.0
            self.telemetry.request_finished(
                ok=False, latency_ms=latency_ms, tokens=0, trace=trace, error=exc
            )
            raise
        except BaseException as exc:  # the consumer stopped: not a request's end
            self.telemetry.request_abandoned(trace, exc)
            raise
        finally:
            self._activity.doing = None
        assert answer is not None
        reply = answer.reply
        completion = estimate_chars_tokens(len(reply.lead) + len(reply.text) + len(reply.trail))
        usage = reply.usage or Usage(prompt_tokens, completion, prompt_tokens + completion)
        latency_ms = (self._clock() - started) * 1000.0
        result = ChatResult(
            text=reply.text,
            tool_calls=reply.tool_calls,
            usage=usage,
            provider=answer.provider,
            model=reply.model,
            attempts=call.attempts,
            latency_ms=latency_ms,
            finish_reason=reply.finish_reason,
            failed_attempts=call.failed_attempts,
            lead=reply.lead,
            trail=reply.trail,
        )
        self.telemetry.request_finished(
            ok=True,
            latency_ms=latency_ms,
            tokens=usage.total_tokens,
            trace=trace,
            provider=answer.provider,
            input_tokens=usage.prompt_tokens,
            output_tokens=usage.completion_tokens,
            ttft_ms=None if first_token is None else (first_token - started) * 1000.0,
            result=result,
        )
        yield StreamEnd(result)

    def _emit(self, event: ev.ClientEvent) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:  # a broken listener must not break the request
                log.exception("event listener failed")

    def _state_name(self, name: str) -> str:
        slot = self._router.get(name)
        return "CLOSED" if slot is None else slot.breaker_state()


def _provider_of(
    item: Provider | ProviderSettings,
    limits: RateLimits | None,
    transport: httpx.AsyncBaseTransport | None,
) -> tuple[Provider, int | None, int | None, str]:
    """The provider, its budget (``None``: unlimited) and its account key."""
    if isinstance(item, ProviderSettings):
        from .providers.kinds import kind_of

        provider = kind_of(item).build(item, transport=transport)
        account = account_key(item.base_url, item.model, item.api_key, item.name)
        rpm, tpm = item.rpm, item.tpm
    else:
        provider = item
        account = getattr(item, "account", None) or account_key(None, item.model, None, item.name)
        rpm = None if limits is None else limits.requests_per_minute
        tpm = None if limits is None else limits.tokens_per_minute
    if limits is None:
        rpm = tpm = None
    return provider, rpm, tpm, account
