#!/usr/bin/env python
"""Peak memory of one huge answer: ``qwen-dev ask`` against a loopback server that
streams an answer of 4 to 64 MiB (issue 22, finding 13; goal: at most 150 MB).

    .venv/bin/python scripts/bench_big_answer.py [--sizes 4,16,50,64] [--kinds plain,calls,inline]
        [--output text|no-stream|json|stream-json]
    .venv/bin/python scripts/bench_big_answer.py --renderer [--sizes 4,16] [--kinds plain,line]

Each run is a fresh ``qwen-dev ask`` process (its output into a file, as a pipe to
``less`` or ``> out.txt`` would take it) against the fault server, which streams the
answer in 64 KiB deltas. Four kinds of answer: ``plain`` (lines of prose), ``inline``
(the same prose with three inline code spans a line), ``spans`` (```a`b`` repeated:
the most code spans an answer can hold) and ``calls`` (``<tool_call>{`` repeated, each
copy an unreadable tool call; the model answers "done" the turn after). Asked for:
``fences`` (an empty fence every eight characters), ``braces`` (``inline`` with
```{x}``` for ```x```), ``tagged`` (```<tool_call>``` and a space, repeated: a tag
in every code span) and ``called`` (prose, then one ``read_file`` call). ``64`` means
the largest answer within the 64 MiB body cap (``core/providers/bounds.py``): 63 MiB
of text, the rest of the body being the SSE and JSON framing.

The child reports its own ``VmHWM`` (``/proc/self/status``) at exit: ``ru_maxrss`` of
a child on Linux carries the parent's high-water mark across ``exec``, and this
parent holds the server's copy of the answer. The baseline is a child that runs
``pass`` the same way (the interpreter alone).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import asyncio
import json
import subprocess
import tempfile
from typing import Any

from faultserver import FaultServer, Outcome
from tests.peak_rss import baseline, lab_folders, run_child
from tests.test_cli_ask import write_config

MiB = 1 << 20
CHUNK = 64 * 1024
#: The answer that fits the 64 MiB body cap with its framing (about 200 bytes a delta,
#: and the escaped line breaks).
CAP_ANSWER = 63 * MiB
PROSE = "The quick brown fox jumps over the lazy dog, and then it does so again. " * 3 + "\n"
#: The same prose with inline code: three spans a line, about 900,000 in 64 MiB.
INLINE = "The quick brown fox jumps over the lazy `x`, and then it does so again. " * 3 + "\n"
CALL = "<tool_call>{"
#: Inline code as dense as it comes: a span every four characters (16 million in 63 MiB).
SPANS = "`a`b"
#: Code blocks as dense as they come: an empty fence every eight characters.
FENCES = "```\n```\n"
#: Prose with inline code holding braces: no call, but a ``{`` in every line.
BRACES = "The quick brown fox jumps over the lazy `{x}`, and then it does so again. " * 3 + "\n"
#: A tag in every code span: each one asked about, and its span kept.
TAGGED = "`<tool_call>` "
#: ``called``: prose, then one call that is read (its prose is what the answer keeps).
CALLED = '<tool_call>{"name": "read_file", "arguments": {"path": "a.py"}}</tool_call>\n'
KINDS = ("plain", "calls", "inline", "spans", "fences", "braces", "tagged", "called")
DEFAULT_KINDS = KINDS[:4]
UNITS = {
    "plain": PROSE,
    "calls": CALL,
    "inline": INLINE,
    "spans": SPANS,
    "fences": FENCES,
    "braces": BRACES,
    "tagged": TAGGED,
    "called": PROSE,
}
ENDS = {"called": CALLED}


#: ``--renderer``: the REPL's renderer (``ui/render.py``) fed the answer, in a child
#: that reports its peak RSS and seconds; its tail is drawn each mebibyte, as the live
#: view would. ``line`` is one line of words.
RENDER_CHILD = """
import atexit, json, os, sys, time
def peak():
    status = open("/proc/self/status").read().split("VmHWM:")[1].split()[0]
    open(report, "w").write(json.dumps({"peak_rss_mb": int(status) / 1024, "seconds": took}))
