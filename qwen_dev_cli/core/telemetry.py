"""Counters and latencies of logical requests, in the one schema that ``get_metrics()``,
``/metrics``, ``qwen-dev metrics --json`` and ``ask --json`` share
(docs/architecture.md section 5).

A *request* is one logical call (its retries and failovers included); an *attempt* is
one try of it on one provider. Keys say which they count: ``total_requests``,
``successful_requests`` and ``success_rate`` are requests; ``total_attempts``,
``failed_attempts``, ``failures`` (by kind) and each provider's ``success``/``failure``
are attempts.

Latencies (and the time to a stream's first token) are also kept as fixed-bucket
histograms, per provider and in all, so that runs merge exactly: :func:`merge_snapshots`
adds the buckets, then reads percentiles from the sum, within one bucket
(:data:`BUCKET_RESOLUTION_PCT`).

Observers (:class:`TelemetryObserver`, the OpenTelemetry exporter) are told of each
request, attempt, client event, agent turn and tool call; a failing observer is logged
and never breaks a request. Only numbers and provider names are recorded here: never
prompt text, never keys.
"""

from __future__ import annotations

import logging
import math
import time
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from . import events as ev
from .errors import (
    ConnectionFailed,
    MalformedResponse,
    RateLimited,
    RequestTimeout,
    ServerError,
    StreamInterrupted,
)

if TYPE_CHECKING:
    from .types import ChatRequest, ChatResult

log = logging.getLogger(__name__)

Counter = Literal["retries", "rate_limited", "circuit_breaker_blocks", "failovers"]

# Latencies kept for the run's own percentiles: enough for a stable p95, bounded memory.
_LATENCY_SAMPLES = 10_000

#: The bucket layout's name, stored with each run's histograms: a reader merges only
#: histograms of its own layout.
BUCKET_SCHEME = "ms:10*2^(k/4)"
#: Upper bounds, in ms, of the latency buckets: 10 ms times 2^(k/4) from 0.625 ms to
#: about 22 minutes. Every explicit boundary the OpenTelemetry GenAI conventions give
#: ``gen_ai.client.operation.duration`` (10 ms doubling to 81.92 s) is one of them,
#: each doubling split in four. A last bucket holds everything above.
BUCKET_BOUNDS_MS: tuple[float, ...] = tuple(10.0 * 2.0 ** (k / 4) for k in range(-16, 69))
#: A bucket's width as a share of its lower bound, in percent: a percentile read from
#: merged buckets is within this of the true one.
BUCKET_RESOLUTION_PCT = round((2.0**0.25 - 1.0) * 100.0, 1)
#: The GenAI conventions' explicit boundaries (seconds) for operation durations.
GENAI_DURATION_BOUNDS_S: tuple[float, ...] = tuple(0.01 * 2**k for k in range(14))
#: The GenAI conventions' explicit boundaries (tokens) for ``gen_ai.client.token.usage``.
GENAI_TOKEN_BOUNDS: tuple[float, ...] = tuple(float(4**k) for k in range(14))

#: Kinds an attempt's failure is counted under (``failures``).
FailureKind = Literal["429", "quota", "5xx", "timeout", "reset", "malformed", "other"]
FAILURE_KINDS: tuple[FailureKind, ...] = (
    "429",
    "quota",
    "5xx",
    "timeout",
    "reset",
    "malformed",
    "other",
)


def failure_kind(error: BaseException | None) -> FailureKind:
    """Which of :data:`FAILURE_KINDS` an attempt's error is."""
    if error is None:
        return "other"
    if "quota" in type(error).__name__.lower() or getattr(error, "quota", None) is True:
        return "quota"
    if isinstance(error, RateLimited):
        return "429"
    if isinstance(error, ServerError):
        return "5xx"
    if isinstance(error, RequestTimeout):
        return "timeout"
    if isinstance(error, ConnectionFailed | StreamInterrupted):
        return "reset"
    if isinstance(error, MalformedResponse):
        return "malformed"
    status = getattr(error, "status_code", None)
    if status == 429:
        return "429"
    if isinstance(status, int) and status >= 500:
        return "5xx"
    return "other"


# --- histograms ------------------------------------------------------------------------


