"""Context-window accounting and compaction: what they cost and what they leave.

1. The token accounting of one turn (two messages added, then the estimate the agent
   makes before sending, then the real usage recorded) with a 200-message history
   against a 20-message one. Goal: flat (ratio ~1). Baseline in the same run: counting
   the whole conversation each time (``estimate_prompt_tokens``), which grows.
2. The compacted request against the window: a 200-message history compacted for
   4k, 6k and 32k windows (summariser stubbed with a summary of the requested size),
   the prompt after compaction, and the largest summarisation request, as shares of
   the window.

    .venv/bin/python scripts/bench_context.py
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from qwen_dev_cli.agent.compaction import Compactor
from qwen_dev_cli.agent.context import ContextBudget, ContextLedger
from qwen_dev_cli.core.tokens import estimate_prompt_tokens

Message = dict[str, Any]
FIXED = 1400  # a system prompt and tools, tokens


def history(messages: int, words: int = 120) -> list[Message]:
    out: list[Message] = []
    for n in range(messages // 2):
        out.append({"role": "user", "content": f"question {n} " + "lorem ipsum " * (words // 4)})
        out.append({"role": "assistant", "content": " ".join(f"w{n}_{i}" for i in range(words))})
    return out


def per_turn(size: int, turns: int = 2000) -> tuple[float, float]:
    """Median seconds per turn as a ``size``-message conversation grows by appending:
    (the ledger: estimate before sending, record the usage after; the baseline:
    counting the whole conversation). Restarts from ``size`` messages every 50 turns,
    so the history stays near its size."""
    ledger_times, full_times = [], []
    conversation: list[Message] = []
    ledger = ContextLedger()
    for n in range(turns):
        if n % 50 == 0:
            conversation = history(size)
            ledger = ContextLedger()
            ledger.observe(FIXED, conversation, 9000)
        conversation.append({"role": "user", "content": f"turn {n} question"})
        start = time.perf_counter()
        estimate = ledger.estimate(FIXED, conversation)
        ledger.observe(FIXED, conversation, estimate)
        ledger_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        estimate_prompt_tokens(conversation)
        full_times.append(time.perf_counter() - start)
        conversation.append({"role": "assistant", "content": "an answer of a few words"})
    return statistics.median(ledger_times), statistics.median(full_times)


async def compacted(window: int) -> tuple[int, int, int, int]:
    """(before, after, largest summarisation request, requests) in tokens."""
    budget = ContextBudget.of(window, 1024)
    largest = 0
    requests = 0

    async def summarize(messages: list[Message], max_tokens: int) -> str:
        nonlocal largest, requests
        requests += 1
        largest = max(largest, estimate_prompt_tokens(messages) + max_tokens)
        return " ".join(f"s{i}" for i in range(int(max_tokens * 0.7)))

    compactor = Compactor(summarize, budget, ContextLedger(), FIXED)
    done = await compactor.compact(history(200))
    assert done is not None
    return done.before, done.after, largest, requests


def main() -> None:
    print("token accounting per turn (median of 2000 turns)")
    per_turn(20, 200)  # warm up
    (ledger20, full20), (ledger200, full200) = per_turn(20), per_turn(200)
    print(
        f"  ledger (anchor + cached estimates): 20 msgs {ledger20 * 1e6:6.2f} us   "
        f"200 msgs {ledger200 * 1e6:6.2f} us   ratio 200/20 = {ledger200 / ledger20:.2f}"
    )
    print(
        f"  baseline (recount everything):      20 msgs {full20 * 1e6:6.2f} us   "
        f"200 msgs {full200 * 1e6:6.2f} us   ratio 200/20 = {full200 / full20:.2f}"
    )
    print("compaction of a 200-message history (system prompt and tools: 1,400 tokens)")
    for window in (4096, 6000, 32768):
        before, after, largest, requests = asyncio.run(compacted(window))
        print(
            f"  window {window:>6,}: before {before:>7,} ({before / window:5.2f}x)  after "
            f"{after:>6,} ({after / window:4.2f} of the window)  largest summary request "
            f"{largest:>6,} ({largest / window:4.2f})  requests {requests}"
        )


if __name__ == "__main__":
    main()
