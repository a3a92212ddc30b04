#!/usr/bin/env python
"""Peak memory of the turn after a huge answer: ``qwen-dev ask -c`` resuming a session
whose last answer was 4 to 64 MiB (issue 22, findings 2 and 13; goal: at most 150 MB).

    PYTHONPATH=. .venv/bin/python scripts/bench_next_request.py [--sizes 16,50,64]
        [--window 8192,32000000] [--kinds plain,calls] [--repl] [--json out.json]

Turn 1 is ``scripts/bench_big_answer.py``'s run: a fresh ``qwen-dev ask --approval
yolo go`` against the fault server, which streams the answer in 64 KiB deltas (its
peak is printed too). Turn 2 is ``qwen-dev ask -c --approval yolo next`` in the same
workspace and home: it loads the session file holding that answer and sends the next
request of the conversation; the fault server answers it (and any summarisation
request) with its default text. ``--window`` is the provider's ``context_window``: at
8192 (the default of an unknown server) the answer cannot fit and the conversation is
compacted first; a window large enough for it (32,000,000 tokens holds 63 MiB) sends
the answer back whole, as a long-context model would get it.

Each child reports its own ``VmHWM`` at exit (see ``bench_big_answer.py``). Printed per
turn 2: its peak, the requests the server received (their ``Content-Length``) and the
largest message in them. ``--repl``: both turns in one REPL in a pseudo-terminal
(pexpect), the second turn's peak counted from the RSS the first left (the child's
peak is reset between them through ``/proc/PID/clear_refs``).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import asyncio
import json
import tempfile
import time
from typing import Any

from faultserver import FaultServer, Outcome
from tests.peak_rss import baseline, lab_folders, run_child
from tests.test_cli_ask import write_config

KINDS = ("plain", "calls")
MiB = 1 << 20
CHUNK = 64 * 1024
#: The largest answer within the 64 MiB body cap with its framing (as in
#: ``bench_big_answer.py``).
CAP_ANSWER = 63 * MiB
UNITS = {
    "plain": "The quick brown fox jumps over the lazy dog, and then it does so again. " * 3 + "\n",
    "calls": "<tool_call>{",
}


def answer_text(kind: str, size_mib: float) -> str:
    chars = CAP_ANSWER if size_mib >= 64 else int(size_mib * MiB)
    unit = UNITS[kind]
    return unit * (chars // len(unit))


async def one(kind: str, size_mib: float, window: int) -> dict[str, Any]:
    answer = answer_text(kind, size_mib)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        workspace, home, env = lab_folders(root)
        async with FaultServer() as srv:
            srv.script(Outcome.ok(answer, chunk_size=CHUNK), Outcome.ok("done"))
            del answer
            config = write_config(root / "c.toml", srv, provider_extra=f"context_window = {window}")
            common = ["--approval", "yolo", "--config", str(config)]
            first, _ = await run_child(
                ["ask", *common, "go"],
                cwd=workspace, env=env, report=root / "peak1.json", out=root / "out1.txt",
            )  # fmt: skip
            turn1 = len(srv.requests)
            session_bytes = sum(p.stat().st_size for p in (home / "sessions").glob("*.jsonl"))
            second, seconds = await run_child(
                ["ask", "-c", *common, "next"],
                cwd=workspace, env=env, report=root / "peak2.json", out=root / "out2.txt",
            )  # fmt: skip
            sent = srv.requests[turn1:]
            lengths = [int(r.headers.get("content-length", 0)) for r in sent]
            largest = max((_largest_message(r.json) for r in sent), default=0)
            del sent
        return {
            "kind": kind,
            "answer_mib": size_mib,
            "window": window,
            "turn1_peak_mb": round(first, 1),
            "session_file_mb": round(session_bytes / 1e6, 2),
            "turn2_peak_mb": round(second, 1),
            "turn2_seconds": round(seconds, 2),
            "turn2_requests": len(lengths),
            "turn2_request_mb": [round(n / 1e6, 3) for n in lengths],
            "turn2_largest_message_chars": largest,
        }


async def repl_one(kind: str, size_mib: float, window: int) -> dict[str, Any]:
    """The same two turns in one REPL, in a pseudo-terminal: each turn's peak (the
    child's ``VmHWM``, reset between the turns through ``/proc/PID/clear_refs``)."""
    answer = answer_text(kind, size_mib)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        workspace, _, env = lab_folders(root, TERM="xterm-256color")
        async with FaultServer() as srv:
            srv.script(Outcome.ok(answer, chunk_size=CHUNK), Outcome.ok("done"))
            del answer
            config = write_config(root / "c.toml", srv, provider_extra=f"context_window = {window}")
            started = time.perf_counter()
            first, between, second = await asyncio.to_thread(_drive_repl, config, workspace, env)
            seconds = time.perf_counter() - started
            lengths = [int(r.headers.get("content-length", 0)) for r in srv.requests[1:]]
        return {
            "kind": kind,
            "answer_mib": size_mib,
            "window": window,
            "turn1_peak_mb": round(first, 1),
            "rss_after_turn1_mb": round(between, 1),
            "turn2_peak_mb": round(second, 1),
            "seconds": round(seconds, 1),
            "turn2_requests": len(lengths),
            "turn2_request_mb": [round(n / 1e6, 3) for n in lengths],
        }


