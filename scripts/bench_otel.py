#!/usr/bin/env python
"""Per-request cost of the OpenTelemetry export (issue 23), paired like
``scripts/bench_client.py --only overhead``.

    .venv/bin/python scripts/bench_otel.py [--quick]

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
Needs the [otel] extra.
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true")
    cfg = QUICK if parser.parse_args().quick else FULL
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
