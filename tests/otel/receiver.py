"""A real OTLP receiver on loopback, as a collector would be: OTLP/HTTP (protobuf) and
OTLP/gRPC, each request decoded with the official ``opentelemetry-proto`` messages.

    with OtlpHttpReceiver() as rx:   # rx.endpoint: http://127.0.0.1:PORT
        ...run qwen-dev with OTEL_EXPORTER_OTLP_ENDPOINT=rx.endpoint...
        spans = rx.spans()           # every span received, flattened
"""

from __future__ import annotations

import gzip
import threading
import zlib
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric
from opentelemetry.proto.trace.v1.trace_pb2 import Span


def value_of(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [value_of(v) for v in value.array_value.values]
    if kind is None:
        return None
    return getattr(value, kind)


def attributes(items: Any) -> dict[str, Any]:
    """A protobuf ``repeated KeyValue`` as a dict."""
    pairs: list[KeyValue] = list(items)
    return {kv.key: value_of(kv.value) for kv in pairs}


@dataclass
class Received:
    """What a receiver was sent."""

    traces: list[ExportTraceServiceRequest]
    metrics: list[ExportMetricsServiceRequest]
    #: The headers of each request (lower-case names).
    headers: list[dict[str, str]]

    def spans(self) -> list[Span]:
        return [
            span
            for request in self.traces
            for resource in request.resource_spans
            for scope in resource.scope_spans
            for span in scope.spans
        ]

    def resources(self) -> list[dict[str, Any]]:
        found = [attributes(r.resource.attributes) for t in self.traces for r in t.resource_spans]
        found += [
            attributes(r.resource.attributes) for m in self.metrics for r in m.resource_metrics
        ]
        return found

    def metric(self, name: str) -> list[Metric]:
        """The metric as last exported (points are cumulative: the last holds all)."""
        for request in reversed(self.metrics):
            found = [
                metric
                for resource in request.resource_metrics
                for scope in resource.scope_metrics
                for metric in scope.metrics
                if metric.name == name
            ]
            if found:
                return found
        return []

    def metric_names(self) -> set[str]:
        return {
            metric.name
            for request in self.metrics
            for resource in request.resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
        }


class OtlpHttpReceiver(Received):
    """OTLP/HTTP with protobuf bodies on ``/v1/traces`` and ``/v1/metrics``."""

    def __init__(self) -> None:
        super().__init__([], [], [])
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # the stdlib's name
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                encoding = self.headers.get("Content-Encoding", "")
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                receiver.headers.append({k.lower(): v for k, v in self.headers.items()})
                reply: bytes
                if self.path == "/v1/traces":
                    receiver.traces.append(ExportTraceServiceRequest.FromString(body))
                    reply = ExportTraceServiceResponse().SerializeToString()
                elif self.path == "/v1/metrics":
                    receiver.metrics.append(ExportMetricsServiceRequest.FromString(body))
                    reply = ExportMetricsServiceResponse().SerializeToString()
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> OtlpHttpReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


class OtlpGrpcReceiver(Received):
    """OTLP/gRPC: the TraceService and MetricsService of ``opentelemetry-proto``."""

    def __init__(self) -> None:
        import grpc
        from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

        super().__init__([], [], [])
        receiver = self

        class Traces(trace_service_pb2_grpc.TraceServiceServicer):
            def Export(  # the service's name
                self, request: ExportTraceServiceRequest, context: Any
            ) -> ExportTraceServiceResponse:
                receiver.headers.append(dict(context.invocation_metadata()))
                receiver.traces.append(request)
                return ExportTraceServiceResponse()

        class Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):
            def Export(
                self, request: ExportMetricsServiceRequest, context: Any
            ) -> ExportMetricsServiceResponse:
                receiver.headers.append(dict(context.invocation_metadata()))
                receiver.metrics.append(request)
                return ExportMetricsServiceResponse()

        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        # The generated gRPC glue of opentelemetry-proto has no annotations.
        add_traces: Any = trace_service_pb2_grpc.add_TraceServiceServicer_to_server
        add_metrics: Any = metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server
        add_traces(Traces(), self._server)
        add_metrics(Metrics(), self._server)
        self._port = self._server.add_insecure_port("127.0.0.1:0")

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def __enter__(self) -> OtlpGrpcReceiver:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop(grace=None)


def walk(spans: list[Span]) -> Iterator[tuple[Span, Span | None]]:
    """Each span with its parent among ``spans`` (``None``: a root)."""
    by_id = {span.span_id: span for span in spans}
    for span in spans:
        yield span, by_id.get(span.parent_span_id) if span.parent_span_id else None