@dataclass
class Histogram:
    """Values (ms) in the fixed buckets of :data:`BUCKET_BOUNDS_MS`, with their count,
    sum, minimum and maximum: everything merges exactly."""

    buckets: dict[int, int] = field(default_factory=dict)
    count: int = 0
    sum: float = 0.0
    min: float = math.inf
    max: float = -math.inf

    def record(self, value: float, times: int = 1) -> None:
        if times <= 0:
            return
        index = bisect_left(BUCKET_BOUNDS_MS, value)
        self.buckets[index] = self.buckets.get(index, 0) + times
        self.count += times
        self.sum += value * times
        self.min = min(self.min, value)
        self.max = max(self.max, value)

    def merge(self, other: Histogram) -> None:
        for index, n in other.buckets.items():
            self.buckets[index] = self.buckets.get(index, 0) + n
        self.count += other.count
        self.sum += other.sum
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)

    def percentile(self, pct: float) -> float:
        """The nearest-rank percentile, read from the buckets: the rank's bucket, its
        values taken as spread evenly over it, kept within the recorded minimum and maximum, so
        the value lies in the bucket of the true one (0 when empty)."""
        if not self.count:
            return 0.0
        rank = min(self.count, max(1, math.ceil(self.count * pct / 100)))
        if rank == self.count:
            return self.max
        if rank == 1:
            return self.min
        seen = 0
        for index in sorted(self.buckets):
            n = self.buckets[index]
            if seen + n >= rank:
                low = BUCKET_BOUNDS_MS[index - 1] if index > 0 else self.min
                high = BUCKET_BOUNDS_MS[index] if index < len(BUCKET_BOUNDS_MS) else self.max
                value = low + (high - low) * (rank - seen - 0.5) / n
                return min(max(value, self.min), self.max)
            seen += n
        return self.max  # unreachable: the counts add up to ``count``

    def to_json(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "sum": round(self.sum, 3),
            "min": round(self.min, 3) if self.count else 0.0,
            "max": round(self.max, 3) if self.count else 0.0,
            "buckets": {str(i): n for i, n in sorted(self.buckets.items())},
        }

    @classmethod
    def from_json(cls, data: object) -> Histogram | None:
        """A histogram read back from :meth:`to_json` (``None`` when unreadable)."""
        if not isinstance(data, dict):
            return None
        try:
            buckets = {int(i): int(n) for i, n in dict(data.get("buckets", {})).items()}
            count = int(data.get("count", 0))
            if sum(buckets.values()) != count or any(
                not 0 <= i <= len(BUCKET_BOUNDS_MS) or n < 0 for i, n in buckets.items()
            ):
                return None
            hist = cls(buckets, count, float(data.get("sum", 0.0)))
            if count:
                hist.min = float(data.get("min", 0.0))
                hist.max = float(data.get("max", 0.0))
            return hist
        except (TypeError, ValueError, AttributeError):
            return None


# --- what is counted -------------------------------------------------------------------


def _no_failures() -> dict[str, int]:
    return dict.fromkeys(FAILURE_KINDS, 0)


@dataclass
class _ProviderCounts:
    #: Attempts on this provider that succeeded / failed.
    success: int = 0
    failure: int = 0
    #: Requests this provider ended (answered, or was the last one tried).
    requests: int = 0
    request_successes: int = 0
    request_failures: int = 0
    #: Attempts on it that repeat an earlier attempt of the same request on it.
    retries: int = 0
    #: Requests that moved away from it to another provider.
    failovers: int = 0
    breaker_opens: int = 0
    breaker_blocks: int = 0
    throttled: int = 0
    rate_limited: int = 0
    budget_waits: int = 0
    budget_wait_s: float = 0.0
    retry_budget_spent: int = 0
    quota_exhausted: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    failures: dict[str, int] = field(default_factory=_no_failures)
    latency: Histogram = field(default_factory=Histogram)
    ttft: Histogram = field(default_factory=Histogram)

    def row(self, state: str) -> dict[str, Any]:
        return {
            "success": self.success,
            "failure": self.failure,
            "state": state,
            "attempts": self.success + self.failure,
            "requests": self.requests,
            "request_successes": self.request_successes,
            "request_failures": self.request_failures,
            "retries": self.retries,
            "failovers": self.failovers,
            "breaker_opens": self.breaker_opens,
            "breaker_blocks": self.breaker_blocks,
            "throttled": self.throttled,
            "rate_limited": self.rate_limited,
            "budget_waits": self.budget_waits,
            "budget_wait_s": round(self.budget_wait_s, 3),
            "retry_budget_spent": self.retry_budget_spent,
            "quota_exhausted": self.quota_exhausted,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "failures": dict(self.failures),
            "p50_latency_ms": round(self.latency.percentile(50)),
            "p95_latency_ms": round(self.latency.percentile(95)),
        }


