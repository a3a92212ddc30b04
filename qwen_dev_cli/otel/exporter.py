"""The OpenTelemetry side of the telemetry: spans and metrics over OTLP.

Spans (GenAI conventions): ``invoke_agent qwen-dev`` per agent turn; under it
``chat {model}`` per request (kind CLIENT; INTERNAL when every provider is an
in-process model) with ``gen_ai.*`` attributes, and ``execute_tool {name}`` per tool
call; under each request one ``attempt {provider}`` span per attempt. Retries,
failovers, breaker transitions and skips, throttling, budget waits and quota
exhaustion are events on the request's span.

Metrics: ``gen_ai.client.operation.duration`` (s) and ``gen_ai.client.token.usage``
({token}) with the conventions' bucket boundaries and attributes,
``gen_ai.client.operation.time_to_first_chunk`` for streams, and the ``qwen_dev.*``
counters (attempts, retries, failovers, throttled, breaker transitions and skips, budget
waits) and the breaker state gauge.

Only this module imports OpenTelemetry; :mod:`qwen_dev_cli.otel` imports it only when
an endpoint is configured. Exports run on the SDK's own threads (a bounded queue);
nothing here blocks a request, and the first failure to export is said once.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Literal, NamedTuple
from urllib.parse import urlsplit

from opentelemetry import trace
from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter, ExemplarFilter, MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, TracerProvider, sampling
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.util import BoundedList
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from .. import __version__
from ..core import events as ev
from ..core.telemetry import (
    GENAI_DURATION_BOUNDS_S,
    GENAI_TOKEN_BOUNDS,
    RequestTrace,
    ScopeInfo,
    failure_kind,
)

if TYPE_CHECKING:
    from opentelemetry.metrics import Counter
    from opentelemetry.sdk.metrics.export import MetricExporter
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Span

    from ..core.settings import ProviderSettings
    from ..core.types import ChatRequest, ChatResult
    from . import OtlpTarget

#: The agent's name in ``invoke_agent`` spans.
AGENT_NAME = "qwen-dev"
#: Seconds the process waits at exit for what is still queued to go out.
EXIT_FLUSH = 3.0
#: Breaker states as the ``qwen_dev.breaker.state`` gauge reports them.
BREAKER_LEVEL = {"CLOSED": 0, "HALF_OPEN": 1, "OPEN": 2}
#: Most notes waiting for the worker; beyond, new ones are dropped.
MAX_PENDING = 50_000
#: Most notes the worker makes before adding its counts (then it goes on).
WORKER_BATCH = 512
#: Seconds the worker sleeps at most without being woken.
WAKE_EVERY = 1.0
#: Notes waiting that wake the worker before :data:`WAKE_EVERY` is up. Not one a
#: request: each wake-up is a thread taking the GIL from the next request (measured:
#: 1.12-1.18x a ~1 ms request when woken at each request's end); the spans keep the
#: times they were noted at, so building them a second later changes nothing exported.
WAKE_AT = 256
#: Most attribute sets kept for reuse (per kind); past it, the cache starts again.
ATTRIBUTE_CACHE = 1024


class _ProviderInfo:
    """What the spans say of one provider: its model, its server, and whether it runs
    in this process."""

    def __init__(self, settings: ProviderSettings) -> None:
        from ..core.providers.kinds import kind_of

        self.model = settings.model
        self.in_process = kind_of(settings).in_process
        self.address: str | None = None
        self.port: int | None = None
        if settings.base_url and not self.in_process:
            parts = urlsplit(settings.base_url)
            self.address = parts.hostname
            try:
                self.port = parts.port or (443 if parts.scheme == "https" else 80)
            except ValueError:
                self.port = None

    def server(self) -> dict[str, Any]:
        if self.address is None:
            return {}
        server: dict[str, Any] = {"server.address": self.address}
        if self.port is not None:
            server["server.port"] = self.port
        return server


class _OnceWarning(logging.Handler):
    """Takes the SDK's own log records (export failures) and says the first once; the
    session goes on without a word more."""

    def __init__(self, warn: Callable[[str], None], where: str) -> None:
        super().__init__(logging.WARNING)
        self.warn = warn
        self.where = where
        self.failed = threading.Event()
        #: Set at exit, when what the exporters say on their way out is nobody's business.
        self.closing = False

    def emit(self, record: logging.LogRecord) -> None:
        if self.failed.is_set() or self.closing:
            return
        self.failed.set()
        try:
            detail = record.getMessage()
        except Exception:  # a record that cannot be formatted still counts
            detail = str(record.msg)
        if "Connection" in detail or "connect" in detail:
            detail = "cannot connect"
        elif len(detail) > 120:
            detail = detail[:117] + "..."
        self.warn(f"telemetry export to {self.where} failed ({detail}); going on without it")


def _where(endpoint: str) -> str:
    """The collector as a warning names it: scheme, host and port (never a password)."""
    parts = urlsplit(endpoint.split(",")[0].strip())
    if not parts.hostname:
        return "the OTLP collector"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme or 'http'}://{parts.hostname}{port}"


class Exporter:
    """One per process: the tracer and meter providers, their exporters and the
    instruments. :meth:`observer` makes the observer of one client."""

    def __init__(
        self,
        target: OtlpTarget,
        span_exporter: SpanExporter,
        metric_exporter: MetricExporter,
        warn: Callable[[str], None],
    ) -> None:
        self.log_content = target.log_content
        self.span_exporter = span_exporter
        self.metric_exporter = metric_exporter
        where = _where(target.endpoint or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", ""))
        self.failures = _OnceWarning(warn, where)
        sdk_log = logging.getLogger("opentelemetry")
        sdk_log.addHandler(self.failures)
        sdk_log.propagate = False  # one warning of ours, not a traceback per batch
        resource = _resource()
        self.tracer_provider = TracerProvider(resource=resource, shutdown_on_exit=False)
        self.span_processor = BatchSpanProcessor(span_exporter)
        self.tracer_provider.add_span_processor(self.span_processor)
        self.scope = InstrumentationScope("qwen_dev_cli", __version__)
        #: Requests' and attempts' spans made as finished spans (:class:`_LightSpan`),
        #: not through the SDK's tracer: when the sampler keeps every span and no
        #: limit is configured, what the tracer would do comes to the same.
        self.light_spans = _light_spans_allowed(self.tracer_provider)
        self.reader = PeriodicExportingMetricReader(metric_exporter)
        self.meter_provider = MeterProvider(
            metric_readers=[self.reader],
            resource=resource,
            shutdown_on_exit=False,
            exemplar_filter=_exemplar_filter(),
        )
        self.tracer = self.tracer_provider.get_tracer("qwen_dev_cli", __version__)
        meter = self.meter_provider.get_meter("qwen_dev_cli", __version__)
        self.duration = meter.create_histogram(
            "gen_ai.client.operation.duration",
            unit="s",
            description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=GENAI_DURATION_BOUNDS_S,
        )
        self.tokens = meter.create_histogram(
            "gen_ai.client.token.usage",
            unit="{token}",
            description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=GENAI_TOKEN_BOUNDS,
        )
        self.first_chunk = meter.create_histogram(
            "gen_ai.client.operation.time_to_first_chunk",
            unit="s",
            description="Time to the first chunk of a streamed answer.",
            explicit_bucket_boundaries_advisory=GENAI_DURATION_BOUNDS_S,
        )
        self.attempts = meter.create_counter(
            "qwen_dev.attempts", unit="{attempt}", description="Attempts on a provider."
        )
        self.retries = meter.create_counter(
            "qwen_dev.retries", unit="{retry}", description="Retry rounds scheduled."
        )
        self.failovers = meter.create_counter(
            "qwen_dev.failovers", unit="{failover}", description="Requests moved on."
        )
        self.throttled = meter.create_counter(
            "qwen_dev.throttled",
            unit="{request}",
            description="Requests refused locally by adaptive throttling.",
        )
        self.breaker_transitions = meter.create_counter(
            "qwen_dev.breaker.transitions", unit="{transition}", description="Breaker moves."
        )
        self.breaker_blocks = meter.create_counter(
            "qwen_dev.breaker.blocks",
            unit="{attempt}",
            description="Providers skipped because their breaker is open.",
        )
        self.breaker_state = meter.create_gauge(
            "qwen_dev.breaker.state",
            unit="1",
            description="A provider's breaker: 0 closed, 1 half-open, 2 open.",
        )
        self.budget_wait = meter.create_histogram(
            "qwen_dev.budget.wait",
            unit="s",
            description="Waits for a provider's budget (rate limit), as announced.",
            explicit_bucket_boundaries_advisory=GENAI_DURATION_BOUNDS_S,
        )

        # What the hot path noted, for the worker to turn into spans and points (a deque:
        # appending wakes nobody), and the worker's wake-ups: every WAKE_EVERY seconds,
        # at a drain, or when a request or scope ends with WAKE_AT notes waiting, not one
        # a note or a request (each wake-up is a thread switch on the request's core).
        self.notes: deque[tuple[_Builder, tuple[Any, ...]] | threading.Event] = deque()
        self.wake: queue.SimpleQueue[None] = queue.SimpleQueue()
        self.dropped = 0
        #: Counter increments the worker has made but not yet added, by instrument and
        #: attribute set (the worker alone touches it): one ``add`` a set a batch.
        self.counts: dict[tuple[Counter, tuple[Any, ...]], list[Any]] = {}
        self.worker = threading.Thread(target=self._work, name="qwen-dev-otel", daemon=True)
        self.worker.start()

    def observer(self, providers: Sequence[ProviderSettings]) -> ClientObserver:
        return ClientObserver(self, {p.name: _ProviderInfo(p) for p in providers})

    def submit(self, builder: _Builder, item: tuple[Any, ...], wake: bool) -> None:
        """Hand ``item`` to the worker, waking it if ``wake`` (a request or a scope
        ended) and :data:`WAKE_AT` notes wait; past :data:`MAX_PENDING` waiting, it is
        dropped (memory stays bounded whatever the SDK's pace)."""
        if len(self.notes) >= MAX_PENDING:
            self.dropped += 1
        else:
            self.notes.append((builder, item))
        if wake and len(self.notes) >= WAKE_AT:
            self.wake.put(None)

    def count(
        self, counter: Counter, key: tuple[Any, ...], attributes: dict[str, Any] | None
    ) -> None:
        """Add one to ``counter`` for ``attributes`` (named by ``key``) when the batch
        ends: the sum exported is the same, at one SDK call a set instead of one a note."""
        pending = self.counts.get((counter, key))
        if pending is None:
            self.counts[counter, key] = [1, attributes]
        else:
            pending[0] += 1

    def _add_counts(self) -> None:
        counts, self.counts = self.counts, {}
        for (counter, _), (amount, attributes) in counts.items():
            try:
                counter.add(amount, attributes)
            except Exception:  # one odd count must not stop the export
                logging.getLogger(__name__).debug("adding a count failed", exc_info=True)

    def _work(self) -> None:
        notes, wake, skip = self.notes, self.wake, self.wake.get_nowait
        while True:
            # Woken when a request or scope ends, or every WAKE_EVERY seconds anyway
            # (a request that never ends still has its attempts' counts go out).
            with suppress(queue.Empty):
                wake.get(timeout=WAKE_EVERY)
            with suppress(queue.Empty):
                while True:  # the wake-ups this pass covers
                    skip()
            while notes:
                self._apply(notes, WORKER_BATCH)

    def _apply(
        self, notes: deque[tuple[_Builder, tuple[Any, ...]] | threading.Event], most: int
    ) -> None:
        """Make up to ``most`` notes into spans and points, then add the counts."""
        take = notes.popleft
        for _ in range(most):
            try:
                entry = take()
            except IndexError:
                break
            if isinstance(entry, threading.Event):
                self._add_counts()  # a drain sees the counts too
                entry.set()
                continue
            builder, item = entry
            try:
                builder.apply(item)
            except Exception:  # one odd item must not stop the export
                logging.getLogger(__name__).debug("building telemetry failed", exc_info=True)
        self._add_counts()

    def drain(self, timeout: float) -> bool:
        """Wait until the worker has made everything noted so far."""
        reached = threading.Event()
        self.notes.append(reached)
        self.wake.put(None)
        return reached.wait(timeout)

    def close(self, timeout: float = EXIT_FLUSH) -> None:
        """Send what is queued, then stop: at most ``timeout`` seconds, and no longer
        than it takes to learn the collector is not there (a dead collector must not
        hold up the exit)."""
        started = time.monotonic()
        self.drain(timeout)
        timeout = max(0.1, timeout - (time.monotonic() - started))
        done = threading.Event()
        wait_ms = int(timeout * 1000)

        def flush() -> None:
            try:
                if not self.failures.failed.is_set():
                    self.tracer_provider.force_flush(wait_ms)
                if not self.failures.failed.is_set():
                    self.meter_provider.force_flush(wait_ms)
            except Exception:  # the answer was given; an exporter's end is not news
                pass
            finally:
                done.set()

        threading.Thread(target=flush, name="qwen-dev-otel-flush", daemon=True).start()
        deadline = time.monotonic() + timeout
        while not done.is_set() and not self.failures.failed.is_set():
            if time.monotonic() >= deadline:
                break
            done.wait(0.02)
        # Whatever is left is dropped: the exporters stop retrying, and their farewells
        # ("already shut down") are nobody's business.
        self.failures.closing = True

        def stop() -> None:
            for part in (self.span_exporter, self.metric_exporter):
                with suppress(Exception):
                    part.shutdown()
            try:
                self.tracer_provider.shutdown()
                self.meter_provider.shutdown(timeout_millis=100)
            except Exception:
                pass

        worker = threading.Thread(target=stop, name="qwen-dev-otel-stop", daemon=True)
        worker.start()
        worker.join(0.5)


#: The variables that set span limits (with any set, spans go through the SDK).
LIMIT_PREFIXES = ("OTEL_SPAN_", "OTEL_ATTRIBUTE_", "OTEL_EVENT_", "OTEL_LINK_")
#: The SDK's default for events a span keeps (the latest).
MAX_EVENTS = 128


def _light_spans_allowed(provider: TracerProvider) -> bool:
    """Whether a request's spans can be made whole at their end: the sampler records
    every span of ours (the default ``parentbased_always_on``, or ``always_on``) and no
    span limit is set."""
    if provider.sampler not in (sampling.DEFAULT_ON, sampling.ALWAYS_ON):
        return False
    return not any(name.startswith(LIMIT_PREFIXES) for name in os.environ)


class _LightSpan:
    """A request's or an attempt's span, kept as plain values and handed to the batch
    processor as a finished span at its end: what ``tracer.start_span`` and ``end``
    would make (ids from the provider's generator, the parent's trace, sampled), for a
    fifth of the CPU. Only the worker touches it."""

    __slots__ = (
        "attributes",
        "context",
        "events",
        "kind",
        "name",
        "parent",
        "start",
        "status",
        "x",
    )

    def __init__(
        self,
        x: Exporter,
        name: str,
        parent: SpanContext | None,
        kind: SpanKind,
        attributes: dict[str, Any],
        start: int,
    ) -> None:
        ids = x.tracer_provider.id_generator
        if parent is None:
            trace_id, random_id = ids.generate_trace_id(), ids.is_trace_id_random()
        else:
            trace_id, random_id = parent.trace_id, parent.trace_flags.random_trace_id
        flags = TraceFlags.SAMPLED | (TraceFlags.RANDOM_TRACE_ID if random_id else 0)
        self.context = SpanContext(
            trace_id,
            ids.generate_span_id(),
            is_remote=False,
            trace_flags=TraceFlags(flags),
            trace_state=parent.trace_state if parent is not None else None,
        )
        self.x = x
        self.name = name
        self.parent = parent
        self.kind = kind
        self.attributes = dict(attributes)  # the given set may be shared
        self.events: list[Event] = []
        self.status = _UNSET
        self.start = start

    def get_span_context(self) -> SpanContext:
        return self.context

    def update_name(self, name: str) -> None:
        self.name = name

    def set_attribute(self, key: str, value: Any) -> None:
        self.attributes[key] = value

    def set_attributes(self, attributes: dict[str, Any]) -> None:
        self.attributes.update(attributes)

    def add_event(self, name: str, attributes: dict[str, Any], timestamp: int) -> None:
        self.events.append(Event(name, attributes, timestamp))

    def set_status(self, status: Status) -> None:
        self.status = status

    def end(self, end_time: int) -> None:
        events: Sequence[Event] = self.events
        if len(events) > MAX_EVENTS:
            events = BoundedList.from_seq(MAX_EVENTS, events)
        self.x.span_processor.on_end(
            ReadableSpan(
                self.name,
                self.context,
                self.parent,
                self.x.tracer_provider.resource,
                self.attributes,
                events,
                (),
                self.kind,
                None,
                self.status,
                self.start,
                end_time,
                instrumentation_scope=self.x.scope,
            )
        )


_UNSET = Status(StatusCode.UNSET)


def _exemplar_filter() -> ExemplarFilter | None:
    """No exemplars unless ``OTEL_METRICS_EXEMPLAR_FILTER`` asks (``None``: the SDK
    reads it). The default, trace-based, never samples here anyway (the worker records
    with no span current), so "off" exports the same and skips the check a point."""
    if os.environ.get("OTEL_METRICS_EXEMPLAR_FILTER", "").strip():
        return None
    return AlwaysOffExemplarFilter()


def _resource() -> Resource:
    """``service.name`` ``qwen-dev`` unless ``OTEL_SERVICE_NAME`` or
    ``OTEL_RESOURCE_ATTRIBUTES`` name it; the rest of the variables' attributes too."""
    detected = Resource.create()
    name = detected.attributes.get("service.name", "")
    if isinstance(name, str) and name and not name.startswith("unknown_service"):
        return detected.merge(Resource({"service.version": __version__}))
    return detected.merge(Resource({"service.name": "qwen-dev", "service.version": __version__}))


class _Handle:
    """A span the worker makes (or has made): how the hot path names a parent it has
    not waited for."""

    __slots__ = ("span",)

    def __init__(self) -> None:
        self.span: Span | None = None


class _Request:
    """One request as the worker builds it; made on the hot path (cheap), filled by the
    worker alone."""

    __slots__ = ("attempt", "content", "model", "parent", "request", "span", "stream")

    def __init__(
        self, parent: _Handle | None, stream: bool, request: ChatRequest | None, content: str | None
    ) -> None:
        self.parent = parent
        self.stream = stream
        self.request = request
        self.content = content
        self.span: Span | _LightSpan | None = None
        self.attempt: Span | _LightSpan | None = None
        self.model = ""


_turn: ContextVar[_Handle | None] = ContextVar("qwen_dev_turn", default=None)
_KEY = "otel"


class ClientObserver:
    """One client's :class:`~qwen_dev_cli.core.telemetry.TelemetryObserver`. On the
    request's path it only notes what happened and when (a queue put); the exporter's
    worker thread makes the spans and metric points (:class:`_Builder`), so a request
    pays microseconds, whatever the SDK costs."""

    def __init__(self, exporter: Exporter, providers: dict[str, _ProviderInfo]) -> None:
        self.x = exporter
        self.builder = _Builder(exporter, providers)
        self.content = exporter.log_content

    def _put(self, *item: Any) -> None:
        self.x.submit(self.builder, (*item, time.time_ns()), False)

    def _put_and_wake(self, *item: Any) -> None:
        self.x.submit(self.builder, (*item, time.time_ns()), True)

    def request_started(self, trace_: RequestTrace) -> None:
        request = trace_.request
        content = _json(request.messages) if self.content and request is not None else None
        state = _Request(_turn.get(), trace_.stream, request, content)
        trace_.spans[_KEY] = state
        self._put("request_started", state)

    def attempt_started(self, trace_: RequestTrace, event: ev.AttemptStarted) -> None:
        self._put("attempt_started", trace_.spans.get(_KEY), event, len(trace_.attempts))

    def attempt_finished(
        self, trace_: RequestTrace | None, provider: str, ok: bool, error: BaseException | None
    ) -> None:
        state = trace_.spans.get(_KEY) if trace_ is not None else None
        self._put("attempt_finished", state, provider, ok, error)

    def client_event(self, trace_: RequestTrace | None, event: ev.ClientEvent) -> None:
        self._put("client_event", trace_.spans.get(_KEY) if trace_ else None, event)

    def counted(self, trace_: RequestTrace | None, counter: str, provider: str | None) -> None:
        if counter == "circuit_breaker_blocks" and provider is not None:
            self._put("blocked", trace_.spans.get(_KEY) if trace_ else None, provider)

    def request_finished(
        self,
        trace_: RequestTrace,
        result: ChatResult | None,
        error: BaseException | None,
        latency_ms: float,
        ttft_ms: float | None,
    ) -> None:
        last = trace_.attempts[-1] if trace_.attempts else None
        output = _output(result) if self.content and result is not None else None
        self._put_and_wake(
            "request_finished",
            trace_.spans.get(_KEY),
            result,
            error,
            latency_ms,
            ttft_ms,
            len(trace_.attempts),
            last,
            output,
        )

    @contextmanager
    def scope(
        self, kind: Literal["invoke_agent", "execute_tool"], info: ScopeInfo
    ) -> Iterator[None]:
        handle, parent = _Handle(), _turn.get()
        content = _json(info.content) if self.content and info.content is not None else None
        self._put_and_wake("scope_started", kind, handle, parent, info.name, info.call_id, content)
        if kind == "invoke_agent":
            _turn.set(handle)
        try:
            yield
        finally:
            if kind == "invoke_agent":
                _turn.set(parent)
            output = _json(info.output) if self.content and info.output is not None else None
            self._put_and_wake("scope_finished", kind, handle, info.outcome, output, info.error)


class _Finish(NamedTuple):
    """A finished request's attribute sets: its metric points', its span's (without
    the request model, set at the start), and the token points' two."""

    metric: dict[str, Any]
    span: dict[str, Any]
    input_tokens: dict[str, Any]
    output_tokens: dict[str, Any]


class _Builder:
    """The worker's side of one client: spans (stamped with the times the hot path
    noted) and metric points, made in the order things happened."""

    def __init__(self, exporter: Exporter, providers: dict[str, _ProviderInfo]) -> None:
        self.x = exporter
        self.providers = providers
        self.kind = (
            SpanKind.INTERNAL
            if providers and all(p.in_process for p in providers.values())
            else SpanKind.CLIENT
        )
        # Attribute sets made once and reused (the SDK copies what it is given).
        self.attempt_attributes: dict[tuple[str, str, int], dict[str, Any]] = {}
        self.finish_attributes: dict[tuple[Any, ...], _Finish] = {}

    def _start(
        self,
        name: str,
        parent: Span | _LightSpan | None,
        kind: SpanKind,
        attributes: dict[str, Any],
        now: int,
    ) -> Span | _LightSpan:
        """A request's or an attempt's span: light when allowed, else the SDK's."""
        if self.x.light_spans:
            above = parent.get_span_context() if parent is not None else None
            return _LightSpan(self.x, name, above, kind, attributes, now)
        assert not isinstance(parent, _LightSpan)
        context = trace.set_span_in_context(parent) if parent is not None else None
        return self.x.tracer.start_span(
            name, context=context, kind=kind, attributes=attributes, start_time=now
        )

    def apply(self, item: tuple[Any, ...]) -> None:
        getattr(self, "_" + item[0])(*item[1:])

    def _info(self, provider: str | None) -> _ProviderInfo | None:
        return None if provider is None else self.providers.get(provider)

    # --- requests and attempts ---------------------------------------------------------

    def _request_started(self, state: _Request, now: int) -> None:
        parent = state.parent.span if state.parent is not None else None
        first = next(iter(self.providers.values()), None)
        state.model = first.model if first is not None else ""
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": state.model,
            "qwen_dev.stream": state.stream,
        }
        request = state.request
        if request is not None:
            if request.max_tokens is not None:
                attributes["gen_ai.request.max_tokens"] = request.max_tokens
            if request.temperature is not None:
                attributes["gen_ai.request.temperature"] = request.temperature
        if state.content is not None:
            attributes["gen_ai.input.messages"] = state.content
        state.span = self._start(f"chat {state.model}".strip(), parent, self.kind, attributes, now)

    def _attempt_started(
        self, state: _Request | None, event: ev.AttemptStarted, number: int, now: int
    ) -> None:
        if state is None or state.span is None:
            return
        if number == 1 and event.model != state.model:
            # The first attempt says which model was asked for.
            state.model = event.model
            state.span.update_name(f"chat {event.model}")
            state.span.set_attribute("gen_ai.request.model", event.model)
        info = self._info(event.provider)
        key = (event.provider, event.model, event.attempt)
        attributes = self.attempt_attributes.get(key)
        if attributes is None:
            if len(self.attempt_attributes) >= ATTRIBUTE_CACHE:
                self.attempt_attributes.clear()
            attributes = self.attempt_attributes[key] = {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": event.provider,
                "gen_ai.request.model": event.model,
                "qwen_dev.attempt.number": event.attempt,
                **(info.server() if info else {}),
            }
        kind = SpanKind.INTERNAL if info is not None and info.in_process else SpanKind.CLIENT
        self._end_attempt(state, None, now)
        state.attempt = self._start(f"attempt {event.provider}", state.span, kind, attributes, now)

    def _attempt_finished(
        self,
        state: _Request | None,
        provider: str,
        ok: bool,
        error: BaseException | None,
        now: int,
    ) -> None:
        outcome = "ok" if ok else failure_kind(error)
        self.x.count(
            self.x.attempts,
            (provider, outcome),
            {"gen_ai.provider.name": provider, "qwen_dev.outcome": outcome},
        )
        if state is not None:
            self._end_attempt(state, None if ok else (error, outcome), now)

    def _end_attempt(
        self, state: _Request, failure: tuple[BaseException | None, str] | None, now: int
    ) -> None:
        span, state.attempt = state.attempt, None
        if span is None:
            return
        if failure is not None:
            error, outcome = failure
            error_type = _error_type(error)
            span.set_attribute("error.type", error_type)
            span.set_attribute("qwen_dev.failure.kind", outcome)
            status = getattr(error, "status_code", None)
            if isinstance(status, int):
                span.set_attribute("http.response.status_code", status)
            span.set_status(Status(StatusCode.ERROR, error_type))
        span.end(end_time=now)

    def _client_event(self, state: _Request | None, event: ev.ClientEvent, now: int) -> None:
        name, attributes = _event(event, self.x.log_content)
        if state is not None and state.span is not None:
            state.span.add_event(name, attributes, timestamp=now)
        if isinstance(event, ev.RetryScheduled):
            self.x.count(self.x.retries, (), None)
        elif isinstance(event, ev.Failover):
            self.x.count(
                self.x.failovers,
                (event.from_provider, event.to_provider),
                {
                    "qwen_dev.from_provider": event.from_provider,
                    "gen_ai.provider.name": event.to_provider,
                },
            )
        elif isinstance(event, ev.Throttled):
            self.x.count(
                self.x.throttled, (event.provider,), {"gen_ai.provider.name": event.provider}
            )
        elif isinstance(event, ev.BreakerTransition):
            self.x.count(
                self.x.breaker_transitions,
                (event.provider, event.new),
                {"gen_ai.provider.name": event.provider, "qwen_dev.breaker.to": event.new},
            )
            self.x.breaker_state.set(
                BREAKER_LEVEL.get(event.new, 0), {"gen_ai.provider.name": event.provider}
            )
        elif isinstance(event, ev.RateLimitWait):
            self.x.budget_wait.record(event.delay, {"gen_ai.provider.name": event.provider})

    def _blocked(self, state: _Request | None, provider: str, now: int) -> None:
        self.x.count(self.x.breaker_blocks, (provider,), {"gen_ai.provider.name": provider})
        if state is not None and state.span is not None:
            state.span.add_event(
                "qwen_dev.breaker_skip", {"gen_ai.provider.name": provider}, timestamp=now
            )

    def _request_finished(
        self,
        state: _Request | None,
        result: ChatResult | None,
        error: BaseException | None,
        latency_ms: float,
        ttft_ms: float | None,
        attempts: int,
        last: str | None,
        output: str | None,
        now: int,
    ) -> None:
        if state is None:
            return
        self._end_attempt(state, None if error is None else (error, failure_kind(error)), now)
        provider = result.provider if result is not None else last
        error_type = _error_type(error) if error is not None else None
        response_model = result.model if result is not None and result.model else None
        finish = self._finish(provider, state.model, response_model, error_type)
        self.x.duration.record(latency_ms / 1000.0, finish.metric)
        if ttft_ms is not None:
            self.x.first_chunk.record(ttft_ms / 1000.0, finish.metric)
        if result is not None and result.usage is not None:
            usage = result.usage
            self.x.tokens.record(usage.prompt_tokens, finish.input_tokens)
            self.x.tokens.record(usage.completion_tokens, finish.output_tokens)
        span, state.span = state.span, None
        if span is None:
            return
        # One call with all of them (each call takes the span's lock and checks).
        attributes = {**finish.span, "qwen_dev.attempts": attempts}
        if result is not None:
            if result.usage is not None:
                attributes["gen_ai.usage.input_tokens"] = result.usage.prompt_tokens
                attributes["gen_ai.usage.output_tokens"] = result.usage.completion_tokens
            if result.finish_reason:
                attributes["gen_ai.response.finish_reasons"] = [result.finish_reason]
        if output is not None:
            attributes["gen_ai.output.messages"] = output
        span.set_attributes(attributes)
        if error_type is not None:
            span.set_status(Status(StatusCode.ERROR, error_type))
        span.end(end_time=now)

    def _finish(
        self,
        provider: str | None,
        model: str,
        response_model: str | None,
        error_type: str | None,
    ) -> _Finish:
        """The attribute sets of a finished request, made once per combination."""
        key = (provider, model, response_model, error_type)
        finish = self.finish_attributes.get(key)
        if finish is not None:
            return finish
        info = self._info(provider)
        metric: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": model,
        }
        if provider is not None:
            metric["gen_ai.provider.name"] = provider
        if info is not None:
            metric.update(info.server())
        if response_model is not None:
            metric["gen_ai.response.model"] = response_model
        if error_type is not None:
            metric["error.type"] = error_type
        finish = _Finish(
            metric,
            {k: v for k, v in metric.items() if k != "gen_ai.request.model"},
            {**metric, "gen_ai.token.type": "input"},
            {**metric, "gen_ai.token.type": "output"},
        )
        if len(self.finish_attributes) >= ATTRIBUTE_CACHE:
            self.finish_attributes.clear()
        self.finish_attributes[key] = finish
        return finish

    # --- agent turns and tool calls ----------------------------------------------------

    def _scope_started(
        self,
        kind: str,
        handle: _Handle,
        parent: _Handle | None,
        name: str,
        call_id: str | None,
        content: str | None,
        now: int,
    ) -> None:
        above = parent.span if parent is not None else None
        context = trace.set_span_in_context(above) if above is not None else None
        attributes: dict[str, Any] = {"gen_ai.operation.name": kind}
        if kind == "invoke_agent":
            span_name = f"invoke_agent {AGENT_NAME}"
            attributes["gen_ai.agent.name"] = AGENT_NAME
            if content is not None:
                attributes["gen_ai.input.messages"] = content
        else:
            span_name = f"execute_tool {name}"
            attributes["gen_ai.tool.name"] = name
            attributes["gen_ai.tool.type"] = "function"
            if call_id:
                attributes["gen_ai.tool.call.id"] = call_id
            if content is not None:
                attributes["gen_ai.tool.call.arguments"] = content
        handle.span = self.x.tracer.start_span(
            span_name,
            context=context,
            kind=SpanKind.INTERNAL,
            attributes=attributes,
            start_time=now,
        )

    def _scope_finished(
        self,
        kind: str,
        handle: _Handle,
        outcome: str | None,
        output: str | None,
        error: str | None,
        now: int,
    ) -> None:
        span, handle.span = handle.span, None
        if span is None:
            return
        if outcome is not None:
            span.set_attribute("qwen_dev.outcome", outcome)
        if output is not None:
            key = "gen_ai.output.messages" if kind == "invoke_agent" else "gen_ai.tool.call.result"
            span.set_attribute(key, output)
        if error is not None:
            span.set_attribute("error.type", error)
        if error is not None or outcome == "error":
            span.set_status(Status(StatusCode.ERROR, error or "error"))
        span.end(end_time=now)


