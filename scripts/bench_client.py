#!/usr/bin/env python
"""Benchmarks of ``LLMClient`` against baselines measured in the same run.

    .venv/bin/python scripts/bench_client.py [--quick] [--only NAME] [--json out.json]

Every benchmark talks over loopback to ``faultserver`` servers that run in their
own processes, so a server does not share the client's interpreter. Compared clients
run alternately (A/B/A/B) to spread the machine's drift over both. ``--only`` takes:

overhead  sequential non-streaming chats: LLMClient (breaker, limiter, telemetry on) vs
          raw httpx vs the openai SDK. Target: LLMClient <= 1.15x raw httpx (median
          per request) and faster than the SDK.
streams   concurrent streams: LLMClient.stream vs raw httpx with aiter_lines + json.loads.
          Target: chunks/s >= 0.85x raw httpx (median of the rounds).
chaos     provider A answers 30% transient faults (429, 503, resets), B is healthy:
          LLMClient (A then B, real sleeps); for comparison the openai SDK on A alone
          (it cannot fail over) and LLMClient on A alone. Target: LLMClient (A then B)
          >= 99.9% success.
outage    A resets every connection all run, B is healthy: the attempts A receives stay
          within failure_threshold + half_open_max_calls per recovery_timeout elapsed,
          and the p50 latency is within 1.2x of a healthy run (B alone, same N).
memory    peak RSS of a fresh process that runs the chaos benchmark's LLMClient half
          (``--only chaos --child``), next to one that only imports and starts the loop
          (``--only idle --child``). Target: < 80 MB.

``--quick`` runs smaller counts (a CI smoke run) and prints the same table; ``--strict``
exits 1 when a target is missed. ``--child`` is internal: it prints one JSON line.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import asyncio
import contextlib
import datetime
import gc
import json
import os
import platform
import resource
import signal
import statistics
import subprocess
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from faultserver import ChaosMix, FaultServerProcess, Outcome
from qwen_dev_cli.core import (
    BreakerPolicy,
    BreakerTransition,
    LLMClient,
    LLMError,
    OpenAICompatProvider,
    RateLimits,
    StreamEnd,
    TextDelta,
)
from qwen_dev_cli.core.providers.openai_compat import DEFAULT_LIMITS

SCRIPT = Path(__file__).resolve()
MODEL = "bench-model"
API_KEY = "x"
PROMPT = [{"role": "user", "content": "Say hello to the benchmark."}]
SHORT_TEXT = "Hello from the benchmark server, all systems nominal."
# 300 words, 2,060 characters (258 chunks of 8): a few hundred tokens of answer.
LONG_TEXT = " ".join(f"word{i % 97}" for i in range(300))
STREAM_CHUNK_CHARS = 8
CHAOS_SEED = 20240611
# Budgets far above anything a run can spend: the limiter is on but never waits.
HUGE_RPM = 10**6
HUGE_TPM = 10**9
JSON_HEADERS = {"content-type": "application/json"}
SSE_HEADERS = {"content-type": "application/json", "accept": "text/event-stream"}


@dataclass(frozen=True)
class Config:
    overhead_requests: int = 1000  # per client
    overhead_blocks: int = 20  # alternation blocks per client
    overhead_warmup: int = 50
    stream_concurrency: int = 200
    stream_rounds: int = 9  # per client, after one warm-up round
    chaos_requests: int = 1000
    chaos_alone_requests: int = 200  # LLMClient on A alone: slow, it sleeps a lot
    chaos_concurrency: int = 20
    outage_seconds: float = 5.0
    outage_workers: int = 20  # the informational concurrent variant
    recovery_timeout: float = 2.0


FULL = Config()
QUICK = Config(
    overhead_requests=200,
    overhead_blocks=4,
    overhead_warmup=20,
    stream_concurrency=50,
    stream_rounds=2,
    chaos_requests=200,
    chaos_alone_requests=60,
    outage_seconds=2.5,
    recovery_timeout=1.0,
)


# --------------------------------------------------------------------------- helpers


class BenchError(RuntimeError):
    """A client returned something other than the expected answer."""


@dataclass
class Row:
    measurement: str
    result: str
    target: str = ""
    passed: bool | None = None


@dataclass
class Report:
    name: str
    rows: list[Row] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    def row(
        self, measurement: str, result: str, target: str = "", passed: bool | None = None
    ) -> None:
        self.rows.append(Row(measurement, result, target, passed))


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (the one telemetry uses); 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * pct // 100))
    return ordered[min(len(ordered), int(rank)) - 1]


def us(seconds: float) -> str:
    return f"{seconds * 1e6:,.0f} µs"


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:,.1f} ms"


def ratio(value: float, baseline: float) -> float:
    return value / baseline if baseline else float("inf")


def rotations(names: list[str], rounds: int) -> Iterator[list[str]]:
    """A/B/C, B/C/A, C/A/B, ...: each client leads in turn."""
    for i in range(rounds):
        shift = i % len(names)
        yield names[shift:] + names[:shift]


def print_table(reports: list[Report]) -> None:
    header = ("benchmark", "measurement", "result", "target", "verdict")
    lines = [header]
    for report in reports:
        for row in report.rows:
            verdict = "" if row.passed is None else ("PASS" if row.passed else "FAIL")
            lines.append((report.name, row.measurement, row.result, row.target, verdict))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    rule = "  ".join("-" * w for w in widths)
    print(rule)
    for index, line in enumerate(lines):
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
        if index == 0:
            print(rule)
    print(rule)


def make_llm(urls: list[str], **options: Any) -> LLMClient:
    """An LLMClient with every layer on; providers ``a``, ``b``... in priority order."""
    providers = [
        OpenAICompatProvider(chr(ord("a") + i), base_url=url, model=MODEL, api_key=API_KEY)
        for i, url in enumerate(urls)
    ]
    return LLMClient(
        providers,
        rate_limits=RateLimits(requests_per_minute=HUGE_RPM, tokens_per_minute=HUGE_TPM),
        telemetry=True,
        **options,
    )


def make_raw(url: str) -> httpx.AsyncClient:
    """Plain httpx with the provider's pool limits and headers."""
    headers = {"accept": "application/json", "authorization": f"Bearer {API_KEY}"}
    return httpx.AsyncClient(base_url=url, headers=headers, limits=DEFAULT_LIMITS, timeout=60.0)