#: Per-provider numbers that merge by adding.
_PROVIDER_SUMS = (
    "success",
    "failure",
    "requests",
    "request_successes",
    "request_failures",
    "retries",
    "failovers",
    "breaker_opens",
    "breaker_blocks",
    "throttled",
    "rate_limited",
    "budget_waits",
    "retry_budget_spent",
    "quota_exhausted",
    "input_tokens",
    "output_tokens",
)


@dataclass
class RequestTrace:
    """One logical request while it runs: what the telemetry and its observers need to
    follow it. ``spans`` is the observers' own (an exporter's open spans)."""

    request: ChatRequest | None
    stream: bool
    started: float
    #: Providers attempted so far, in order (one entry per attempt).
    attempts: list[str] = field(default_factory=list)
    #: A budget wait in progress: the provider and when it began.
    waiting: tuple[str, float] | None = None
    spans: dict[str, Any] = field(default_factory=dict)
    previous: RequestTrace | None = None


_current: ContextVar[RequestTrace | None] = ContextVar("qwen_dev_request", default=None)


class TelemetryObserver(Protocol):
    """Told what the client does, as it happens (the OpenTelemetry exporter). Each call
    must be quick and must not block; an exception is logged and ignored."""

    def request_started(self, trace: RequestTrace) -> None: ...

    def attempt_started(self, trace: RequestTrace, event: ev.AttemptStarted) -> None: ...

    def attempt_finished(
        self, trace: RequestTrace | None, provider: str, ok: bool, error: BaseException | None
    ) -> None: ...

    def client_event(self, trace: RequestTrace | None, event: ev.ClientEvent) -> None: ...

    def request_finished(
        self,
        trace: RequestTrace,
        result: ChatResult | None,
        error: BaseException | None,
        latency_ms: float,
        ttft_ms: float | None,
    ) -> None: ...

    def counted(self, trace: RequestTrace | None, counter: str, provider: str | None) -> None: ...

    def scope(
        self, kind: Literal["invoke_agent", "execute_tool"], info: ScopeInfo
    ) -> AbstractContextManager[None]: ...


@dataclass
class ScopeInfo:
    """An agent turn (``invoke_agent``) or a tool call (``execute_tool``) an observer
    may trace. ``content`` (the prompt, the tool's arguments and result) is exported
    only when the observer was told to log content; the caller fills ``outcome`` and
    ``output`` before the scope ends."""

    name: str
    call_id: str | None = None
    content: Any = None
    outcome: str | None = None
    output: Any = None
    #: The type of the exception that ended the scope, if one did.
    error: str | None = None


