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
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

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
    from opentelemetry.sdk.metrics.export import MetricExporter
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Span

    from ..core.settings import ProviderSettings
    from ..core.types import ChatResult
    from . import OtlpTarget

#: The agent's name in ``invoke_agent`` spans.
AGENT_NAME = "qwen-dev"
#: Seconds the process waits at exit for what is still queued to go out.
EXIT_FLUSH = 3.0
#: Breaker states as the ``qwen_dev.breaker.state`` gauge reports them.
BREAKER_LEVEL = {"CLOSED": 0, "HALF_OPEN": 1, "OPEN": 2}

_turn: ContextVar[Span | None] = ContextVar("qwen_dev_turn_span", default=None)


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
        self.tracer_provider.add_span_processor(BatchSpanProcessor(span_exporter))
        self.reader = PeriodicExportingMetricReader(metric_exporter)
        self.meter_provider = MeterProvider(
            metric_readers=[self.reader], resource=resource, shutdown_on_exit=False
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

    def observer(self, providers: Sequence[ProviderSettings]) -> ClientObserver:
        return ClientObserver(self, {p.name: _ProviderInfo(p) for p in providers})

    def close(self, timeout: float = EXIT_FLUSH) -> None:
        """Send what is queued, then stop: at most ``timeout`` seconds, and no longer
        than it takes to learn the collector is not there (a dead collector must not
        hold up the exit)."""
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


def _resource() -> Resource:
    """``service.name`` ``qwen-dev`` unless ``OTEL_SERVICE_NAME`` or
    ``OTEL_RESOURCE_ATTRIBUTES`` name it; the rest of the variables' attributes too."""
    detected = Resource.create()
    name = detected.attributes.get("service.name", "")
    if isinstance(name, str) and name and not name.startswith("unknown_service"):
        return detected.merge(Resource({"service.version": __version__}))
    return detected.merge(Resource({"service.name": "qwen-dev", "service.version": __version__}))


class ClientObserver:
    """One client's :class:`~qwen_dev_cli.core.telemetry.TelemetryObserver`: spans for
    its requests and attempts, and metric points."""

    def __init__(self, exporter: Exporter, providers: dict[str, _ProviderInfo]) -> None:
        self.x = exporter
        self.providers = providers
        self.kind = (
            SpanKind.INTERNAL
            if providers and all(p.in_process for p in providers.values())
            else SpanKind.CLIENT
        )

    def _info(self, provider: str | None) -> _ProviderInfo | None:
        return None if provider is None else self.providers.get(provider)

    # --- requests and attempts ---------------------------------------------------------

    def request_started(self, trace_: RequestTrace) -> None:
        turn = _turn.get()
        context = trace.set_span_in_context(turn) if turn is not None else None
        first = next(iter(self.providers.values()), None)
        model = first.model if first is not None else ""
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": model,
            "qwen_dev.stream": trace_.stream,
        }
        request = trace_.request
        if request is not None:
            if request.max_tokens is not None:
                attributes["gen_ai.request.max_tokens"] = request.max_tokens
            if request.temperature is not None:
                attributes["gen_ai.request.temperature"] = request.temperature
            if self.x.log_content:
                attributes["gen_ai.input.messages"] = _json(request.messages)
        span = self.x.tracer.start_span(
            f"chat {model}".strip(), context=context, kind=self.kind, attributes=attributes
        )
        trace_.spans["otel.request"] = span
        trace_.spans["otel.model"] = model

    def attempt_started(self, trace_: RequestTrace, event: ev.AttemptStarted) -> None:
        parent = trace_.spans.get("otel.request")
        if parent is None:
            return
        if len(trace_.attempts) == 1 and event.model != trace_.spans.get("otel.model"):
            # The first attempt says which model was asked for.
            trace_.spans["otel.model"] = event.model
            parent.update_name(f"chat {event.model}")
            parent.set_attribute("gen_ai.request.model", event.model)
        info = self._info(event.provider)
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": event.provider,
            "gen_ai.request.model": event.model,
            "qwen_dev.attempt.number": event.attempt,
            **(info.server() if info else {}),
        }
        kind = SpanKind.INTERNAL if info is not None and info.in_process else SpanKind.CLIENT
        self._end_attempt(trace_, None)
        trace_.spans["otel.attempt"] = self.x.tracer.start_span(
            f"attempt {event.provider}",
            context=trace.set_span_in_context(parent),
            kind=kind,
            attributes=attributes,
        )
        trace_.spans["otel.attempt.provider"] = event.provider

    def attempt_finished(
        self, trace_: RequestTrace | None, provider: str, ok: bool, error: BaseException | None
    ) -> None:
        outcome = "ok" if ok else failure_kind(error)
        self.x.attempts.add(1, {"gen_ai.provider.name": provider, "qwen_dev.outcome": outcome})
        if trace_ is not None:
            self._end_attempt(trace_, None if ok else (error, outcome))

    def _end_attempt(
        self, trace_: RequestTrace, failure: tuple[BaseException | None, str] | None
    ) -> None:
        span: Span | None = trace_.spans.pop("otel.attempt", None)
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
        span.end()

    def client_event(self, trace_: RequestTrace | None, event: ev.ClientEvent) -> None:
        name, attributes = _event(event, self.x.log_content)
        span = trace_.spans.get("otel.request") if trace_ is not None else None
        if span is not None:
            span.add_event(name, attributes)
        if isinstance(event, ev.RetryScheduled):
            self.x.retries.add(1)
        elif isinstance(event, ev.Failover):
            self.x.failovers.add(
                1,
                {
                    "qwen_dev.from_provider": event.from_provider,
                    "gen_ai.provider.name": event.to_provider,
                },
            )
        elif isinstance(event, ev.Throttled):
            self.x.throttled.add(1, {"gen_ai.provider.name": event.provider})
        elif isinstance(event, ev.BreakerTransition):
            self.x.breaker_transitions.add(
                1, {"gen_ai.provider.name": event.provider, "qwen_dev.breaker.to": event.new}
            )
            self.x.breaker_state.set(
                BREAKER_LEVEL.get(event.new, 0), {"gen_ai.provider.name": event.provider}
            )
        elif isinstance(event, ev.RateLimitWait):
            self.x.budget_wait.record(event.delay, {"gen_ai.provider.name": event.provider})

    def counted(self, trace_: RequestTrace | None, counter: str, provider: str | None) -> None:
        if counter != "circuit_breaker_blocks" or provider is None:
            return
        self.x.breaker_blocks.add(1, {"gen_ai.provider.name": provider})
        span = trace_.spans.get("otel.request") if trace_ is not None else None
        if span is not None:
            span.add_event("qwen_dev.breaker_skip", {"gen_ai.provider.name": provider})

    def request_finished(
        self,
        trace_: RequestTrace,
        result: ChatResult | None,
        error: BaseException | None,
        latency_ms: float,
        ttft_ms: float | None,
    ) -> None:
        span: Span | None = trace_.spans.pop("otel.request", None)
        self._end_attempt(trace_, None if error is None else (error, failure_kind(error)))
        provider = (
            result.provider
            if result is not None
            else (trace_.attempts[-1] if trace_.attempts else None)
        )
        info = self._info(provider)
        model = str(trace_.spans.get("otel.model", ""))
        metric: dict[str, Any] = {"gen_ai.operation.name": "chat", "gen_ai.request.model": model}
        if provider is not None:
            metric["gen_ai.provider.name"] = provider
        if info is not None:
            metric.update(info.server())
        if result is not None and result.model:
            metric["gen_ai.response.model"] = result.model
        if error is not None:
            metric["error.type"] = _error_type(error)
        self.x.duration.record(latency_ms / 1000.0, metric)
        if ttft_ms is not None:
            self.x.first_chunk.record(ttft_ms / 1000.0, metric)
        if result is not None and result.usage is not None:
            self.x.tokens.record(
                result.usage.prompt_tokens, {**metric, "gen_ai.token.type": "input"}
            )
            self.x.tokens.record(
                result.usage.completion_tokens, {**metric, "gen_ai.token.type": "output"}
            )
        if span is None:
            return
        span.set_attributes({k: v for k, v in metric.items() if k != "gen_ai.request.model"})
        span.set_attribute("qwen_dev.attempts", len(trace_.attempts))
        if result is not None:
            if result.usage is not None:
                span.set_attribute("gen_ai.usage.input_tokens", result.usage.prompt_tokens)
                span.set_attribute("gen_ai.usage.output_tokens", result.usage.completion_tokens)
            if result.finish_reason:
                span.set_attribute("gen_ai.response.finish_reasons", [result.finish_reason])
            if self.x.log_content:
                span.set_attribute("gen_ai.output.messages", _output(result))
        if error is not None:
            span.set_status(Status(StatusCode.ERROR, _error_type(error)))
        span.end()

    # --- agent turns and tool calls ----------------------------------------------------

    @contextmanager
    def scope(
        self, kind: Literal["invoke_agent", "execute_tool"], info: ScopeInfo
    ) -> Iterator[None]:
        parent = _turn.get()
        context = trace.set_span_in_context(parent) if parent is not None else None
        attributes: dict[str, Any] = {"gen_ai.operation.name": kind}
        if kind == "invoke_agent":
            name = f"invoke_agent {AGENT_NAME}"
            attributes["gen_ai.agent.name"] = AGENT_NAME
            if self.x.log_content and info.content is not None:
                attributes["gen_ai.input.messages"] = _json(info.content)
        else:
            name = f"execute_tool {info.name}"
            attributes["gen_ai.tool.name"] = info.name
            attributes["gen_ai.tool.type"] = "function"
            if info.call_id:
                attributes["gen_ai.tool.call.id"] = info.call_id
            if self.x.log_content and info.content is not None:
                attributes["gen_ai.tool.call.arguments"] = _json(info.content)
        span = self.x.tracer.start_span(
            name, context=context, kind=SpanKind.INTERNAL, attributes=attributes
        )
        token = _turn.set(span) if kind == "invoke_agent" else None
        try:
            yield
        finally:
            if token is not None:
                _turn.set(parent)
            if info.outcome is not None:
                span.set_attribute("qwen_dev.outcome", info.outcome)
            if self.x.log_content and info.output is not None:
                key = (
                    "gen_ai.output.messages"
                    if kind == "invoke_agent"
                    else "gen_ai.tool.call.result"
                )
                span.set_attribute(key, _json(info.output))
            failed = info.error is not None or info.outcome == "error"
            if info.error is not None:
                span.set_attribute("error.type", info.error)
            if failed:
                span.set_status(Status(StatusCode.ERROR, info.error or "error"))
            span.end()


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
    if result.text:
        parts.append({"type": "text", "content": result.text})
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