async def raw_chat(raw: httpx.AsyncClient) -> str:
    """One chat over plain httpx: serialise (per request, as the provider does), post,
    check the status, parse, pull out the text."""
    payload = body(stream=False)
    response = await raw.post("/chat/completions", content=payload, headers=JSON_HEADERS)
    if response.status_code >= 400:
        raise BenchError(f"raw httpx got HTTP {response.status_code}")
    text: str = json.loads(response.content)["choices"][0]["message"]["content"]
    return text


def body(*, stream: bool) -> bytes:
    payload: dict[str, Any] = {"model": MODEL, "messages": PROMPT}
    if stream:
        payload |= {"stream": True, "stream_options": {"include_usage": True}}
    return json.dumps(payload).encode()


@dataclass
class PoolRun:
    latencies: list[float] = field(default_factory=list)  # successful requests only
    errors: Counter[str] = field(default_factory=Counter)
    elapsed: float = 0.0

    @property
    def total(self) -> int:
        return len(self.latencies) + sum(self.errors.values())

    @property
    def success_rate(self) -> float:
        return 100.0 * len(self.latencies) / self.total if self.total else 0.0


def error_name(exc: Exception) -> str:
    """The exception's class, or for LLMClient's AllProvidersFailed the class of the
    last error of its last round (``ProviderUnavailable``: skipped, cooling down)."""
    failures = getattr(exc, "failures", None)
    return type(failures[-1].error if failures else exc).__name__


async def run_pool(call: Callable[[], Awaitable[object]], n: int, concurrency: int) -> PoolRun:
    """``n`` calls, ``concurrency`` at a time; errors are counted by type, not raised."""
    run = PoolRun()
    todo = iter(range(n))

    async def worker() -> None:
        for _ in todo:
            started = time.perf_counter()
            try:
                await call()
            except Exception as exc:
                run.errors[error_name(exc)] += 1
            else:
                run.latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    run.elapsed = time.perf_counter() - started
    return run


# --------------------------------------------------------------------------- cpus