def _error_type(error: BaseException | None) -> str:
    if error is None:
        return "_OTHER"
    kind = getattr(error, "kind", None)
    return kind if isinstance(kind, str) else type(error).__name__


def _event(event: ev.ClientEvent, content: bool) -> tuple[str, dict[str, Any]]:
    """A client event as a span event: its numbers and provider names; the free text
    some carry (a server's message may quote the prompt) only with ``log_content``."""
    if isinstance(event, ev.RetryScheduled):
        attributes: dict[str, Any] = {
            "qwen_dev.retry": event.retry,
            "qwen_dev.max_retries": event.max_retries,
            "qwen_dev.delay_s": event.delay,
        }
        if content:
            attributes["qwen_dev.reason"] = event.reason
        return "qwen_dev.retry", attributes
    if isinstance(event, ev.Failover):
        attributes = {
            "qwen_dev.from_provider": event.from_provider,
            "qwen_dev.to_provider": event.to_provider,
        }
        if content:
            attributes["qwen_dev.reason"] = event.reason
        return "qwen_dev.failover", attributes
    if isinstance(event, ev.BreakerTransition):
        return "qwen_dev.breaker", {
            "gen_ai.provider.name": event.provider,
            "qwen_dev.breaker.from": event.old,
            "qwen_dev.breaker.to": event.new,
        }
    if isinstance(event, ev.RateLimitWait):
        return "qwen_dev.budget_wait", {
            "gen_ai.provider.name": event.provider,
            "qwen_dev.delay_s": event.delay,
        }
    if isinstance(event, ev.Throttled):
        return "qwen_dev.throttled", {
            "gen_ai.provider.name": event.provider,
            "qwen_dev.probability": event.probability,
        }
    if isinstance(event, ev.RetryBudgetSpent):
        return "qwen_dev.retry_budget_spent", {"gen_ai.provider.name": event.provider}
    if isinstance(event, ev.QuotaExhausted):
        attributes = {"gen_ai.provider.name": event.provider}
        if event.reset_in is not None:
            attributes["qwen_dev.reset_in_s"] = event.reset_in
        if content:
            attributes["qwen_dev.reason"] = event.detail
        return "qwen_dev.quota_exhausted", attributes
    return "qwen_dev.attempt", {"gen_ai.provider.name": event.provider}


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _output(result: ChatResult) -> str:
    parts: list[dict[str, Any]] = []
    if text := result.whole():
        parts.append({"type": "text", "content": text})
    for call in result.tool_calls:
        parts.append(
            {"type": "tool_call", "id": call.id, "name": call.name, "arguments": call.arguments}
        )
    message = {"role": "assistant", "parts": parts, "finish_reason": result.finish_reason}
    return _json([message])


