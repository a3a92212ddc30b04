#!/usr/bin/env python
"""Per-request cost of the OpenTelemetry export (issue 23), paired like
``scripts/bench_client.py --only overhead``.

    .venv/bin/python scripts/bench_otel.py [--quick] [--worker-only]

Three clients take turns in blocks (A/B/C, B/C/A, ...) against one fault server in its
own process: ``LLMClient`` with export off (today's client), ``LLMClient`` with export
on (spans and metrics to a real OTLP/HTTP receiver in another process), and raw httpx.

The export's work runs off the request's path (the observer's worker thread, the SDK's
batch processor, the receiver): left alone, it spills into whichever block runs next,
so "off" and raw httpx paid for it and export on looked faster than off (0.456x). So
after each "on" block, untimed, the worker is drained and the spans and metrics are
flushed to the receiver; the receiver runs on the server's CPU, not the clients'.
Reported: each one's median per request, the median of per-block ratios of the
caller's latency, and of process CPU per request (all threads, the drain and flush
charged to the "on" block: what export costs in all, wherever it runs).
Targets: export on / off <= 1.10x; off / raw httpx as bench_client's overhead (1.15x).

``--worker-only`` measures, in isolation (no server, no network, spans kept in memory),
the CPU the observer's worker thread spends a request (read from the thread's own CPU
clock), and the request path's own CPU: a change of a few microseconds is lost in the
paired ratio's noise on a loaded machine, not here. Needs the [otel] extra.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import argparse
import asyncio
import os
import statistics
import subprocess
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from bench_client import (
    FULL,
    MODEL,
    PROMPT,
    QUICK,
    Config,
    make_llm,
    make_raw,
    paired_block_ratio,
    raw_chat,
    rotations,
    separate_cpus,
    us,
)

from faultserver import FaultServerProcess
from qwen_dev_cli.core.settings import ProviderSettings
from qwen_dev_cli.otel import OtlpTarget
from qwen_dev_cli.otel.exporter import shared_exporter

SHORT_TEXT = "Hello from the benchmark server, all systems nominal."
RECEIVER = (
    "import sys, time\n"
    "from tests.otel.receiver import OtlpHttpReceiver\n"
    "with OtlpHttpReceiver() as rx:\n"
    "    print(rx.endpoint, flush=True)\n"
    "    sys.stdin.read()\n"
    "    print(len(rx.spans()), flush=True)\n"
)


@dataclass
class Samples:
    """Per-request seconds of each client, and each block's CPU seconds per request."""

    latency: dict[str, list[float]] = field(default_factory=dict)
    cpu: dict[str, list[float]] = field(default_factory=dict)


async def run(url: str, collector: str, cfg: Config) -> Samples:
    off = make_llm([url])
    on = make_llm([url])
    exporter = shared_exporter(OtlpTarget(collector, "http/protobuf", False), print)
    assert exporter is not None
    on.telemetry.observers.append(
        exporter.observer([ProviderSettings(name="a", base_url=url, model=MODEL)])
    )
    raw = make_raw(url)

    def settle_export() -> None:
        """Everything the "on" block noted made into spans and points, and sent."""
        assert exporter is not None
        if not exporter.drain(30.0):
            raise RuntimeError("the export worker did not drain in 30 s")
        exporter.tracer_provider.force_flush(30_000)
        exporter.meter_provider.force_flush(30_000)

    async def via_off() -> str:
        return (await off.chat(PROMPT)).text

    async def via_on() -> str:
        return (await on.chat(PROMPT)).text

    async def via_raw() -> str:
        return await raw_chat(raw)

    calls: dict[str, Callable[[], Awaitable[str]]] = {
        "export off": via_off,
        "export on": via_on,
        "raw httpx": via_raw,
    }
    after: dict[str, Callable[[], None]] = {"export on": settle_export}
    try:
        for name, call in calls.items():
            for _ in range(cfg.overhead_warmup):
                await call()
            if name in after:
                after[name]()
        samples = Samples({name: [] for name in calls}, {name: [] for name in calls})
        per_block = cfg.overhead_requests // cfg.overhead_blocks
        clock, cpu = time.perf_counter, time.process_time
        for order in rotations(list(calls), cfg.overhead_blocks):
            for name in order:
                call, out = calls[name], samples.latency[name]
                cpu_started = cpu()
                for _ in range(per_block):
                    started = clock()
                    text = await call()
                    out.append(clock() - started)
                    if text != SHORT_TEXT:
                        raise RuntimeError(f"{name} answered {text!r}")
                if name in after:
                    after[name]()
                samples.cpu[name].append((cpu() - cpu_started) / per_block)
        return samples
    finally:
        await off.aclose()
        await on.aclose()
        await raw.aclose()
        exporter.close()


