"""Peak memory of a real ``qwen-dev`` process: a fresh interpreter runs it and writes
its own peak RSS (``VmHWM``) to a file when it exits, however it exits. Shared by the
memory benchmarks (``scripts/bench_big_answer.py``, ``scripts/bench_next_request.py``).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

#: The child: ``qwen-dev ARGV`` in this interpreter (nothing without ARGV: the
#: baseline), its peak RSS written to the file named first, however it exits.
CHILD = """
import atexit, json, resource, sys
def peak():
    status = open("/proc/self/status").read().split("VmHWM:")[1].split()[0]
    mb = {"peak_rss_mb": int(status) / 1024,
          "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    open(report, "w").write(json.dumps(mb))
report = sys.argv[1]
atexit.register(peak)
if sys.argv[2:]:
    sys.argv = ["qwen-dev", *sys.argv[2:]]
    from qwen_dev_cli.entry import main
    main()
"""


async def run_child(
    argv: list[str], *, cwd: Path, env: dict[str, str], report: Path, out: Path
) -> tuple[float, float]:
    """Run ``qwen-dev ARGV`` (nothing for no ARGV) in a fresh interpreter, its output
    into ``out``; return (its peak RSS in MB, seconds)."""
    started = time.perf_counter()
    with out.open("wb") as sink:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", CHILD, str(report), *argv, stdin=asyncio.subprocess.DEVNULL,
            stdout=sink, stderr=asyncio.subprocess.PIPE, cwd=cwd, env=env,
        )  # fmt: skip
        _, err = await proc.communicate()
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"child failed ({proc.returncode}): {err.decode()[-2000:]}")
    return peak_of(report), elapsed


def peak_of(report: Path) -> float:
    """The peak RSS, in MB, a child wrote to ``report``."""
    peak: dict[str, float] = json.loads(report.read_text(encoding="utf-8"))
    return peak["peak_rss_mb"]


async def baseline() -> float:
    """The peak RSS of the interpreter alone (``python -c pass``, as the child runs it)."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        peak, _ = await run_child(
            [], cwd=root, env=dict(os.environ), report=root / "peak.json", out=root / "out"
        )
    return peak


def lab_folders(root: Path, **env: str) -> tuple[Path, Path, dict[str, str]]:
    """A project folder and a ``QWEN_DEV_HOME`` under ``root``, and the environment
    that points the child at that home (with ``env`` added)."""
    workspace, home = root / "project", root / "home"
    workspace.mkdir()
    home.mkdir()
    return workspace, home, {**os.environ, "QWEN_DEV_HOME": str(home), **env}