_shared: Exporter | None = None
_lock = threading.Lock()


def shared_exporter(target: OtlpTarget, warn: Callable[[str], None]) -> Exporter | None:
    """The process's exporter, made on first use (``None`` if it cannot be made: said
    once). Closed at exit, waiting at most :data:`EXIT_FLUSH` seconds."""
    global _shared
    with _lock:
        if _shared is not None:
            return _shared
        try:
            spans, metrics = _exporters(target)
            _shared = Exporter(target, spans, metrics, warn)
        except Exception as exc:  # a bad endpoint must not cost the session
            warn(f"telemetry export is off: {type(exc).__name__}: {exc}")
            return None
        atexit.register(_shared.close)
        return _shared


def _exporters(target: OtlpTarget) -> tuple[SpanExporter, MetricExporter]:
    base = target.endpoint
    if target.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
            OTLPMetricExporter as GrpcMetrics,
        )
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter as GrpcSpans,
        )

        return GrpcSpans(endpoint=base), GrpcMetrics(endpoint=base)
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    if base is None:  # the variables name it; the SDK adds the signal's path
        return OTLPSpanExporter(), OTLPMetricExporter()
    return (
        OTLPSpanExporter(endpoint=f"{base}/v1/traces"),
        OTLPMetricExporter(endpoint=f"{base}/v1/metrics"),
    )
