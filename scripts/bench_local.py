"""Offline model speed: time to first token and tokens per second of the in-process
SmolLM2 model through LLMClient, against raw llama-cpp-python on the same loaded model
in the same process (the baseline: what our thread hand-off and layers cost).

The baseline runs on the provider's generation thread: llama.cpp's OpenMP team belongs
to the calling thread, and two teams spinning side by side on a 2-core machine would
slow whichever runs second.

    .venv/bin/python scripts/bench_local.py [--runs 5] [--max-tokens 128]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from qwen_dev_cli.core import LLMClient, StreamEnd, TextDelta
from qwen_dev_cli.core.providers.llama_cpp import LlamaCppProvider, default_model_path

PROMPT = [{"role": "user", "content": "Explain in a few sentences what a hash map is."}]
# About as long as the agent's system prompt with its tool schemas (~1,400 tokens).
FILLER = " ".join(
    f"Rule {i}: keep edits small and read files before changing them." for i in range(120)
)


def cold_prompt(run: int) -> list[dict[str, str]]:
    """A long prompt that starts differently each run, so llama.cpp cannot reuse a
    cached prefix: the first turn of a conversation, not a repeat."""
    return [
        {"role": "system", "content": f"Session {run}. {FILLER}"},
        PROMPT[0],
    ]


def raw_run(
    llama: Any, max_tokens: int, messages: list[dict[str, str]] = PROMPT
) -> tuple[float, int, float]:
    """Time to first token (s), tokens, total seconds — straight llama-cpp-python."""
    start = time.perf_counter()
    first = 0.0
    tokens = 0
    for chunk in llama.create_chat_completion(
        messages=messages, stream=True, max_tokens=max_tokens, temperature=0.0
    ):
        if chunk["choices"][0]["delta"].get("content"):
            tokens += 1
            if not first:
                first = time.perf_counter() - start
    return first, tokens, time.perf_counter() - start


async def client_run(
    client: LLMClient, max_tokens: int, messages: list[dict[str, str]] = PROMPT
) -> tuple[float, int, float]:
    start = time.perf_counter()
    first = 0.0
    tokens = 0
    async for event in client.stream(messages, max_tokens=max_tokens, temperature=0.0):
        if isinstance(event, TextDelta):
            tokens += 1
            if not first:
                first = time.perf_counter() - start
        elif isinstance(event, StreamEnd):
            pass
    return first, tokens, time.perf_counter() - start


def summarize(name: str, runs: list[tuple[float, int, float]]) -> tuple[float, float]:
    ttft = statistics.median(r[0] for r in runs) * 1000
    rate = statistics.median(r[1] / (r[2] - r[0]) for r in runs if r[2] > r[0] and r[1] > 1)
    tokens = statistics.median(r[1] for r in runs)
    print(f"{name:<28} ttft p50 {ttft:8.1f} ms   {rate:8.1f} tokens/s   ({tokens:.0f} tokens)")
    return ttft, rate


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=128)
    args = parser.parse_args()
    path = default_model_path()
    if path is None:
        sys.exit("model not installed: run scripts/bootstrap")
    threads = os.cpu_count() or 1
    provider = LlamaCppProvider("local", model="SmolLM2-135M-Instruct")
    started = time.perf_counter()
    provider.run_on_worker(lambda llama: None)
    print(f"model load: {(time.perf_counter() - started) * 1000:.0f} ms ({path.name})")
    client = LLMClient([provider])
    await client_run(client, 8)  # warm up both paths
    provider.run_on_worker(lambda llama: raw_run(llama, 8))
    raw_runs, client_runs = [], []
    for _ in range(args.runs):  # alternate, so drift hits both alike
        raw_runs.append(provider.run_on_worker(lambda llama: raw_run(llama, args.max_tokens)))
        client_runs.append(await client_run(client, args.max_tokens))
    print(f"{args.runs} runs each, max_tokens={args.max_tokens}, {threads} threads")
    raw_ttft, raw_rate = summarize("raw llama-cpp-python", raw_runs)
    ttft, rate = summarize("LLMClient + LlamaCppProvider", client_runs)
    print(f"ratios: ttft {ttft / raw_ttft:.2f}x, tokens/s {rate / raw_rate:.2f}x of raw")
    print("cold long prompt (~1,400 tokens, no cached prefix; the first turn of a chat):")
    cold_raw, cold_client = [], []
    for run in range(3):
        messages = cold_prompt(2 * run)
        cold_raw.append(provider.run_on_worker(lambda llama, m=messages: raw_run(llama, 32, m)))
        cold_client.append(await client_run(client, 32, cold_prompt(2 * run + 1)))
    cold_raw_ttft, _ = summarize("raw llama-cpp-python", cold_raw)
    cold_ttft, _ = summarize("LLMClient + LlamaCppProvider", cold_client)
    print(f"ratio: ttft {cold_ttft / cold_raw_ttft:.2f}x of raw")
    await client.aclose()


if __name__ == "__main__":
    asyncio.run(main())