report, unit, chars = sys.argv[1], sys.argv[2], int(sys.argv[3])
atexit.register(peak)
from rich.console import Console
from qwen_dev_cli.ui.render import MarkdownStream
text = unit * (chars // len(unit))
console = Console(file=open(os.devnull, "w"), width=100, height=40, force_terminal=True)
stream = MarkdownStream(console)
started = time.perf_counter()
for at in range(0, len(text), 65536):
    stream.feed(text[at : at + 65536])
    if at % (1 << 20) == 0 and stream.tail_renderable() is not None:
        console.render_lines(stream.tail_renderable())
stream.finish()
took = time.perf_counter() - started
"""
RENDER_UNITS = {"plain": PROSE, "line": "word "}


def render_peak(kind: str, size_mib: float) -> tuple[float, float]:
    """The renderer's child for this answer: (peak RSS MB, seconds)."""
    chars = 0 if size_mib <= 0 else answer_chars(size_mib)
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "peak.json"
        command = [sys.executable, "-c", RENDER_CHILD, str(report), RENDER_UNITS[kind]]
        subprocess.run([*command, str(chars)], check=True, cwd=tmp)
        peak: dict[str, float] = json.loads(report.read_text(encoding="utf-8"))
    return peak["peak_rss_mb"], peak["seconds"]


def _escaped(unit: str) -> int:
    """The characters ``unit`` takes in the JSON of a delta (a line break takes two)."""
    return len(json.dumps(unit)) - 2


def answer_chars(size_mib: float) -> int:
    return CAP_ANSWER if size_mib >= 64 else int(size_mib * MiB)


def answer_text(kind: str, size_mib: float) -> str:
    unit = UNITS[kind]
    chars = answer_chars(size_mib)
    if size_mib >= 64:  # as much as fits the cap, escaped in JSON as prose fits it
        chars = int(chars * min(1.0, _escaped(PROSE) / len(PROSE) * len(unit) / _escaped(unit)))
    end = ENDS.get(kind, "")  # prose ends with its line break, as answers do
    return unit * ((chars - len(end)) // len(unit)) + end


#: ``--output``: how ``ask`` prints the answer.
OUTPUTS = {
    "text": [],
    "no-stream": ["--no-stream"],
    "json": ["--json"],
    "stream-json": ["--output-format", "stream-json"],
}


async def one(kind: str, size_mib: float, output: str = "text") -> dict[str, Any]:
    answer = answer_text(kind, size_mib)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        workspace, home, env = lab_folders(root)
        async with FaultServer() as srv:
            srv.script(Outcome.ok(answer, chunk_size=CHUNK), Outcome.ok("done"))
            del answer
            config = write_config(root / "c.toml", srv)
            argv = ["ask", *OUTPUTS[output], "--approval", "yolo", "--config", str(config), "go"]
            out = root / "out.txt"
            peak, elapsed = await run_child(
                argv, cwd=workspace, env=env, report=root / "peak.json", out=out
            )
            requests = len(srv.requests)
        if requests != (2 if kind in ("calls", "called") else 1):  # a retry: the answer was refused
            raise SystemExit(f"{kind} {size_mib} MiB: {requests} requests, not the answer")
        session_bytes = sum(p.stat().st_size for p in (home / "sessions").glob("*.jsonl"))
        return {
            "kind": kind,
            "output": output,
            "answer_mib": size_mib,
            "peak_rss_mb": round(peak, 1),
            "seconds": round(elapsed, 2),
            "output_mb": round(out.stat().st_size / 1e6, 2),
            "session_file_mb": round(session_bytes / 1e6, 2),
            "requests": requests,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--sizes", default="4,16,50,64", help="MiB of answer, comma-separated")
    parser.add_argument(
        "--kinds",
        default=",".join(DEFAULT_KINDS),
        help="plain, calls, inline, spans; also fences, braces, tagged (comma-separated)",
    )
    parser.add_argument("--output", default="text", choices=OUTPUTS, help="ask's output")
    parser.add_argument("--json", type=Path, help="write the rows here too")
    parser.add_argument(
        "--renderer", action="store_true", help="the REPL's renderer instead (kinds plain, line)"
    )
    args = parser.parse_args()
    if args.renderer:
        renderer(args)
        return
    kinds = [k for k in args.kinds.split(",") if k]
    if unknown := set(kinds) - set(KINDS):
        parser.error(f"unknown kind: {', '.join(sorted(unknown))}")
    sizes = [float(s) for s in args.sizes.split(",")]
    base = asyncio.run(baseline())
    print(f"baseline (python -c pass): peak RSS {base:.1f} MB", flush=True)
    rows: list[dict[str, Any]] = []
    for kind in kinds:
        for size in sizes:
            row = asyncio.run(one(kind, size, args.output))
            row["baseline_mb"] = round(base, 1)
            rows.append(row)
            print(
                f"{kind:>5} {size:>4g} MiB: peak RSS {row['peak_rss_mb']:>7.1f} MB "
                f"({row['peak_rss_mb'] / base:4.1f}x baseline)  {row['seconds']:>6.1f} s  "
                f"output {row['output_mb']:>6.2f} MB  session {row['session_file_mb']:>6.2f} MB  "
                f"requests {row['requests']}",
                flush=True,
            )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")


def renderer(args: argparse.Namespace) -> None:
    kinds = [k for k in args.kinds.split(",") if k in RENDER_UNITS] or list(RENDER_UNITS)
    base, _ = render_peak("plain", 0)
    print(f"baseline (the renderer's imports): peak RSS {base:.1f} MB", flush=True)
    rows = []
    for kind in kinds:
        for size in (float(s) for s in args.sizes.split(",")):
            peak, seconds = render_peak(kind, size)
            rows.append({"kind": kind, "answer_mib": size, "peak_rss_mb": round(peak, 1),
                         "seconds": round(seconds, 2), "baseline_mb": round(base, 1)})  # fmt: skip
            print(
                f"{kind:>5} {size:>4g} MiB: peak RSS {peak:>7.1f} MB "
                f"(+{peak - base:.1f} MB; the child holds the answer once)  "
                f"{seconds:>6.1f} s",
                flush=True,
            )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
