#!/usr/bin/env python
"""Streaming markdown render cost: does a chunk cost the same at the end of a long
answer as at its start?

    .venv/bin/python scripts/bench_render.py [--tokens 20000] [--seed 7] [--strict]

A realistic answer (headings, paragraphs, tight and loose lists, block quotes, tables,
code blocks of several languages) is generated, cut into ~token-sized chunks and
streamed through the REPL's display (``TurnView``: the markdown renderer under a rich
``Live`` with the status line as its footer) into a terminal console that writes to
/dev/null. Time is simulated for the throttle (a chunk every 15 ms, ~66 tokens/s, so
the live tail is redrawn at the REPL's frame rate); the cost of each chunk is measured
for real. Target: the mean time per chunk over the last tenth of the answer within
1.5x of the first tenth.

The baseline, measured in the same run on a shorter answer, re-renders the whole
answer so far on every frame (the simple way to stream markdown): its cost per chunk
grows with the answer.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import IO

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import asyncio
import os
import random
import re
import statistics
import time
from collections.abc import Callable

from rich.console import Console
from rich.live import Live
from rich.markdown import Markdown

from qwen_dev_cli.agent.turn import AssistantText
from qwen_dev_cli.core.status import ClientStatus, ProviderStatus
from qwen_dev_cli.ui.statusbar import StatusBar
from qwen_dev_cli.ui.turnview import TurnView

CHUNK_SECONDS = 0.015
_PROSE = (
    "the client retries with backoff and honours retry after headers while the breaker "
    "stays closed until failures pile up then it opens and the router fails over to the "
    "next provider in priority order so the user keeps getting answers rate limits are "
    "paced by a sliding window of requests and tokens per minute"
)
WORDS = _PROSE.split()
CODE = {
    "python": [
        "def {name}(items: list[int]) -> int:",
        '    """Sum the even items."""',
        "    total = 0",
        "    for item in items:",
        "        if item % 2 == 0:",
        "            total += item  # keep it",
        "    return total",
        "",
        "class {Name}:",
        "    def __init__(self, limit: float = 1.5) -> None:",
        "        self.limit = limit",
    ],
    "javascript": [
        "export async function {name}(url) {{",
        "  const response = await fetch(url, {{ method: 'POST' }});",
        "  if (!response.ok) throw new Error(`status ${{response.status}}`);",
        "  return response.json();",
        "}}",
    ],
    "bash": [
        "set -euo pipefail",
        'for file in "$@"; do',
        '  echo "checking $file"',
        '  grep -n TODO "$file" || true',
        "done",
    ],
}


def make_answer(tokens: int, seed: int) -> str:
    """Markdown of roughly ``tokens`` tokens (a token ~ a word or a symbol)."""
    rng = random.Random(seed)
    parts: list[str] = []
    count = 0
    makers: list[Callable[[random.Random], str]] = [
        _heading,
        _paragraph,
        _paragraph,
        _tight_list,
        _loose_list,
        _code,
        _code,
        _quote,
        _table,
    ]
    while count < tokens:
        block = rng.choice(makers)(rng)
        parts.append(block)
        count += len(tokenize(block))
    return "\n\n".join(parts) + "\n"


def _words(rng: random.Random, n: int) -> str:
    words = [rng.choice(WORDS) for _ in range(n)]
    if rng.random() < 0.3:
        words[rng.randrange(n)] = f"`{rng.choice(WORDS)}()`"
    if rng.random() < 0.3:
        words[rng.randrange(n)] = f"**{rng.choice(WORDS)}**"
    return " ".join(words)


def _heading(rng: random.Random) -> str:
    return "#" * rng.randint(1, 3) + " " + _words(rng, rng.randint(2, 6)).capitalize()


def _paragraph(rng: random.Random) -> str:
    lines = [_words(rng, rng.randint(8, 20)) for _ in range(rng.randint(1, 4))]
    return "\n".join(lines).capitalize() + "."


def _tight_list(rng: random.Random) -> str:
    ordered = rng.random() < 0.4
    return "\n".join(
        (f"{i + 1}. " if ordered else "- ") + _words(rng, rng.randint(3, 12))
        for i in range(rng.randint(2, 12))
    )


def _loose_list(rng: random.Random) -> str:
    return "\n\n".join("- " + _words(rng, rng.randint(6, 16)) for _ in range(rng.randint(2, 5)))


def _code(rng: random.Random) -> str:
    lang = rng.choice(list(CODE))
    body = []
    for _ in range(rng.randint(1, 5)):
        name = rng.choice(WORDS)
        body += [line.format(name=name, Name=name.capitalize()) for line in CODE[lang]]
    return f"```{lang}\n" + "\n".join(body) + "\n```"


def _quote(rng: random.Random) -> str:
    return "\n".join("> " + _words(rng, rng.randint(6, 14)) for _ in range(rng.randint(1, 3)))


def _table(rng: random.Random) -> str:
    rows = ["| provider | state | latency |", "|---|---|---|"]
    for _ in range(rng.randint(2, 6)):
        state = rng.choice(["CLOSED", "OPEN", "HALF_OPEN"])
        rows.append(f"| {rng.choice(WORDS)} | {state} | {rng.randint(80, 3000)} ms |")
    return "\n".join(rows)


def tokenize(text: str) -> list[str]:
    """Chunks as a model streams them: a word with its leading space, or a symbol run."""
    return re.findall(r"\s*\w+|\s*[^\w\s]+|\s+", text)


class SimulatedClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _status() -> ClientStatus:
    provider = ProviderStatus(
        "sambanova", "Qwen2.5-Coder-32B-Instruct", "CLOSED", 0.0, 0.0, 50, 47, 10000, 8123, 1.0
    )
    return ClientStatus([provider], "sambanova", provider.model, None, 1234)


def _console(devnull: IO[str]) -> Console:
    return Console(
        file=devnull,
        force_terminal=True,
        color_system="truecolor",
        width=100,
        height=40,
    )


def stream_turnview(chunks: list[str]) -> list[float]:
    """Seconds each chunk cost through the REPL's display."""
    with open(os.devnull, "w") as devnull:
        return asyncio.run(_stream_turnview(chunks, _console(devnull)))