class Telemetry:
    """Accumulates what the client did. ``state_of`` reads each provider's breaker state
    at snapshot time, so the snapshot is never stale."""

    def __init__(
        self,
        state_of: Callable[[str], str] | None = None,
        *,
        enabled: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._state_of = state_of
        self.enabled = enabled
        self.clock = clock
        self.observers: list[TelemetryObserver] = []
        self.reset()

    def reset(self) -> None:
        self.total_requests = 0
        self.successes = 0
        self.total_tokens = 0
        self.input_tokens = 0
        self.output_tokens = 0
        self.retries = 0
        self.rate_limited = 0
        self.circuit_breaker_blocks = 0
        self.failovers = 0
        self._latencies: deque[float] = deque(maxlen=_LATENCY_SAMPLES)
        self._latency = Histogram()
        self._ttft = Histogram()
        self._ttfts: deque[float] = deque(maxlen=_LATENCY_SAMPLES)
        self._providers: dict[str, _ProviderCounts] = {}
        #: Requests that ended on no provider (every one skipped), by nobody's account.
        self._unattributed = _ProviderCounts()

    def register_provider(self, name: str) -> None:
        self._providers.setdefault(name, _ProviderCounts())

    def _of(self, provider: str | None) -> _ProviderCounts:
        if provider is None:
            return self._unattributed
        return self._providers.setdefault(provider, _ProviderCounts())

    # --- recording ------------------------------------------------------------------

    def request_started(
        self, request: ChatRequest | None = None, *, stream: bool = False
    ) -> RequestTrace:
        """A logical request begins in this task; events until it finishes are its."""
        trace = RequestTrace(request, stream, self.clock(), previous=_current.get())
        _current.set(trace)
        self._notify("request_started", trace)
        return trace

    def request_finished(
        self,
        *,
        ok: bool,
        latency_ms: float,
        tokens: int,
        trace: RequestTrace | None = None,
        provider: str | None = None,
        input_tokens: int = 0,
        output_tokens: int = 0,
        ttft_ms: float | None = None,
        result: ChatResult | None = None,
        error: BaseException | None = None,
    ) -> None:
        """One logical request ended (after its retries and failovers): on ``provider``
        (the one that answered; for a failure, the last one tried)."""
        if trace is not None:
            self._end_wait(trace)
            if provider is None and trace.attempts:
                provider = trace.attempts[-1]
            if _current.get() is trace:
                _current.set(trace.previous)
            self._notify("request_finished", trace, result, error, latency_ms, ttft_ms)
        if not self.enabled:
            return
        self.total_requests += 1
        if ok:
            self.successes += 1
        self.total_tokens += tokens
        self.input_tokens += input_tokens
        self.output_tokens += output_tokens
        self._latencies.append(latency_ms)
        self._latency.record(latency_ms)
        if ttft_ms is not None:
            self._ttfts.append(ttft_ms)
            self._ttft.record(ttft_ms)
        counts = self._of(provider)
        counts.requests += 1
        if ok:
            counts.request_successes += 1
        else:
            counts.request_failures += 1
        counts.input_tokens += input_tokens
        counts.output_tokens += output_tokens
        counts.latency.record(latency_ms)
        if ttft_ms is not None:
            counts.ttft.record(ttft_ms)

    def request_abandoned(self, trace: RequestTrace, reason: BaseException) -> None:
        """The request's consumer stopped (cancelled, interrupted): not counted, but an
        observer's open spans are ended."""
        self._end_wait(trace)
        if _current.get() is trace:
            _current.set(trace.previous)
        latency_ms = (self.clock() - trace.started) * 1000.0
        self._notify("request_finished", trace, None, reason, latency_ms, None)

    def attempt_finished(
        self, provider: str, *, ok: bool, error: BaseException | None = None
    ) -> None:
        self._notify("attempt_finished", _current.get(), provider, ok, error)
        if not self.enabled:
            return
        counts = self._of(provider)
        if ok:
            counts.success += 1
        else:
            counts.failure += 1
            counts.failures[failure_kind(error)] += 1

    def count(self, counter: Counter, provider: str | None = None) -> None:
        """Add one to ``retries``, ``rate_limited``, ``circuit_breaker_blocks`` or
        ``failovers`` (and, for a breaker's block or a 429, to ``provider``'s)."""
        if self.observers:
            self._notify("counted", _current.get(), counter, provider)
        if not self.enabled:
            return
        setattr(self, counter, getattr(self, counter) + 1)
        if provider is not None:
            if counter == "circuit_breaker_blocks":
                self._of(provider).breaker_blocks += 1
            elif counter == "rate_limited":
                self._of(provider).rate_limited += 1

    def observe(self, event: ev.ClientEvent) -> None:
        """A client event (the client subscribes this): the counts the dispatcher's own
        calls do not make."""
        trace = _current.get()
        if isinstance(event, ev.AttemptStarted) and trace is not None:
            self._end_wait(trace)
            if self.enabled and event.provider in trace.attempts:
                self._of(event.provider).retries += 1
            trace.attempts.append(event.provider)
            self._notify("attempt_started", trace, event)
            return
        self._notify("client_event", trace, event)
        if not self.enabled:
            return
        if isinstance(event, ev.RateLimitWait):
            counts = self._of(event.provider)
            counts.budget_waits += 1
            if trace is None:
                counts.budget_wait_s += event.delay
            else:
                self._end_wait(trace)
                trace.waiting = (event.provider, self.clock())
        elif isinstance(event, ev.Failover):
            self._of(event.from_provider).failovers += 1
        elif isinstance(event, ev.BreakerTransition):
            if event.new == "OPEN":
                self._of(event.provider).breaker_opens += 1
        elif isinstance(event, ev.Throttled):
            self._of(event.provider).throttled += 1
        elif isinstance(event, ev.RetryBudgetSpent):
            self._of(event.provider).retry_budget_spent += 1
        elif isinstance(event, ev.QuotaExhausted):
            self._of(event.provider).quota_exhausted += 1

    def _end_wait(self, trace: RequestTrace) -> None:
        if trace.waiting is None:
            return
        provider, since = trace.waiting
        trace.waiting = None
        if self.enabled:
            self._of(provider).budget_wait_s += max(0.0, self.clock() - since)

    @contextmanager
    def scope(
        self, kind: Literal["invoke_agent", "execute_tool"], info: ScopeInfo
    ) -> Iterator[ScopeInfo]:
        """An agent turn or a tool call, for observers to trace (nothing without one)."""
        if not self.observers:
            yield info
            return
        entered: list[AbstractContextManager[None]] = []
        for observer in list(self.observers):
            try:
                manager = observer.scope(kind, info)
                manager.__enter__()
                entered.append(manager)
            except Exception:
                log.exception("telemetry observer failed")
        try:
            yield info
        except BaseException as exc:
            info.error = type(exc).__name__
            raise
        finally:
            for manager in reversed(entered):
                try:
                    manager.__exit__(None, None, None)
                except Exception:
                    log.exception("telemetry observer failed")

    def _notify(self, method: str, *args: Any) -> None:
        for observer in self.observers:
            try:
                getattr(observer, method)(*args)
            except Exception:  # an exporter must never break a request
                log.exception("telemetry observer failed")

    # --- reading --------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The docs/architecture.md section 5 schema; numbers are numbers. The run's
        own p50/p95 are exact (its last 10,000 requests); the histograms are for
        merging runs."""
        ordered = sorted(self._latencies)
        ttfts = sorted(self._ttfts)
        providers = {
            name: counts.row(self._state_of(name) if self._state_of else "CLOSED")
            for name, counts in self._providers.items()
        }
        return _assemble(
            self,
            providers,
            p50=percentile(ordered, 50),
            p95=percentile(ordered, 95),
            ttft50=percentile(ttfts, 50),
            ttft95=percentile(ttfts, 95),
            resolution=0.0,
            histograms=_histograms(self._latency, self._ttft, self._providers),
        )


def _all_counts(telemetry: Telemetry) -> list[_ProviderCounts]:
    return [*telemetry._providers.values(), telemetry._unattributed]


def _assemble(
    telemetry: Telemetry,
    providers: dict[str, dict[str, Any]],
    *,
    p50: float,
    p95: float,
    ttft50: float,
    ttft95: float,
    resolution: float,
    histograms: dict[str, Any],
) -> dict[str, Any]:
    counts = _all_counts(telemetry)
    requests = telemetry.total_requests
    failures = _no_failures()
    for row in counts:
        for kind, n in row.failures.items():
            failures[kind] = failures.get(kind, 0) + n
    attempts_ok = sum(c.success for c in counts)
    attempts_failed = sum(c.failure for c in counts)
    latency = telemetry._latency
    return {
        "total_requests": requests,
        # Of requests, not attempts: a request that failed over and succeeded is one.
        "success_rate": round(100.0 * telemetry.successes / requests, 1) if requests else 0.0,
        "avg_latency_ms": round(latency.sum / latency.count) if latency.count else 0,
        "p50_latency_ms": round(p50),
        "p95_latency_ms": round(p95),
        "total_tokens": telemetry.total_tokens,
        "retries": telemetry.retries,
        "rate_limited": telemetry.rate_limited,
        "circuit_breaker_blocks": telemetry.circuit_breaker_blocks,
        "failovers": telemetry.failovers,
        "providers": providers,
        "successful_requests": telemetry.successes,
        "failed_requests": requests - telemetry.successes,
        "total_attempts": attempts_ok + attempts_failed,
        "failed_attempts": attempts_failed,
        "failures": failures,
        "breaker_opens": sum(c.breaker_opens for c in counts),
        "throttled": sum(c.throttled for c in counts),
        "budget_waits": sum(c.budget_waits for c in counts),
        "budget_wait_s": round(sum(c.budget_wait_s for c in counts), 3),
        "retry_budget_spent": sum(c.retry_budget_spent for c in counts),
        "quota_exhausted": sum(c.quota_exhausted for c in counts),
        "input_tokens": telemetry.input_tokens,
        "output_tokens": telemetry.output_tokens,
        "p50_ttft_ms": round(ttft50),
        "p95_ttft_ms": round(ttft95),
        "latency_resolution_pct": resolution,
        "histograms": histograms,
    }


def _histograms(
    latency: Histogram, ttft: Histogram, providers: dict[str, _ProviderCounts]
) -> dict[str, Any]:
    return {
        "scheme": BUCKET_SCHEME,
        "latency_ms": latency.to_json(),
        "ttft_ms": ttft.to_json(),
        "providers": {
            name: {"latency_ms": c.latency.to_json(), "ttft_ms": c.ttft.to_json()}
            for name, c in providers.items()
            if c.latency.count or c.ttft.count
        },
    }


def percentile(ordered: list[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending list (0 for an empty one)."""
    if not ordered:
        return 0.0
    rank = max(1, -(-len(ordered) * pct // 100))
    return ordered[min(len(ordered), int(rank)) - 1]


def _int(value: object) -> int:
    return round(_float(value))


def _float(value: object) -> float:
    if not isinstance(value, int | float | str):
        return 0.0
    try:
        number = float(value)
    except ValueError:
        return 0.0
    return number if math.isfinite(number) else 0.0


def _approximate(hist: Histogram, requests: int, p50: float, p95: float) -> None:
    """A run recorded before histograms, entered as well as its numbers allow: half
    its requests at its p50, the rest at its p95 (alone, it reads back its own)."""
    half = math.ceil(requests / 2)
    hist.record(p50, half)
    hist.record(p95, requests - half)


def merge_snapshots(snapshots: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Aggregate per-run snapshots (``qwen-dev metrics``, ``/metrics`` across clients).
    Counts add up; the latency histograms are added bucket by bucket and percentiles
    read from the sum (``latency_resolution_pct``). A run recorded before histograms
    is entered as half its requests at its p50 and half at its p95 (counted in
    ``approximate_runs``)."""
    total = Telemetry()
    states: dict[str, str] = {}
    approximate = 0
    for snap in snapshots:
        n = _int(snap.get("total_requests", 0))
        total.total_requests += n
        succeeded = _int(snap.get("successful_requests", -1))
        if succeeded >= 0 and succeeded + _int(snap.get("failed_requests", -1)) == n:
            total.successes += succeeded
        else:
            total.successes += round(n * _float(snap.get("success_rate", 0.0)) / 100.0)
        for key in ("total_tokens", "input_tokens", "output_tokens"):
            setattr(total, key, getattr(total, key) + _int(snap.get(key, 0)))
        for key in ("retries", "rate_limited", "circuit_breaker_blocks", "failovers"):
            setattr(total, key, getattr(total, key) + _int(snap.get(key, 0)))
        found = snap.get("histograms")
        # A run's histograms count only in the bucket layout this code reads.
        hists = found if isinstance(found, dict) and found.get("scheme") == BUCKET_SCHEME else {}
        own = bool(hists)
        latency = Histogram.from_json(hists.get("latency_ms")) if own else None
        if own and latency is not None and latency.count == n:
            total._latency.merge(latency)
            ttft = Histogram.from_json(hists.get("ttft_ms"))
            if ttft is not None:
                total._ttft.merge(ttft)
        elif n:
            approximate += 1
            before = total._latency.sum
            _approximate(
                total._latency,
                n,
                _float(snap.get("p50_latency_ms", 0)),
                _float(snap.get("p95_latency_ms", 0)),
            )
            # The mean merges exactly: each run's mean times its requests.
            total._latency.sum = before + n * _float(snap.get("avg_latency_ms", 0))
        per_provider = hists.get("providers", {})
        for name, prov in dict(snap.get("providers", {})).items():
            if not isinstance(prov, dict):
                continue
            counts = total._providers.setdefault(name, _ProviderCounts())
            for key in _PROVIDER_SUMS:
                setattr(counts, key, getattr(counts, key) + _int(prov.get(key, 0)))
            counts.budget_wait_s += _float(prov.get("budget_wait_s", 0.0))
            for kind, k in dict(prov.get("failures", {})).items():
                counts.failures[str(kind)] = counts.failures.get(str(kind), 0) + _int(k)
            if isinstance(per_provider, dict) and isinstance(per_provider.get(name), dict):
                for key, hist in (("latency_ms", counts.latency), ("ttft_ms", counts.ttft)):
                    read = Histogram.from_json(per_provider[name].get(key))
                    if read is not None:
                        hist.merge(read)
            states[name] = str(prov.get("state", "CLOSED"))
    latency, ttft = total._latency, total._ttft
    providers = {
        name: counts.row(states.get(name, "CLOSED")) for name, counts in total._providers.items()
    }
    merged = _assemble(
        total,
        providers,
        p50=latency.percentile(50),
        p95=latency.percentile(95),
        ttft50=ttft.percentile(50),
        ttft95=ttft.percentile(95),
        resolution=BUCKET_RESOLUTION_PCT if latency.count else 0.0,
        histograms=_histograms(latency, ttft, total._providers),
    )
    if approximate:
        merged["approximate_runs"] = approximate
    return merged