def worker_only(requests: int, rounds: int) -> None:
    """The worker's CPU a successful request, and the request path's, in process
    (``requests`` a round: their spans within the batch processor's queue, 2,048)."""
    from opentelemetry.sdk.metrics.export import (
        MetricExporter,
        MetricExportResult,
        MetricsData,
    )
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from qwen_dev_cli.core import events as ev
    from qwen_dev_cli.core.telemetry import Telemetry
    from qwen_dev_cli.core.types import ChatRequest, ChatResult, Usage
    from qwen_dev_cli.otel.exporter import Exporter

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

    spans = InMemorySpanExporter()
    target = OtlpTarget("http://127.0.0.1:9", "http/protobuf", False)
    exporter = Exporter(target, spans, NoMetrics(), print)
    on, off = Telemetry(), Telemetry()
    provider = ProviderSettings(name="a", base_url="http://127.0.0.1:8000/v1", model=MODEL)
    on.observers.append(exporter.observer([provider]))
    result = ChatResult(SHORT_TEXT, [], Usage(12, 9, 21), "a", MODEL, 1, 1.0, "stop")
    worker = exporter.worker.ident
    assert worker is not None
    worker_clock = time.pthread_getcpuclockid(worker)

    def chats(telemetry: Telemetry, count: int) -> None:
        for _ in range(count):
            trace = telemetry.request_started(ChatRequest(PROMPT, None, None, None, None))
            telemetry.observe(ev.AttemptStarted("a", MODEL, 1))
            telemetry.attempt_finished("a", ok=True, error=None)
            telemetry.request_finished(
                ok=True, latency_ms=1.0, tokens=21, trace=trace, provider="a", result=result
            )

    chats(on, 200)  # warm-up
    exporter.drain(30.0)
    exporter.tracer_provider.force_flush(30_000)
    worker_cpu: list[float] = []
    path_cpu: list[float] = []
    try:
        for _ in range(rounds):
            spans.clear()
            started = time.thread_time()
            chats(off, requests)
            off_cpu = time.thread_time() - started
            worker_started = time.clock_gettime(worker_clock)
            started = time.thread_time()
            chats(on, requests)
            path_cpu.append((time.thread_time() - started - off_cpu) / requests)
            if not exporter.drain(60.0):
                raise RuntimeError("the export worker did not drain in 60 s")
            worker_cpu.append((time.clock_gettime(worker_clock) - worker_started) / requests)
            exporter.tracer_provider.force_flush(30_000)
            if len(spans.get_finished_spans()) != 2 * requests:
                raise RuntimeError("spans missing")
    finally:
        exporter.close(1.0)
    print(
        f"worker CPU a request: median {us(statistics.median(worker_cpu))} "
        f"(min {us(min(worker_cpu))}, {rounds} rounds of {requests} requests)"
    )
    print(f"request path CPU a request (on - off): median {us(statistics.median(path_cpu))}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--worker-only", action="store_true")
    args = parser.parse_args()
    if args.worker_only:
        worker_only(250 if args.quick else 800, 3 if args.quick else 9)
        return 0
    cfg = QUICK if args.quick else FULL
    root = Path(__file__).resolve().parent.parent
    receiver = subprocess.Popen(
        [sys.executable, "-c", RECEIVER],
        cwd=root,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert receiver.stdout is not None
    assert receiver.stdin is not None
    collector = receiver.stdout.readline().strip()
    try:
        with FaultServerProcess(text=SHORT_TEXT, model=MODEL) as server, separate_cpus(server):
            if server.pid is not None and hasattr(os, "sched_setaffinity"):
                # Beside the server: its decoding must not take the clients' CPU.
                os.sched_setaffinity(receiver.pid, os.sched_getaffinity(server.pid))
            samples = asyncio.run(run(server.base_url, collector, cfg))
    finally:
        receiver.stdin.close()
        spans = receiver.stdout.readline().strip()
        receiver.wait(10)
    latency = samples.latency
    requests = cfg.overhead_warmup + cfg.overhead_requests // cfg.overhead_blocks * (
        cfg.overhead_blocks
    )
    for name, times in latency.items():
        cpu = statistics.median(samples.cpu[name])
        print(
            f"{name:>11}: median {us(statistics.median(times))} per request, "
            f"CPU {us(cpu)} per request ({len(times)} requests)"
        )
    blocks = cfg.overhead_blocks
    on_off = paired_block_ratio(latency["export on"], latency["export off"], blocks)
    off_raw = paired_block_ratio(latency["export off"], latency["raw httpx"], blocks)
    cpu_ratio = statistics.median(
        a / b for a, b in zip(samples.cpu["export on"], samples.cpu["export off"], strict=True)
    )
    print(f"export on / off, latency (median of block ratios): {on_off:.3f}x  (target <= 1.10x)")
    print(f"export on / off, CPU a request (drain, flush too):  {cpu_ratio:.3f}x")
    print(
        f"export off / raw httpx, latency (same):             {off_raw:.3f}x  (bench_client 1.15x)"
    )
    print(f"spans the receiver decoded: {spans} (2 a request: {2 * requests} expected)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
