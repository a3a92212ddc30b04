#!/usr/bin/env python
"""What one hostile answer costs: ``qwen-dev ask`` against a fault server whose first
answer is ``<tool_call>{`` repeated to a given size (each copy an unreadable call),
then "done".

    .venv/bin/python scripts/bench_amplification.py [--sizes 1,4] [--json out.json]

For each size (MiB of answer): the wall time of the whole ``ask``, the process's peak
RSS (``ru_maxrss`` of the child), the size of the next request (the one carrying the
tool results), and the size of the session file. Issue 22, finding 2: before the cap,
1 MiB cost 33 s, 301 MB, a 28.8 MB next request and a 36 MB session file.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import asyncio
import json
import os
import resource
import tempfile
import time
from typing import Any

from faultserver import FaultServer, Outcome
from tests.test_cli_ask import write_config

PATTERN = "<tool_call>{"


async def one(size_mib: float) -> dict[str, Any]:
    answer = PATTERN * int(size_mib * (1 << 20) / len(PATTERN))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        workspace, home = root / "project", root / "home"
        workspace.mkdir()
        home.mkdir()
        async with FaultServer() as srv:
            srv.script(Outcome.ok(answer, chunk_size=4096), Outcome.ok("done"))
            config = write_config(root / "c.toml", srv)
            env = {**os.environ, "QWEN_DEV_HOME": str(home)}
            before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            started = time.perf_counter()
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "qwen_dev_cli", "ask", "--json", "--approval", "yolo",
                "--config", str(config), "go",
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, cwd=workspace, env=env,
            )  # fmt: skip
            out, err = await proc.communicate()
            elapsed = time.perf_counter() - started
            peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            if proc.returncode != 0:
                raise SystemExit(f"ask failed ({proc.returncode}): {err.decode()[-2000:]}")
            requests = srv.requests
            next_request = len(json.dumps(requests[1].json)) if len(requests) > 1 else 0
        sessions = list((home / "sessions").glob("*.jsonl"))
        session_bytes = sum(p.stat().st_size for p in sessions)
        tool_calls = len(json.loads(out)["tool_calls"])
    return {
        "answer_mib": size_mib,
        "seconds": round(elapsed, 2),
        # ru_maxrss of the children: the largest so far, so run the sizes in rising order
        "peak_rss_mb": round(max(peak, before) / 1024, 1),
        "next_request_mb": round(next_request / 1e6, 3),
        "session_file_mb": round(session_bytes / 1e6, 3),
        "tool_results": tool_calls,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1,4", help="answer sizes in MiB, comma-separated")
    parser.add_argument("--json", type=Path, help="write the rows here too")
    args = parser.parse_args()
    sizes = sorted(float(s) for s in args.sizes.split(","))
    rows = []
    for size in sizes:
        row = asyncio.run(one(size))
        rows.append(row)
        print(
            f"{row['answer_mib']:>5g} MiB answer: {row['seconds']:>7.2f} s  "
            f"peak RSS {row['peak_rss_mb']:>7.1f} MB  next request "
            f"{row['next_request_mb']:>8.3f} MB  session file {row['session_file_mb']:>8.3f} MB  "
            f"tool results {row['tool_results']}",
            flush=True,
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
