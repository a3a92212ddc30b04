#!/usr/bin/env python
"""``--output-format stream-json``: what the events cost, and how late they are.

    .venv/bin/python scripts/bench_stream_json.py [--only cpu|latency] [--runs 5]
        [--tokens 20000] [--latency-tokens 1000] [--strict]

**cpu**: a 20,000-token answer streamed by the fault server (in its own process, one
token a server-sent event), answered by ``qwen-dev -p`` twice, in alternating runs:
``--output-format stream-json --include-partial-messages`` (a JSON line per token,
flushed) against text into a pipe (the baseline: the answer written once, complete).
The CPU time (user + system, from ``wait4``) of each ``qwen-dev`` process; the target
is the median of the paired ratios <= 1.1x. Also printed: a one-token answer's CPU time
(start-up and the rest that does not depend on the answer's length), for scale.

**latency**: the fault server runs in this process with its send stamped (the moment
each SSE event of a content delta is handed to the kernel), a token every 5 ms;
``qwen-dev -p --output-format stream-json --include-partial-messages`` reads it, and a
thread here stamps each ``stream_event`` line as it arrives on the pipe from its stdout.
Latency: the line's arrival minus its token's send (matched in order, their texts
checked). Baseline, in alternating runs: a raw httpx client in its own process that
prints a JSON line per delta and flushes (the floor of loopback, parsing, a pipe and
two processes). Target: qwen-dev's p50 <= 5 ms.

``--strict`` exits 1 when a target is missed.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from typing import Any

from faultserver import FaultServer, FaultServerProcess, Outcome
from faultserver.http11 import HttpConnection

ROOT = Path(__file__).resolve().parent.parent
CPU_TARGET = 1.1
LATENCY_P50_TARGET_MS = 5.0
TOKEN_SECONDS = 0.005
#: Four-letter words: each token is " word" (5 characters: the fault server cuts the
#: text every N characters), its space leading, as real tokenizers put it.
_WORDS = ("data", "code", "test", "file", "line", "word", "call", "tool", "page", "node")
TOKEN_CHARS = 5

RAW_CLIENT = r"""
import json, sys, httpx
url, model = sys.argv[1], sys.argv[2]
body = {"model": model, "stream": True, "messages": [{"role": "user", "content": "go"}]}
out = sys.stdout
with httpx.Client(timeout=60) as client:
    with client.stream("POST", url + "/chat/completions", json=body) as response:
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            delta = json.loads(line[6:])["choices"][0]["delta"].get("content")
            if delta:
                out.write(json.dumps({"type": "stream_event", "text": delta}) + "\n")
                out.flush()