def _drive_repl(config: Path, workspace: Path, env: dict[str, str]) -> tuple[float, float, float]:
    import pexpect

    from tests.ui.test_repl_pty import Terminal

    child = pexpect.spawn(
        sys.executable,
        ["-m", "qwen_dev_cli", "--approval", "yolo", "--config", str(config)],
        cwd=str(workspace), env=env, dimensions=(40, 160), encoding="utf-8",
        timeout=1800, searchwindowsize=8192,
    )  # fmt: skip
    terminal = Terminal(child)
    terminal.expect("lab CLOSED")
    status = Path(f"/proc/{child.pid}/status")
    terminal.sendline("go")
    terminal.expect_exact("─ lab · fault-model")  # the turn's summary line
    first = _hwm(status)
    Path(f"/proc/{child.pid}/clear_refs").write_text("5")  # VmHWM := VmRSS
    between = _hwm(status)
    terminal.sendline("next")
    terminal.expect_exact("─ lab · fault-model")
    second = _hwm(status)
    terminal.leave()
    return first, between, second


def _hwm(status: Path) -> float:
    return int(status.read_text().split("VmHWM:")[1].split()[0]) / 1024


def _largest_message(body: Any) -> int:
    if not isinstance(body, dict):
        return 0
    return max((len(str(m.get("content") or "")) for m in body.get("messages") or ()), default=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--sizes", default="16,50,64", help="MiB of answer, comma-separated")
    parser.add_argument("--kinds", default="plain", help="plain, calls (comma-separated)")
    parser.add_argument(
        "--window", default="8192,32000000", help="context_window values, comma-separated"
    )
    parser.add_argument(
        "--repl", action="store_true", help="both turns in one REPL, in a pseudo-terminal"
    )
    parser.add_argument("--json", type=Path, help="write the rows here too")
    args = parser.parse_args()
    kinds = [k for k in args.kinds.split(",") if k]
    if unknown := set(kinds) - set(KINDS):
        parser.error(f"unknown kind: {', '.join(sorted(unknown))}")
    base = asyncio.run(baseline())
    print(f"baseline (python -c pass): peak RSS {base:.1f} MB", flush=True)
    rows = []
    for window in (int(w) for w in args.window.split(",")):
        for kind in kinds:
            for size in (float(s) for s in args.sizes.split(",")):
                if args.repl:
                    rows.append(repl_row(kind, size, window))
                    continue
                row = asyncio.run(one(kind, size, window))
                rows.append(row)
                sizes = ", ".join(f"{mb:g}" for mb in row["turn2_request_mb"])
                print(
                    f"window {window:>10,} {kind:>5} {size:>4g} MiB: turn 1 peak "
                    f"{row['turn1_peak_mb']:>6.1f} MB, session {row['session_file_mb']:>6.2f} MB; "
                    f"turn 2 (ask -c) peak {row['turn2_peak_mb']:>6.1f} MB "
                    f"{row['turn2_seconds']:>5.1f} s, requests MB [{sizes}], largest message "
                    f"{row['turn2_largest_message_chars']:,} chars",
                    flush=True,
                )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")


def repl_row(kind: str, size: float, window: int) -> dict[str, Any]:
    row = asyncio.run(repl_one(kind, size, window))
    sizes = ", ".join(f"{mb:g}" for mb in row["turn2_request_mb"])
    print(
        f"REPL window {window:>10,} {kind:>5} {size:>4g} MiB: turn 1 peak "
        f"{row['turn1_peak_mb']:>6.1f} MB; turn 2 peak {row['turn2_peak_mb']:>6.1f} MB "
        f"(from {row['rss_after_turn1_mb']:.1f} MB after turn 1), requests MB [{sizes}], "
        f"{row['seconds']:.0f} s in all",
        flush=True,
    )
    return row


if __name__ == "__main__":
    main()