@contextlib.contextmanager
def separate_cpus(*servers: FaultServerProcess) -> Iterator[None]:
    """Pin the servers to the last CPU and this process to the others, so the compared
    clients never share a core with the server: on a 2-core VM, whether the scheduler
    happened to co-locate them swung the overhead ratio between 1.07x and 1.24x."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cpus) < 2:
        yield
        return
    mine = set(cpus)
    try:
        for server in servers:
            assert server.pid is not None, "pin only a started server"
            os.sched_setaffinity(server.pid, {cpus[-1]})
        os.sched_setaffinity(0, set(cpus[:-1]))
        yield
    finally:
        os.sched_setaffinity(0, mine)


# --------------------------------------------------------------------------- overhead


def bench_overhead(cfg: Config) -> Report:
    with FaultServerProcess(text=SHORT_TEXT, model=MODEL) as server, separate_cpus(server):
        samples = asyncio.run(_overhead(server.base_url, cfg))
    report = Report("overhead")
    medians = {name: statistics.median(times) for name, times in samples.items()}
    means = {name: statistics.fmean(times) for name, times in samples.items()}
    for name in samples:
        report.row(f"{name}: mean / median per request", f"{us(means[name])} / {us(medians[name])}")
    raw, sdk, llm = medians["raw httpx"], medians["openai SDK"], medians["LLMClient"]
    report.row(
        "LLMClient / raw httpx (mean)", f"{ratio(means['LLMClient'], means['raw httpx']):.3f}x"
    )
    report.row("LLMClient / raw httpx (median of all requests)", f"{ratio(llm, raw):.3f}x")
    paired = paired_block_ratio(samples["LLMClient"], samples["raw httpx"], cfg.overhead_blocks)
    report.row(
        "LLMClient / raw httpx (median of per-block ratios)",
        f"{paired:.3f}x",
        "<= 1.15x",
        paired <= 1.15,
    )
    report.row("LLMClient / openai SDK (median)", f"{ratio(llm, sdk):.3f}x", "< 1x", llm < sdk)
    report.data = {
        "requests_per_client": len(samples["LLMClient"]),
        "mean_us": {k: v * 1e6 for k, v in means.items()},
        "median_us": {k: v * 1e6 for k, v in medians.items()},
        "p95_us": {k: percentile(v, 95) * 1e6 for k, v in samples.items()},
    }
    return report


async def _overhead(url: str, cfg: Config) -> dict[str, list[float]]:
    from openai import AsyncOpenAI

    llm = make_llm([url])
    raw = make_raw(url)
    sdk = AsyncOpenAI(base_url=url, api_key=API_KEY)

    async def via_llm() -> str:
        return (await llm.chat(PROMPT)).text

    async def via_raw() -> str:
        return await raw_chat(raw)

    async def via_sdk() -> str:
        # The SDK types messages as TypedDicts; PROMPT is the same plain dict every
        # client here sends.
        completion = await sdk.chat.completions.create(model=MODEL, messages=PROMPT)  # type: ignore[arg-type]
        return completion.choices[0].message.content or ""

    calls = {"LLMClient": via_llm, "raw httpx": via_raw, "openai SDK": via_sdk}
    try:
        return await _time_alternating(calls, cfg)
    finally:
        await llm.aclose()
        await raw.aclose()
        await sdk.close()


def paired_block_ratio(ours: list[float], base: list[float], blocks: int) -> float:
    """The median over blocks of (our block median / the baseline's block median).

    Blocks of the two clients run next to each other in time, so each ratio compares
    like with like; the VM's slow spells (steal time) move both halves of a pair."""
    size_ours, size_base = len(ours) // blocks, len(base) // blocks
    ratios = [
        statistics.median(ours[i * size_ours : (i + 1) * size_ours])
        / statistics.median(base[i * size_base : (i + 1) * size_base])
        for i in range(blocks)
    ]
    return statistics.median(ratios)


async def _time_alternating(
    calls: Mapping[str, Callable[[], Awaitable[str]]], cfg: Config
) -> dict[str, list[float]]:
    """Per-request seconds of each client, run in alternating blocks after a warm-up."""
    for call in calls.values():
        for _ in range(cfg.overhead_warmup):
            await call()
    samples: dict[str, list[float]] = {name: [] for name in calls}
    per_block = cfg.overhead_requests // cfg.overhead_blocks
    clock = time.perf_counter
    for order in rotations(list(calls), cfg.overhead_blocks):
        for name in order:
            call, out = calls[name], samples[name]
            for _ in range(per_block):
                started = clock()
                text = await call()
                out.append(clock() - started)
                if text != SHORT_TEXT:
                    raise BenchError(f"{name} answered {text!r}")
    return samples


# --------------------------------------------------------------------------- streams


def bench_streams(cfg: Config) -> Report:
    default = Outcome.ok(chunk_size=STREAM_CHUNK_CHARS)
    with (
        FaultServerProcess(text=LONG_TEXT, model=MODEL, default=default) as server,
        separate_cpus(server),
    ):
        rates = asyncio.run(_streams(server.base_url, cfg))
    report = Report("streams")
    medians = {name: statistics.median(values) for name, values in rates.items()}
    for name, values in rates.items():
        rounds = ", ".join(f"{v:,.0f}" for v in values)
        report.row(f"{name}: chunks/s, median [rounds]", f"{medians[name]:,.0f} [{rounds}]")
    share = ratio(medians["LLMClient"], medians["raw httpx"])
    report.row("LLMClient / raw httpx throughput (medians)", f"{share:.3f}x")
    # Rounds alternate LLMClient, raw, LLMClient, raw...: pair each with its neighbour.
    paired = statistics.median(
        ours / base for ours, base in zip(rates["LLMClient"], rates["raw httpx"], strict=True)
    )
    report.row(
        "LLMClient / raw httpx throughput (median of paired rounds)",
        f"{paired:.3f}x",
        ">= 0.85x",
        paired >= 0.85,
    )
    report.data = {
        "concurrency": cfg.stream_concurrency,
        "chunks_per_stream": len(_split(LONG_TEXT)),
        "chunks_per_s": rates,
        "median_chunks_per_s": medians,
    }
    return report


def _split(text: str) -> list[str]:
    return [text[i : i + STREAM_CHUNK_CHARS] for i in range(0, len(text), STREAM_CHUNK_CHARS)]


async def _streams(url: str, cfg: Config) -> dict[str, list[float]]:
    llm = make_llm([url])
    raw = make_raw(url)
    payload = body(stream=True)

    async def via_llm() -> int:
        chunks, text = 0, ""
        async for event in llm.stream(PROMPT):
            if isinstance(event, TextDelta):
                chunks += 1
            elif isinstance(event, StreamEnd):
                text = event.result.text
        return _checked(chunks, text)

    async def via_raw() -> int:
        parts: list[str] = []
        async with raw.stream(
            "POST", "/chat/completions", content=payload, headers=SSE_HEADERS
        ) as response:
            async for line in response.aiter_lines():
                if not line.startswith("data: "):
                    continue
                data = line[6:]
                if data == "[DONE]":
                    break
                choices = json.loads(data).get("choices")
                content = choices[0]["delta"].get("content") if choices else None
                if content:
                    parts.append(content)
        return _checked(len(parts), "".join(parts))

    async def burst(one: Callable[[], Awaitable[int]]) -> float:
        started = time.perf_counter()
        chunks = await asyncio.gather(*(one() for _ in range(cfg.stream_concurrency)))
        return sum(chunks) / (time.perf_counter() - started)

    calls = {"LLMClient": via_llm, "raw httpx": via_raw}
    rates: dict[str, list[float]] = {name: [] for name in calls}
    try:
        for one in calls.values():
            await burst(one)  # warm-up: connections, code paths
        for order in rotations(list(calls), cfg.stream_rounds * len(calls)):
            name = order[0]
            rates[name].append(await burst(calls[name]))
    finally:
        await llm.aclose()
        await raw.aclose()
    return rates


def _checked(chunks: int, text: str) -> int:
    if text != LONG_TEXT:
        raise BenchError(f"stream assembled {len(text)} chars, expected {len(LONG_TEXT)}")
    return chunks


# --------------------------------------------------------------------------- chaos

CHAOS = ChaosMix(p429=0.1, p503=0.1, preset=0.1, retry_after="1", seed=CHAOS_SEED)


def bench_chaos(cfg: Config) -> Report:
    with (
        FaultServerProcess(text=SHORT_TEXT, model=MODEL, chaos=CHAOS) as flaky,
        FaultServerProcess(text=SHORT_TEXT, model=MODEL) as healthy,
    ):
        urls = [flaky.base_url, healthy.base_url]
        both, metrics = asyncio.run(_chaos_llm(urls, cfg.chaos_requests, cfg))
        both_a, both_b = _outcomes(flaky), healthy.stats()["requests"]
        reference = asyncio.run(_raw_pool(healthy.base_url, cfg))
        flaky.reset()  # same seed: the same fault sequence again
        sdk = asyncio.run(_chaos_sdk(flaky.base_url, cfg))
        sdk_a = _outcomes(flaky)
        flaky.reset()
        alone, alone_metrics = asyncio.run(
            _chaos_llm([flaky.base_url], cfg.chaos_alone_requests, cfg)
        )
        alone_a = _outcomes(flaky)
    report = Report("chaos")
    attempts = sum(both_a.values()) + both_b
    report.row(
        "LLMClient (A then B): success rate",
        f"{both.success_rate:.2f}% of {both.total}",
        ">= 99.9%",
        both.success_rate >= 99.9,
    )
    report.row(
        "  attempts (on A / on B), per request",
        f"{attempts} ({sum(both_a.values())} / {both_b}), {attempts / both.total:.3f}",
    )
    report.row("  A's answers", _tally(both_a))
    report.row("  p50 / p95 latency", _p50_p95(both))
    report.row("  retries / failovers / 429s / breaker blocks", _counters(metrics))
    report.row("reference: raw httpx on B, no faults: p50 / p95", _p50_p95(reference))
    report.row("openai SDK (A only): success rate", f"{sdk.success_rate:.2f}% of {sdk.total}")
    _single_provider_rows(report, sdk, sdk_a)
    report.row(
        "LLMClient (A only, no failover): success rate",
        f"{alone.success_rate:.2f}% of {alone.total}",
    )
    _single_provider_rows(report, alone, alone_a)
    report.row("  retries / failovers / 429s / breaker blocks", _counters(alone_metrics))
    report.data = {
        "llm": _pool_json(both) | {"attempts_a": both_a, "attempts_b": both_b, "metrics": metrics},
        "raw_httpx_healthy": _pool_json(reference),
        "sdk_a_only": _pool_json(sdk) | {"attempts_a": sdk_a},
        "llm_a_only": _pool_json(alone) | {"attempts_a": alone_a, "metrics": alone_metrics},
    }
    return report


def _single_provider_rows(report: Report, run: PoolRun, answers: Counter[str]) -> None:
    attempts = sum(answers.values())
    report.row("  attempts, per request", f"{attempts}, {attempts / run.total:.3f}")
    report.row("  p50 / p95 latency", _p50_p95(run))
    if run.errors:
        report.row("  errors (LLMClient: last cause)", _tally(run.errors))


async def _chaos_llm(urls: list[str], n: int, cfg: Config) -> tuple[PoolRun, dict[str, Any]]:
    llm = make_llm(urls)  # default retries, backoff and breaker; real sleeps
    try:
        run = await run_pool(lambda: llm.chat(PROMPT), n, cfg.chaos_concurrency)
        return run, llm.get_metrics()
    finally:
        await llm.aclose()


async def _raw_pool(url: str, cfg: Config) -> PoolRun:
    """Raw httpx at the chaos run's concurrency on a healthy server: what latency the
    transport alone gives, to read the chaos latencies against."""
    raw = make_raw(url)
    try:
        return await run_pool(lambda: raw_chat(raw), cfg.chaos_requests, cfg.chaos_concurrency)
    finally:
        await raw.aclose()


async def _chaos_sdk(flaky: str, cfg: Config) -> PoolRun:
    from openai import AsyncOpenAI

    sdk = AsyncOpenAI(base_url=flaky, api_key=API_KEY)

    async def call() -> None:
        await sdk.chat.completions.create(model=MODEL, messages=PROMPT)  # type: ignore[arg-type]  # as above

    try:
        return await run_pool(call, cfg.chaos_requests, cfg.chaos_concurrency)
    finally:
        await sdk.close()


def _outcomes(server: FaultServerProcess) -> Counter[str]:
    """How the server answered each chat request it received."""
    return Counter(r["outcome"] for r in server.requests() if r["path"].endswith("/completions"))


def _counters(metrics: dict[str, Any]) -> str:
    keys = ("retries", "failovers", "rate_limited", "circuit_breaker_blocks")
    return " / ".join(str(metrics[key]) for key in keys)


def _tally(counts: Counter[str]) -> str:
    return ", ".join(f"{kind} {n}" for kind, n in counts.most_common())


def _p50_p95(run: PoolRun) -> str:
    return f"{ms(percentile(run.latencies, 50))} / {ms(percentile(run.latencies, 95))}"


def _pool_json(run: PoolRun) -> dict[str, Any]:
    return {
        "requests": run.total,
        "success_rate": run.success_rate,
        "errors": dict(run.errors),
        "p50_ms": percentile(run.latencies, 50) * 1e3,
        "p95_ms": percentile(run.latencies, 95) * 1e3,
        "elapsed_s": run.elapsed,
    }


# --------------------------------------------------------------------------- outage


# The breaker's defaults, spelled out because the bound is computed from them.
FAILURE_THRESHOLD = 5
HALF_OPEN_MAX_CALLS = 3


def bench_outage(cfg: Config) -> Report:
    down = Outcome.reset()  # every chat request: TCP RST, counted by the server
    with (
        FaultServerProcess(text=SHORT_TEXT, model=MODEL, default=down) as dead,
        FaultServerProcess(text=SHORT_TEXT, model=MODEL) as alive,
    ):
        run = asyncio.run(_outage(dead.base_url, alive.base_url, cfg))
        run["attempts_a"] = dead.stats()["requests"]
        dead.reset()
        burst = asyncio.run(_outage_burst(dead.base_url, alive.base_url, cfg))
        burst["attempts_a"] = dead.stats()["requests"]
    report = Report("outage")
    periods = int(run["elapsed"] // cfg.recovery_timeout)
    bound = FAILURE_THRESHOLD + HALF_OPEN_MAX_CALLS * periods
    p50_out, p50_ok = percentile(run["outage"], 50), percentile(run["healthy"], 50)
    report.row(
        "requests per client, elapsed, recovery_timeout",
        f"{len(run['outage'])} in {run['elapsed']:.1f} s, {cfg.recovery_timeout:g} s",
    )
    report.row(
        "attempts A received",
        str(run["attempts_a"]),
        f"<= {FAILURE_THRESHOLD} + {HALF_OPEN_MAX_CALLS} x {periods} = {bound}",
        run["attempts_a"] <= bound,
    )
    report.row("A's breaker transitions", run["transitions"] or "none")
    report.row("success rate (A+B)", f"{run['success_rate']:.2f}%", "100%", run["errors"] == 0)
    report.row("p50 latency: A+B in outage / B alone", f"{us(p50_out)} / {us(p50_ok)}")
    report.row(
        "p50 outage / healthy", f"{ratio(p50_out, p50_ok):.3f}x", "<= 1.2x", p50_out <= 1.2 * p50_ok
    )
    # Informational. Concurrent traffic reaches the breaker; its first burst is in
    # flight before the breaker opens, so the burst, not failure_threshold, bounds it.
    workers = cfg.outage_workers
    periods = int(burst["elapsed"] // cfg.recovery_timeout)
    report.row(
        f"{workers} workers: attempts A received",
        f"{burst['attempts_a']} (burst {workers} + {HALF_OPEN_MAX_CALLS} x {periods} probes "
        f"= {workers + HALF_OPEN_MAX_CALLS * periods}) of {burst['requests']} requests",
    )
    report.row(f"{workers} workers: A's breaker transitions", burst["transitions"] or "none")
    del run["outage"], run["healthy"]  # thousands of samples: not for the JSON
    report.data = run | {
        "bound": bound,
        "p50_us": {"outage": p50_out * 1e6, "healthy": p50_ok * 1e6},
        "burst": burst | {"workers": workers},
    }
    return report


def _outage_client(dead: str, alive: str, cfg: Config) -> tuple[LLMClient, list[str]]:
    """A client whose first provider is down, and the list its breaker's moves go to."""
    breaker = BreakerPolicy(FAILURE_THRESHOLD, cfg.recovery_timeout, HALF_OPEN_MAX_CALLS)
    llm = make_llm([dead, alive], breaker=breaker)
    transitions: list[str] = []

    def on_event(event: object) -> None:
        if isinstance(event, BreakerTransition) and event.provider == "a":
            transitions.append(event.new)

    llm.subscribe(on_event)
    return llm, transitions


async def _outage(dead: str, alive: str, cfg: Config) -> dict[str, Any]:
    """Sequential requests for ``outage_seconds``, alternating between the outage client
    and a healthy one (B alone), so drift hits both alike."""
    outage, transitions = _outage_client(dead, alive, cfg)
    clients = {"outage": outage, "healthy": make_llm([alive])}
    latencies: dict[str, list[float]] = {name: [] for name in clients}
    errors = 0
    clock = time.perf_counter
    started = clock()
    names = list(clients)
    try:
        while clock() - started < cfg.outage_seconds:
            names.reverse()  # take turns going first
            for name in names:
                t0 = clock()
                try:
                    await clients[name].chat(PROMPT)
                except LLMError:
                    if name == "healthy":
                        raise
                    errors += 1
                latencies[name].append(clock() - t0)
        elapsed = clock() - started
        metrics = outage.get_metrics()
    finally:
        for client in clients.values():
            await client.aclose()
    n = len(latencies["outage"])
    return latencies | {
        "elapsed": elapsed,
        "errors": errors,
        "success_rate": 100.0 * (n - errors) / max(1, n),
        "transitions": " -> ".join(transitions),
        "metrics": metrics,
    }


async def _outage_burst(dead: str, alive: str, cfg: Config) -> dict[str, Any]:
    """The same outage with ``outage_workers`` concurrent sequential workers."""
    llm, transitions = _outage_client(dead, alive, cfg)
    requests = 0
    clock = time.perf_counter
    started = clock()

    async def worker() -> None:
        nonlocal requests
        while clock() - started < cfg.outage_seconds:
            await llm.chat(PROMPT)
            requests += 1

    try:
        await asyncio.gather(*(worker() for _ in range(cfg.outage_workers)))
    finally:
        await llm.aclose()
    elapsed = clock() - started
    return {"requests": requests, "elapsed": elapsed, "transitions": " -> ".join(transitions)}


# --------------------------------------------------------------------------- memory


def bench_memory(cfg: Config, quick: bool) -> Report:
    idle = run_child("idle", quick)
    chaos = run_child("chaos", quick)
    report = Report("memory")
    source = "VmHWM" if "vm_hwm_mb" in chaos else "ru_maxrss"
    report.row(f"peak RSS ({source}): imports + event loop only", f"{idle['peak_rss_mb']:.1f} MB")
    report.row(
        f"peak RSS ({source}): chaos run, {chaos['requests']} requests",
        f"{chaos['peak_rss_mb']:.1f} MB (+{chaos['peak_rss_mb'] - idle['peak_rss_mb']:.1f})",
        "< 80 MB",
        chaos["peak_rss_mb"] < 80,
    )
    report.row(
        "ru_maxrss (inherits the parent's RSS): idle / chaos",
        f"{idle['ru_maxrss_mb']:.1f} MB / {chaos['ru_maxrss_mb']:.1f} MB",
    )
    report.data = {"idle": idle, "chaos": chaos}
    return report


def run_child(name: str, quick: bool) -> dict[str, Any]:
    """Run this script as ``--only NAME --child`` and parse the JSON line it prints."""
    command = [sys.executable, str(SCRIPT), "--only", name, "--child"]
    if quick:
        command.append("--quick")
    child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        out, _ = child.communicate()
    except BaseException:  # Ctrl-C: let the child stop its own servers
        child.send_signal(signal.SIGINT)
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
        raise
    if child.returncode != 0:
        raise BenchError(f"child {name} exited with {child.returncode}")
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def child_main(name: str, cfg: Config) -> dict[str, Any]:
    """Inside the child: do the work, then report the process's peak RSS."""
    result: dict[str, Any] = {}
    if name == "idle":
        asyncio.run(asyncio.sleep(0))
    elif name == "chaos":
        with (
            FaultServerProcess(text=SHORT_TEXT, model=MODEL, chaos=CHAOS) as flaky,
            FaultServerProcess(text=SHORT_TEXT, model=MODEL) as healthy,
        ):
            urls = [flaky.base_url, healthy.base_url]
            run, _ = asyncio.run(_chaos_llm(urls, cfg.chaos_requests, cfg))
        result = {"requests": run.total, "success_rate": run.success_rate}
    else:
        raise SystemExit(f"--child runs 'idle' or 'chaos', not {name!r}")
    return result | peak_rss_mb()


def peak_rss_mb() -> dict[str, float]:
    """This process's peak RSS in MiB.

    ``ru_maxrss`` (KiB on Linux) survives ``exec``: a child spawned by a 70 MB parent
    reports at least 70 MB whatever it does itself. ``VmHWM`` of ``/proc/self/status``
    is the high-water mark of the process image since ``exec``, so it is the figure
    judged where it exists; ``ru_maxrss`` is reported beside it."""
    peak = {"ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peak["vm_hwm_mb"] = int(line.split()[1]) / 1024
    peak["peak_rss_mb"] = peak.get("vm_hwm_mb", peak["ru_maxrss_mb"])
    return peak


# --------------------------------------------------------------------------- main

BENCHMARKS: dict[str, Callable[[Config, bool], Report]] = {
    "overhead": lambda cfg, _quick: bench_overhead(cfg),
    "streams": lambda cfg, _quick: bench_streams(cfg),
    "chaos": lambda cfg, _quick: bench_chaos(cfg),
    "outage": lambda cfg, _quick: bench_outage(cfg),
    "memory": bench_memory,
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small counts (CI smoke run)")
    parser.add_argument("--only", metavar="NAME", help=", ".join(BENCHMARKS))
    parser.add_argument("--json", metavar="PATH", help="write every number to this file")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.only and not args.child and args.only not in BENCHMARKS:
        parser.error(f"--only takes one of {', '.join(BENCHMARKS)}")
    return args


def machine() -> dict[str, Any]:
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "nproc": os.cpu_count(),
        "git": _git("rev-parse", "--short", "HEAD"),
        # The client's source may be ahead of the commit: say which files differ.
        "uncommitted": _git("status", "--porcelain", "--", "qwen_dev_cli").splitlines(),
    }


def _git(*args: str) -> str:
    try:
        done = subprocess.run(
            ["git", *args], cwd=SCRIPT.parent, capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return ""
    return done.stdout.strip()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cfg = QUICK if args.quick else FULL
    if args.child:
        try:
            print(json.dumps(child_main(args.only or "", cfg)), flush=True)
        except KeyboardInterrupt:  # the parent reports it
            return 130
        return 0
    names = [args.only] if args.only else list(BENCHMARKS)
    info = machine()
    print(f"bench_client: {'quick' if args.quick else 'full'} run, {', '.join(names)}")
    print(f"python {info['python']}, {info['nproc']} CPUs, {info['platform']}, {info['date']}")
    dirty = f", {len(info['uncommitted'])} uncommitted file(s) in qwen_dev_cli"
    print(f"git {info['git'] or '?'}{dirty if info['uncommitted'] else ''}")
    reports: list[Report] = []
    started = time.perf_counter()
    try:
        for name in names:
            # What earlier benchmarks left on the heap (the SDK's models, thousands of
            # responses) must not make this one's garbage collections slower: settle it
            # and move it out of the collector's sight. Both compared clients gain alike.
            gc.collect()
            gc.freeze()
            t0 = time.perf_counter()
            reports.append(BENCHMARKS[name](cfg, args.quick))
            print(f"  {name}: {time.perf_counter() - t0:.1f} s", flush=True)
    except KeyboardInterrupt:
        print("\ninterrupted; servers stopped", file=sys.stderr)
        return 130
    runtime = time.perf_counter() - started
    print()
    print_table(reports)
    verdicts = [row.passed for report in reports for row in report.rows if row.passed is not None]
    print(f"{verdicts.count(True)} of {len(verdicts)} targets met; {runtime:.1f} s in all")
    if args.json:
        results = {r.name: {"rows": [vars(row) for row in r.rows], "data": r.data} for r in reports}
        out = {"machine": info, "quick": args.quick, "runtime_s": runtime, "results": results}
        Path(args.json).write_text(json.dumps(out, indent=2, default=str) + "\n")
    return 1 if args.strict and not all(verdicts) else 0


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        raise SystemExit(main())
