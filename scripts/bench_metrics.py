#!/usr/bin/env python
"""``qwen-dev metrics --json`` over many stored runs (issue 23: 1,000 runs in <= 0.5 s).

    .venv/bin/python scripts/bench_metrics.py [--runs-stored 1000] [--repeat 5]

Writes a metrics log of that many runs (each 1 to 50 requests over two providers, some
failures, streamed first tokens) into a temporary QWEN_DEV_HOME, then times the real
command (a subprocess, start-up included) and, apart, the aggregation alone.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import json
import os
import random
import statistics
import subprocess
import tempfile
import time

from qwen_dev_cli.core.errors import ServerError
from qwen_dev_cli.core.telemetry import Telemetry
from qwen_dev_cli.session.metrics_log import MetricsLog


def fill(log: MetricsLog, runs: int, rng: random.Random) -> None:
    for _ in range(runs):
        telemetry = Telemetry()
        for _ in range(rng.randint(1, 50)):
            provider = rng.choice(["sambanova", "hf"])
            if rng.random() < 0.1:
                telemetry.attempt_finished(provider, ok=False, error=ServerError("x"))
            telemetry.attempt_finished(provider, ok=True)
            latency = rng.lognormvariate(7.0, 1.2)
            telemetry.request_finished(
                ok=True,
                latency_ms=latency,
                tokens=100,
                provider=provider,
                input_tokens=80,
                output_tokens=20,
                ttft_ms=latency * 0.2,
            )
        log.append(telemetry.snapshot())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs-stored", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        log = MetricsLog(Path(home) / "metrics.jsonl")
        fill(log, args.runs_stored, random.Random(1))
        size = log.path.stat().st_size
        inner = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            merged = log.aggregate()
            inner.append(time.perf_counter() - start)
        env = {**os.environ, "QWEN_DEV_HOME": home}
        command = [sys.executable, "-m", "qwen_dev_cli", "metrics", "--json"]
        outer = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            done = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
            outer.append(time.perf_counter() - start)
            # The command read this log (not another home's, nor nothing).
            told = json.loads(done.stdout)
            if (told["runs"], told["total_requests"]) != (merged["runs"], merged["total_requests"]):
                raise SystemExit(f"qwen-dev metrics saw {told['runs']} runs, not {merged['runs']}")
    print(f"{merged['runs']} runs, {merged['total_requests']} requests, log {size / 1e6:.1f} MB")
    print(f"aggregate():            median {statistics.median(inner) * 1000:.0f} ms")
    print(f"qwen-dev metrics --json: median {statistics.median(outer) * 1000:.0f} ms (target 500)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