async def _stream_turnview(chunks: list[str], console: Console) -> list[float]:
    clock = SimulatedClock()
    costs: list[float] = []
    view = TurnView(console, StatusBar(_status, clock=clock), get_time=clock)
    async with view:
        for chunk in chunks:
            clock.now += CHUNK_SECONDS
            start = time.perf_counter()
            view(AssistantText(chunk))
            view.refresh_if_due()
            costs.append(time.perf_counter() - start)
    return costs


def stream_naive(chunks: list[str]) -> list[float]:
    """The baseline: the whole answer so far re-rendered as markdown on every frame."""
    clock = SimulatedClock()
    costs: list[float] = []
    text = ""
    drawn_at = -1.0
    with open(os.devnull, "w") as devnull:
        console = _console(devnull)
        with Live(console=console, auto_refresh=False, vertical_overflow="visible") as live:
            for chunk in chunks:
                clock.now += CHUNK_SECONDS
                start = time.perf_counter()
                text += chunk
                if clock.now - drawn_at >= 0.08:
                    drawn_at = clock.now
                    live.update(Markdown(text), refresh=True)
                costs.append(time.perf_counter() - start)
    return costs


def tenths(costs: list[float]) -> tuple[float, float]:
    tenth = max(1, len(costs) // 10)
    return statistics.fmean(costs[:tenth]), statistics.fmean(costs[-tenth:])


def report(name: str, costs: list[float]) -> float:
    first, last = tenths(costs)
    total = sum(costs)
    ratio = last / first
    print(
        f"{name:<10} {len(costs):>7} chunks  {total:7.2f} s  {len(costs) / total:>9,.0f} chunks/s"
        f"  first tenth {first * 1e3:6.3f} ms/chunk  last tenth {last * 1e3:6.3f} ms/chunk"
        f"  ratio {ratio:5.2f}"
    )
    return ratio


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=20_000)
    parser.add_argument("--baseline-tokens", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--strict", action="store_true", help="exit 1 when the target is missed")
    args = parser.parse_args()

    chunks = tokenize(make_answer(args.tokens, args.seed))[: args.tokens]
    stream_turnview(chunks[:2000])  # warm up: imports, lexers, caches
    ratio = report("renderer", stream_turnview(chunks))
    baseline = chunks[: args.baseline_tokens]
    report("baseline", stream_naive(baseline))
    verdict = "PASS" if ratio <= 1.5 else "FAIL"
    print(f"target: last tenth within 1.5x of the first tenth: {verdict} ({ratio:.2f}x)")
    return 1 if args.strict and verdict == "FAIL" else 0


if __name__ == "__main__":
    raise SystemExit(main())
