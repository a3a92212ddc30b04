"""Offline model speed: time to first token and tokens per second of the in-process
SmolLM2 model through LLMClient, against raw llama-cpp-python on the same loaded model
in the same process (the baseline: what our thread hand-off and layers cost).

The baseline runs on the provider's generation thread: llama.cpp's OpenMP team belongs
to the calling thread, and two teams spinning side by side on a 2-core machine would
slow whichever runs second.

Then a whole `qwen-dev ask` as a user runs it, offline, in new processes, three cases
alternated in the same run: the first ask (no saved prefix: the ~1,400-token system
prompt is prefilled and saved), the first ask in a new folder while another folder's
state is saved (the prompts share all but the folder's part), and a later ask in the
first folder (its prefix restored from QWEN_DEV_HOME/cache/llama-state), with the
ratios of their median wall times.

    .venv/bin/python scripts/bench_local.py [--runs 5] [--max-tokens 128] [--ask-runs 3]
    .venv/bin/python scripts/bench_local.py --only ask      # just the `ask` comparison
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
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


ASK_QUESTION = "Name one primary colour."
#: What a later offline `ask` may cost against the first (wall time, median).
ASK_RATIO_TARGET = 0.3
ASK_WALL_TARGET = 1.2
#: What the first `ask` in a new folder may cost against a cold one, when another
#: folder's prefix is saved.
NEW_FOLDER_RATIO_TARGET = 0.5


def ask_once(folder: Path, workspace: Path) -> tuple[float, str]:
    """Wall seconds of one `qwen-dev ask --json` in a new process, run in
    ``workspace``, and its answer."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.endswith(("_API_KEY", "_TOKEN")) and not name.startswith("QWEN_DEV_")
    }
    env.update(QWEN_DEV_HOME=str(folder / "home"), QWEN_DEV_CONFIG=str(folder / "config.toml"))
    started = time.perf_counter()
    run = subprocess.run(
        [sys.executable, "-m", "qwen_dev_cli", "ask", "--json", ASK_QUESTION],
        cwd=workspace,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    if run.returncode != 0:
        sys.exit(f"qwen-dev ask failed ({run.returncode}): {run.stderr[-2000:]}")
    return wall, str(json.loads(run.stdout)["text"])


def bench_ask(runs: int) -> None:
    """First offline `ask` (empty prefix cache), the first in a new folder (another
    folder's prefix saved) and a later one in the first folder (warm), alternated."""
    with tempfile.TemporaryDirectory(prefix="bench-ask-") as name:
        folder = Path(name)
        workspace = folder / "ws"  # the same workspace every time: the prompt names it
        workspace.mkdir()
        (folder / "config.toml").write_text("")  # the built-in default: the local model
        states = folder / "home" / "cache" / "llama-state"
        ask_once(folder, workspace)  # warm the page cache (model file, imports)
        other = folder / "another-project"  # new again once the states are emptied
        other.mkdir()
        first: list[float] = []
        new_folder: list[float] = []
        later: list[float] = []
        answers: set[str] = set()
        other_answers: set[str] = set()
        for _ in range(runs):
            shutil.rmtree(states, ignore_errors=True)
            wall, text = ask_once(folder, workspace)  # prefills the prefix and saves it
            first.append(wall)
            answers.add(text)
            wall, text = ask_once(folder, other)  # ws's state saved, not its own
            new_folder.append(wall)
            other_answers.add(text)
            wall, text = ask_once(folder, workspace)  # restores its own
            later.append(wall)
            answers.add(text)
        size = max(p.stat().st_size for p in states.glob("*.kv"))
    cold, fresh, warm = (statistics.median(w) for w in (first, new_folder, later))
    ratio, fresh_ratio = warm / cold, fresh / cold
    print(f"`qwen-dev ask` offline, new process each, {runs} alternating runs each:")
    print(f"{'first ask (prefix prefilled)':<40} wall p50 {cold:6.2f} s   {fmt(first)}")
    label = "first ask in a new folder (other saved)"
    print(f"{label:<40} wall p50 {fresh:6.2f} s   {fmt(new_folder)}")
    print(f"{'later ask (prefix restored)':<40} wall p50 {warm:6.2f} s   {fmt(later)}")
    print(
        f"saved prefix: {size / 1e6:.1f} MB; answers identical: first folder "
        f"{len(answers) == 1}, new folder {len(other_answers) == 1}"
    )
    verdict = "PASS" if ratio <= ASK_RATIO_TARGET and warm <= ASK_WALL_TARGET else "MISS"
    print(
        f"ratio: later/first {ratio:.2f}x (target <= {ASK_RATIO_TARGET}x), "
        f"later {warm:.2f} s (target <= {ASK_WALL_TARGET} s): {verdict}"
    )
    verdict = "PASS" if fresh_ratio <= NEW_FOLDER_RATIO_TARGET else "MISS"
    print(
        f"ratio: new folder/first {fresh_ratio:.2f}x "
        f"(target <= {NEW_FOLDER_RATIO_TARGET}x): {verdict}"
    )


def fmt(walls: list[float]) -> str:
    return "(" + ", ".join(f"{w:.2f}" for w in walls) + ")"


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--ask-runs", type=int, default=3)
    parser.add_argument("--only", choices=("all", "stream", "ask"), default="all")
    args = parser.parse_args()
    path = default_model_path()
    if path is None:
        sys.exit("model not installed: run scripts/bootstrap")
    if args.only in ("all", "ask"):
        bench_ask(args.ask_runs)
    if args.only == "ask":
        return
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
        cold_raw.append(
            provider.run_on_worker(functools.partial(raw_run, max_tokens=32, messages=messages))
        )
        cold_client.append(await client_run(client, 32, cold_prompt(2 * run + 1)))
    cold_raw_ttft, _ = summarize("raw llama-cpp-python", cold_raw)
    cold_ttft, _ = summarize("LLMClient + LlamaCppProvider", cold_client)
    print(f"ratio: ttft {cold_ttft / cold_raw_ttft:.2f}x of raw")
    await client.aclose()


if __name__ == "__main__":
    asyncio.run(main())
