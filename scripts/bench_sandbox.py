#!/usr/bin/env python
"""What the OS sandbox costs ``run_command``: sandboxed against unsandboxed, paired.

    .venv/bin/python scripts/bench_sandbox.py [--rounds N] [--strict]

Both sides go through ``run_shell`` (the code path of ``run_command``): the baseline
with ``sandbox=None``, the other with the sandbox :func:`detect_sandbox` finds. Each
round runs the two back to back in alternating order, so drift hits both alike.
Workloads: ``true`` (the fixed cost of a call) and ``ls -R`` of this repository. The
goal is at most 30 ms added per call (median); ``--strict`` exits 1 when it is missed.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import asyncio
import statistics
import time

from qwen_dev_cli.tools.command import run_shell
from qwen_dev_cli.tools.sandbox import Sandbox, detect_sandbox

REPO = Path(__file__).resolve().parent.parent
GOAL_MS = 30.0
WORKLOADS = {"true": "true", "ls -R repo": "ls -R . > /dev/null"}


async def timed(command: str, sandbox: Sandbox | None) -> float:
    started = time.perf_counter()
    result = await run_shell(command, REPO, 60, 10_000, writable=REPO, sandbox=sandbox)
    elapsed = time.perf_counter() - started
    if not result.ok:
        raise SystemExit(f"{command!r} failed: {result.for_model()}")
    return elapsed * 1000


async def bench(rounds: int, sandbox: Sandbox) -> list[tuple[str, float, float]]:
    rows = []
    for name, command in WORKLOADS.items():
        plain: list[float] = []
        boxed: list[float] = []
        for _ in range(3):
            await timed(command, None)
            await timed(command, sandbox)
        for i in range(rounds):
            order = [(None, plain), (sandbox, boxed)]
            for box, into in order if i % 2 == 0 else reversed(order):
                into.append(await timed(command, box))
        rows.append((name, statistics.median(plain), statistics.median(boxed)))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--strict", action="store_true")
    options = parser.parse_args()
    status = detect_sandbox()
    if status.sandbox is None:
        print(f"no sandbox here: {status.detail}", file=sys.stderr)
        return 2
    rows = asyncio.run(bench(options.rounds, status.sandbox))
    print(f"{status.detail}; {options.rounds} paired rounds; medians")
    print(f"{'workload':<12} {'plain ms':>9} {'sandbox ms':>11} {'added ms':>9} {'ratio':>6}")
    missed = False
    for name, plain, boxed in rows:
        added = boxed - plain
        missed = missed or added > GOAL_MS
        print(f"{name:<12} {plain:9.1f} {boxed:11.1f} {added:9.1f} {boxed / plain:6.2f}x")
    print(f"goal: at most {GOAL_MS:.0f} ms added per call: {'missed' if missed else 'met'}")
    return 1 if missed and options.strict else 0


if __name__ == "__main__":
    sys.exit(main())
