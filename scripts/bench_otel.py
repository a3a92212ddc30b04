#!/usr/bin/env python
"""Per-request cost of the OpenTelemetry export (issue 23), paired like
``scripts/bench_client.py --only overhead``.

    .venv/bin/python scripts/bench_otel.py [--quick]

Three clients take turns in blocks (A/B/C, B/C/A, ...) against one fault server in its
own process: ``LLMClient`` with export off (today's client), ``LLMClient`` with export
on (spans and metrics to a real OTLP/HTTP receiver in another process), and raw httpx.
Reported: each one's median per request and the median of per-block ratios.
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
import statistics
import subprocess

from bench_client import (
    FULL,
    MODEL,
    PROMPT,
    QUICK,
    Config,
    _time_alternating,
    make_llm,
    make_raw,
    paired_block_ratio,
    raw_chat,
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


async def run(url: str, collector: str, cfg: Config) -> dict[str, list[float]]:
    off = make_llm([url])
    on = make_llm([url])
    exporter = shared_exporter(OtlpTarget(collector, "http/protobuf", False), print)
    assert exporter is not None
    on.telemetry.observers.append(
        exporter.observer([ProviderSettings(name="a", base_url=url, model=MODEL)])
    )
    raw = make_raw(url)

    async def via_off() -> str:
        return (await off.chat(PROMPT)).text

    async def via_on() -> str:
        return (await on.chat(PROMPT)).text

    async def via_raw() -> str:
        return await raw_chat(raw)

    calls = {"export off": via_off, "export on": via_on, "raw httpx": via_raw}
    try:
        return await _time_alternating(calls, cfg)
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
            samples = asyncio.run(run(server.base_url, collector, cfg))
    finally:
        receiver.stdin.close()
        spans = receiver.stdout.readline().strip()
        receiver.wait(10)
    medians = {name: statistics.median(times) for name, times in samples.items()}
    for name, value in medians.items():
        print(f"{name:>11}: median {us(value)} per request ({len(samples[name])} requests)")
    blocks = cfg.overhead_blocks
    on_off = paired_block_ratio(samples["export on"], samples["export off"], blocks)
    off_raw = paired_block_ratio(samples["export off"], samples["raw httpx"], blocks)
    print(f"export on / off (median of per-block ratios): {on_off:.3f}x  (target <= 1.10x)")
    print(f"export off / raw httpx (same):                {off_raw:.3f}x  (bench_client: 1.15x)")
    print(f"spans the receiver decoded: {spans}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
