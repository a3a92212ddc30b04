"""The OTLP observer in process, its spans caught by the SDK's in-memory exporter: the
span kinds of an in-process model, a failed request, what events say with and without
log_content, and the bounded queue."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk", reason="the [otel] extra is not installed")

from opentelemetry.sdk.metrics.export import (
    MetricExporter,
    MetricExportResult,
    MetricsData,
)
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from qwen_dev_cli.core import events as ev
from qwen_dev_cli.core.errors import AllProvidersFailed, ServerError
from qwen_dev_cli.core.settings import ProviderSettings
from qwen_dev_cli.core.telemetry import Telemetry
from qwen_dev_cli.core.types import ChatRequest
from qwen_dev_cli.otel import OtlpTarget
from qwen_dev_cli.otel import exporter as otel_exporter

PROMPT = [{"role": "user", "content": "secret plans"}]


class NoMetrics(MetricExporter):
    def __init__(self) -> None:
        super().__init__(preferred_temporality={})

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        pass


def build(
    providers: Sequence[ProviderSettings], *, log_content: bool = False
) -> tuple[Telemetry, otel_exporter.Exporter, InMemorySpanExporter]:
    spans = InMemorySpanExporter()
    target = OtlpTarget("http://127.0.0.1:9", "http/protobuf", log_content)
    exporter = otel_exporter.Exporter(target, spans, NoMetrics(), lambda _: None)
    telemetry = Telemetry()
    telemetry.observers.append(exporter.observer(providers))
    return telemetry, exporter, spans


def finished(exporter: otel_exporter.Exporter, spans: InMemorySpanExporter) -> list[ReadableSpan]:
    assert exporter.drain(10)
    exporter.tracer_provider.force_flush(10_000)
    return list(spans.get_finished_spans())


@pytest.fixture
def cleanup() -> Iterator[list[otel_exporter.Exporter]]:
    made: list[otel_exporter.Exporter] = []
    yield made
    for exporter in made:
        exporter.close(0.5)


def a_failed_request(telemetry: Telemetry, provider: str, model: str) -> None:
    trace = telemetry.request_started(ChatRequest(PROMPT, None, None, None, None))
    telemetry.observe(ev.AttemptStarted(provider, model, 1))
    telemetry.attempt_finished(provider, ok=False, error=ServerError("boom", status_code=500))
    telemetry.observe(ev.Failover(provider, "other", "server said: secret plans"))
    telemetry.count("circuit_breaker_blocks", "other")
    error = AllProvidersFailed("all providers failed", [])
    telemetry.request_finished(ok=False, latency_ms=5.0, tokens=0, trace=trace, error=error)


def test_an_in_process_model_is_internal_and_a_failure_is_an_error(
    cleanup: list[otel_exporter.Exporter],
) -> None:
    local = ProviderSettings(name="local", kind="llama-cpp", model="smol")
    telemetry, exporter, spans = build([local])
    cleanup.append(exporter)
    a_failed_request(telemetry, "local", "smol")
    by_name = {span.name: span for span in finished(exporter, spans)}
    chat, attempt = by_name["chat smol"], by_name["attempt local"]
    assert (chat.kind, attempt.kind) == (SpanKind.INTERNAL, SpanKind.INTERNAL)
    assert attempt.parent is not None
    assert attempt.parent.span_id == chat.context.span_id
    assert chat.status.status_code is StatusCode.ERROR
    assert chat.attributes is not None
    assert chat.attributes["error.type"] == "all_providers_failed"
    assert "server.address" not in chat.attributes
    events = {event.name: event for event in chat.events}
    assert set(events) == {"qwen_dev.failover", "qwen_dev.breaker_skip"}
    failover = dict(events["qwen_dev.failover"].attributes or {})
    assert failover == {"qwen_dev.from_provider": "local", "qwen_dev.to_provider": "other"}


def test_free_text_goes_out_only_with_log_content(cleanup: list[otel_exporter.Exporter]) -> None:
    lab = ProviderSettings(name="lab", base_url="https://api.example.com/v1", model="big")
    telemetry, exporter, spans = build([lab], log_content=True)
    cleanup.append(exporter)
    a_failed_request(telemetry, "lab", "big")
    (chat,) = [span for span in finished(exporter, spans) if span.name == "chat big"]
    assert chat.kind == SpanKind.CLIENT
    assert chat.attributes is not None
    assert "secret plans" in str(chat.attributes["gen_ai.input.messages"])
    assert (chat.attributes["server.address"], chat.attributes["server.port"]) == (
        "api.example.com",
        443,
    )
    (failover,) = [event for event in chat.events if event.name == "qwen_dev.failover"]
    assert failover.attributes is not None
    assert failover.attributes["qwen_dev.reason"] == "server said: secret plans"


def test_past_the_queue_bound_notes_are_dropped(
    cleanup: list[otel_exporter.Exporter], monkeypatch: pytest.MonkeyPatch
) -> None:
    lab = ProviderSettings(name="lab", base_url="http://127.0.0.1:1/v1", model="m")
    telemetry, exporter, spans = build([lab])
    cleanup.append(exporter)
    monkeypatch.setattr(otel_exporter, "MAX_PENDING", 0)
    a_failed_request(telemetry, "lab", "m")
    assert exporter.dropped > 0
    assert finished(exporter, spans) == []


def test_requests_do_not_wake_the_worker_one_by_one(
    cleanup: list[otel_exporter.Exporter], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each wake-up is a thread taking the GIL from the next request: the worker wakes on
    # its timer, at a drain, or once WAKE_AT notes wait, and what it builds then is the
    # same (the spans keep the times they were noted at).
    monkeypatch.setattr(otel_exporter, "WAKE_EVERY", 3600.0)  # before the worker starts
    lab = ProviderSettings(name="lab", base_url="http://127.0.0.1:1/v1", model="m")
    telemetry, exporter, spans = build([lab])
    cleanup.append(exporter)
    for _ in range(3):
        a_failed_request(telemetry, "lab", "m")
    assert exporter.wake.qsize() == 0
    assert len(exporter.notes) > 0  # not built yet: nobody woke the worker
    monkeypatch.setattr(otel_exporter, "WAKE_AT", 1)
    a_failed_request(telemetry, "lab", "m")
    assert exporter.drain(10)
    exporter.tracer_provider.force_flush(10_000)
    chats = [s for s in spans.get_finished_spans() if s.name.startswith("chat")]
    assert len(chats) == 4