"""


def answer(tokens: int) -> str:
    """``tokens`` tokens of :data:`TOKEN_CHARS` characters (the fault server counts a
    word as a token)."""
    return "".join(" " + _WORDS[i % len(_WORDS)] for i in range(tokens))


def environment(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["QWEN_DEV_HOME"] = str(home)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("QWEN_DEV_CONFIG", None)
    return env


def write_config(folder: Path, base_url: str) -> Path:
    path = folder / "config.toml"
    path.write_text(
        f'provider_order = ["lab"]\n[providers.lab]\nbase_url = "{base_url}"\n'
        'model = "fault-model"\n',
        encoding="utf-8",
    )
    return path


def qwen_dev(config: Path, *flags: str) -> list[str]:
    return [sys.executable, "-m", "qwen_dev_cli", "-p", "go", "--config", str(config), *flags]


STREAM_JSON = ("--output-format", "stream-json", "--include-partial-messages")


# --- cpu ----------------------------------------------------------------------------------


def cpu_of(command: list[str], env: dict[str, str], cwd: Path) -> tuple[float, int]:
    """The CPU seconds (user + system) of ``command``, its stdout read into a pipe as
    fast as it comes, and how many bytes it wrote there."""
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd=cwd
    )
    assert proc.stdout is not None
    size = 0
    while chunk := proc.stdout.read(65536):
        size += len(chunk)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command)} exited {proc.returncode}")
    return usage.ru_utime + usage.ru_stime, size


def bench_cpu(runs: int, tokens: int) -> bool:
    text = answer(tokens)
    chunk = TOKEN_CHARS  # one token an event, as a real server streams
    with tempfile.TemporaryDirectory() as tmp, FaultServerProcess() as server:
        folder = Path(tmp)
        config = write_config(folder, server.base_url)
        env = environment(folder / "home")
        kinds: dict[str, tuple[str, ...]] = {"text": (), "stream-json": STREAM_JSON}

        def once(kind: str, words: str) -> tuple[float, int]:
            server.script(Outcome.ok(words, chunk_size=chunk))
            return cpu_of(qwen_dev(config, *kinds[kind]), env, folder)

        once("text", text)  # warm-up: bytecode, page cache
        once("stream-json", text)
        seconds: dict[str, list[float]] = {kind: [] for kind in kinds}
        sizes: dict[str, int] = {}
        small: list[float] = []
        ratios = []
        for run in range(runs):
            order = ("text", "stream-json") if run % 2 == 0 else ("stream-json", "text")
            for kind in order:
                spent, sizes[kind] = once(kind, text)
                seconds[kind].append(spent)
            ratios.append(seconds["stream-json"][-1] / seconds["text"][-1])
            small.append(once("text", "hello")[0])
    ratio = statistics.median(ratios)
    print(f"cpu: a {tokens}-token answer, one SSE event a token, {runs} runs each")
    for kind, values in seconds.items():
        print(
            f"  {kind:12} CPU median {statistics.median(values) * 1000:7.0f} ms "
            f"(min {min(values) * 1000:.0f}, max {max(values) * 1000:.0f}); "
            f"stdout {sizes[kind]:,} bytes"
        )
    print(f"  one-token answer (start-up, for scale): {statistics.median(small) * 1000:.0f} ms")
    extra = statistics.median(seconds["stream-json"]) - statistics.median(seconds["text"])
    print(
        f"  stream-json's extra CPU: {extra * 1000:.0f} ms, {extra / tokens * 1e6:.1f} us a token"
    )
    print(f"  paired ratios: {', '.join(f'{r:.3f}' for r in ratios)}")
    verdict = "PASS" if ratio <= CPU_TARGET else "MISS"
    print(
        f"  stream-json / text (median of pairs): {ratio:.3f}x (target <= {CPU_TARGET}x) {verdict}"
    )
    return ratio <= CPU_TARGET


# --- latency ------------------------------------------------------------------------------


class SendLog:
    """Stamps every HTTP chunk the in-process fault server sends (``perf_counter``,
    once the bytes are handed to the kernel)."""

    def __init__(self) -> None:
        self.sent: list[tuple[float, bytes]] = []
        self._original = HttpConnection.send_chunk

    def __enter__(self) -> SendLog:
        original = self._original
        log = self.sent

        async def send_chunk(conn: HttpConnection, data: bytes) -> None:
            conn._writer.write(b"%x\r\n%b\r\n" % (len(data), data))
            log.append((time.perf_counter(), data))
            await conn._writer.drain()

        assert original is not None
        HttpConnection.send_chunk = send_chunk  # type: ignore[method-assign,assignment]  # stamp sends
        return self

    def __exit__(self, *exc: object) -> None:
        HttpConnection.send_chunk = self._original  # type: ignore[method-assign]  # put back

    def deltas(self) -> list[tuple[float, str]]:
        """(sent, text) of each content delta."""
        found = []
        for stamp, data in self.sent:
            for line in data.decode().splitlines():
                if not line.startswith("data: {"):
                    continue
                choices = json.loads(line[6:]).get("choices") or [{}]
                text = choices[0].get("delta", {}).get("content")
                if text:
                    found.append((stamp, text))
        return found


def read_lines(
    proc: subprocess.Popen[bytes], keep: Callable[[dict[str, Any]], str | None]
) -> list[tuple[float, str]]:
    """(arrival, text) of each line ``keep`` takes, stamped as it is read."""
    assert proc.stdout is not None
    got = []
    for line in proc.stdout:
        stamp = time.perf_counter()
        text = keep(json.loads(line))
        if text is not None:
            got.append((stamp, text))
    return got


def run_child(command: list[str], env: dict[str, str], cwd: Path) -> list[tuple[float, str]]:
    """Runs ``command``; (arrival, text) of each token line on its stdout."""
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd=cwd
    )
    got = read_lines(proc, lambda event: event.get("text") or stream_event_text(event))
    proc.wait()
    return got


def stream_event_text(event: dict[str, Any]) -> str | None:
    if event.get("type") != "stream_event":
        return None
    return str(event["event"]["delta"]["text"])


async def one_latency_run(
    server: FaultServer, command: list[str], env: dict[str, str], cwd: Path, text: str
) -> list[float]:
    """Milliseconds from each token's send to its line on ``command``'s stdout."""
    server.script(Outcome.ok(text, chunk_size=TOKEN_CHARS, chunk_delay=TOKEN_SECONDS))
    with SendLog() as log:
        got = await asyncio.to_thread(run_child, command, env, cwd)
    sent = log.deltas()
    if [t for _, t in sent] != [t for _, t in got]:
        raise SystemExit(
            f"{command[:3]}: lines do not match the tokens sent, one for one: "
            f"{[(a, b) for (_, a), (_, b) in zip(sent, got, strict=False) if a != b][:3]}"
        )
    return [(arrived - left) * 1000 for (left, _), (arrived, _) in zip(sent, got, strict=True)]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def bench_latency(runs: int, tokens: int) -> bool:
    text = answer(tokens)
    async with FaultServer() as server:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            config = write_config(folder, server.base_url)
            env = environment(folder / "home")
            commands = {
                "raw httpx": [sys.executable, "-c", RAW_CLIENT, server.base_url, "fault-model"],
                "qwen-dev": qwen_dev(config, *STREAM_JSON),
            }
            for command in commands.values():  # warm-up
                await one_latency_run(server, command, env, folder, answer(50))
            found: dict[str, list[float]] = {name: [] for name in commands}
            for run in range(runs):
                names = list(commands) if run % 2 == 0 else list(reversed(commands))
                for name in names:
                    found[name] += await one_latency_run(server, commands[name], env, folder, text)
    print(
        f"latency: token sent -> its line on stdout, {tokens} tokens {TOKEN_SECONDS * 1000:g} ms "
        f"apart, {runs} runs each"
    )
    for name, values in found.items():
        print(
            f"  {name:10} p50 {percentile(values, 0.5):6.3f} ms  p90 {percentile(values, 0.9):6.3f}"
            f"  p99 {percentile(values, 0.99):6.3f}  max {max(values):6.3f}  (n={len(values)})"
        )
    p50 = percentile(found["qwen-dev"], 0.5)
    floor = percentile(found["raw httpx"], 0.5)
    print(f"  qwen-dev p50 / raw httpx p50: {p50 / floor:.2f}x (+{p50 - floor:.3f} ms)")
    verdict = "PASS" if p50 <= LATENCY_P50_TARGET_MS else "MISS"
    print(f"  qwen-dev p50 {p50:.3f} ms (target <= {LATENCY_P50_TARGET_MS:g} ms) {verdict}")
    return p50 <= LATENCY_P50_TARGET_MS


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=("cpu", "latency"))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=20_000)
    parser.add_argument("--latency-tokens", type=int, default=1_000)
    parser.add_argument("--strict", action="store_true")
    args = parser.parse_args()
    met = True
    if args.only in (None, "cpu"):
        met &= bench_cpu(args.runs, args.tokens)
    if args.only in (None, "latency"):
        met &= asyncio.run(bench_latency(args.runs, args.latency_tokens))
    return 1 if args.strict and not met else 0


if __name__ == "__main__":
    raise SystemExit(main())
