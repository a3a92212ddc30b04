#!/usr/bin/env python
"""Benchmarks of the shared state stores, each against ``memory`` in the same run.

    .venv/bin/python scripts/bench_state.py [--quick] [--only NAME] [--json out.json]

overhead   sequential chats through LLMClient to an instant in-process provider, in
           alternating blocks per store: what ``local`` (SQLite) and ``redis`` add per
           request over ``memory``, and the Redis commands each request costs.
           Targets: local adds <= 150 us; redis <= 2 round trips per request.
processes  N processes (1, 4, 16) send 2R requests through one account to a
           fault server that enforces R requests per minute, each process configured
           with rpm = R: the server's 429s per store, and the pace against the fastest
           the budget allows (R at once, R more a window later). Targets with the
           shared stores: 0 server-side 429s; pace >= 95%.
restart    1,000 requests, 10 at a time, through the redis store; Redis is killed
           halfway and started again a second later. Target: 0 answers lost.

Needs ``redis-server`` on PATH (``scripts/bootstrap --dev`` installs it).
``--child`` is internal: one process of the ``processes`` benchmark, one JSON line.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import asyncio
import json
import statistics
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from faultserver import FaultServerProcess
from qwen_dev_cli.core import LLMClient, RateLimits, RetryPolicy
from qwen_dev_cli.core.settings import DEFAULT_CONTEXT_WINDOW, ProviderSettings
from qwen_dev_cli.core.state import FallbackStore, ProviderStateStore, open_store
from qwen_dev_cli.core.state_redis import RedisStore
from qwen_dev_cli.core.state_sqlite import SqliteStore
from qwen_dev_cli.core.types import ChatRequest, ProviderChunk, ProviderReply, Usage
from tests.redis_server import RedisServer

USER = [{"role": "user", "content": "hello"}]
#: A budget no benchmark reaches: the limiter is on, and never waits.
UNLIMITED = RateLimits(requests_per_minute=10**7)


@dataclass
class Row:
    benchmark: str
    measurement: str
    result: str
    target: str = ""
    verdict: str = ""


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    def add(self, *args: str) -> None:
        self.rows.append(Row(*args))

    def print(self) -> None:
        widths = [max(len(getattr(r, f)) for r in [*self.rows, HEADER]) for f in FIELDS]
        line = "  ".join("-" * w for w in widths)
        print(line)
        for row in [HEADER, *self.rows]:
            print("  ".join(getattr(row, f).ljust(w) for f, w in zip(FIELDS, widths, strict=True)))
        print(line)


FIELDS = ("benchmark", "measurement", "result", "target", "verdict")
HEADER = Row(*FIELDS)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


class InstantProvider:
    """Answers at once, so a chat's time is the client's own work and the store's."""

    name = "bench"
    model = "instant"
    max_tokens: int | None = 16  # as the Provider protocol declares it (attributes are invariant)
    context_window = DEFAULT_CONTEXT_WINDOW
    account = "http://bench.invalid/v1|instant|0000000000000000"

    async def chat(self, request: ChatRequest) -> ProviderReply:
        return ProviderReply("ok", [], Usage(5, 1, 6), self.model)

    async def stream(self, request: ChatRequest) -> AsyncIterator[ProviderChunk]:
        yield ProviderReply("ok", [], Usage(5, 1, 6), self.model)

    async def aclose(self) -> None:
        return None


# --- overhead --------------------------------------------------------------------------


async def _blocks(stores: dict[str, ProviderStateStore], blocks: int, per_block: int) -> Any:
    clients = {
        name: LLMClient([InstantProvider()], rate_limits=UNLIMITED, state=store)
        for name, store in stores.items()
    }
    for client in clients.values():  # warm up: connections, scripts, the file
        for _ in range(50):
            await client.chat(USER)
    times: dict[str, list[float]] = {name: [] for name in stores}
    for block in range(blocks):
        order = list(clients) if block % 2 == 0 else list(reversed(clients))
        for name in order:
            client = clients[name]
            started = time.perf_counter()
            for _ in range(per_block):
                await client.chat(USER)
            times[name].append((time.perf_counter() - started) / per_block)
    return times


def bench_overhead(report: Report, redis_url: str, home: Path, quick: bool) -> None:
    blocks, per_block = (6, 100) if quick else (20, 250)

    async def run() -> tuple[dict[str, list[float]], float]:
        redis = RedisStore(redis_url)
        stores: dict[str, ProviderStateStore] = {
            "memory": open_store("memory", home=home),
            "local": SqliteStore(home / "state.sqlite3"),
            "redis": redis,
        }
        times = await _blocks(stores, blocks, per_block)
        probe = LLMClient([InstantProvider()], rate_limits=UNLIMITED, state=redis)
        before = await _commands(redis_url)
        for _ in range(200):
            await probe.chat(USER)
        after = await _commands(redis_url)
        for store in stores.values():
            await store.aclose()
        return times, (after - before) / 200

    times, commands = asyncio.run(run())
    memory = statistics.median(times["memory"])
    for name in ("memory", "local", "redis"):
        report.add(
            "overhead",
            f"{name}: median per request",
            f"{statistics.median(times[name]) * 1e6:,.0f} us",
        )
    for name, limit in (("local", 150e-6), ("redis", None)):
        # Paired blocks: each block's difference with the memory block beside it.
        deltas = [a - b for a, b in zip(times[name], times["memory"], strict=True)]
        added = statistics.median(deltas)
        target = f"<= {limit * 1e6:.0f} us" if limit else ""
        ok = verdict(added <= limit) if limit else ""
        report.add(
            "overhead",
            f"{name} - memory (median of paired blocks)",
            f"{added * 1e6:,.0f} us",
            target,
            ok,
        )
        report.add(
            "overhead", f"{name} / memory", f"{statistics.median(times[name]) / memory:.2f}x"
        )
    report.add(
        "overhead",
        "redis round trips per request",
        f"{commands:.2f}",
        "<= 2",
        verdict(commands <= 2.0),
    )
    report.data["overhead"] = {"times": times, "redis_commands_per_request": commands}


async def _commands(url: str) -> int:
    """Commands the server has been sent (scripts count once, not their inner calls)."""
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(url)
    try:
        stats = await client.info("commandstats")
    finally:
        await client.aclose()
    # Calls the scripts make inside the server, and this probe's own connection set-up.
    inner = {"get", "set", "pexpire", "time", "del", "exists", "info", "client", "hello"}
    return sum(
        int(value["calls"])
        for name, value in stats.items()
        if name.removeprefix("cmdstat_") not in inner
    )


# --- processes ---------------------------------------------------------------------------


async def child(args: argparse.Namespace) -> None:
    settings = ProviderSettings(
        name="lab",
        model="fault-model",
        base_url=args.url,
        api_key="bench-account-key",
        rpm=args.rpm,
    )
    store = open_store(args.store, home=Path(args.home))
    retry = RetryPolicy(max_retries=8, base_delay=0.5, max_delay=5.0, max_retry_after=120.0)
    client = LLMClient([settings], retry=retry, state=store)
    ok = failed = 0
    await asyncio.sleep(max(0.0, args.start_at - time.time()))  # all start together
    started = time.time()
    for _ in range(args.count):
        try:
            await client.chat(USER)
            ok += 1
        except Exception:
            failed += 1
    print(json.dumps({"ok": ok, "failed": failed, "elapsed": time.time() - started}))
    await client.aclose()
    await store.aclose()


def bench_processes(
    report: Report, redis: RedisServer, quick: bool, processes: tuple[int, ...] = ()
) -> None:
    rpm = 60
    total = 2 * rpm
    counts = processes or ((1, 4) if quick else (1, 4, 16))
    results: dict[str, Any] = {}
    for n in counts:
        for store in ("memory", "local", "redis"):
            redis.flush()
            with tempfile.TemporaryDirectory() as home, FaultServerProcess(rpm=rpm) as server:
                spec = redis.url if store == "redis" else store
                start_at = time.time() + 1.5
                procs = [
                    subprocess.Popen(
                        [
                            sys.executable,
                            __file__,
                            "--child",
                            "--store",
                            spec,
                            "--url",
                            server.base_url,
                            "--rpm",
                            str(rpm),
                            "--count",
                            str(total // n + (i < total % n)),
                            "--home",
                            home,
                            "--start-at",
                            str(start_at),
                        ],
                        stdout=subprocess.PIPE,
                        text=True,
                    )
                    for i in range(n)
                ]
                outs = [json.loads(p.communicate(timeout=600)[0]) for p in procs]
                elapsed = max(o["elapsed"] for o in outs)
                stats = server.requests()
            throttled = sum(1 for r in stats if r["outcome"] == "rate_limited")
            answered = sum(o["ok"] for o in outs)
            pace = 60.0 / elapsed  # the budget allows 2R in one window at best
            results[f"{store}/{n}"] = {"elapsed": elapsed, "429": throttled, "ok": answered}
            shared = store != "memory"
            report.add(
                "processes",
                f"N={n:<2} {store:<6}: server 429s",
                str(throttled),
                "0" if shared else "",
                verdict(throttled == 0) if shared else "",
            )
            report.add(
                "processes",
                f"N={n:<2} {store:<6}: answered, pace vs budget",
                f"{answered}/{total}, {pace:.0%} ({elapsed:.1f} s)",
                ">= 95%" if shared else "",
                verdict(pace >= 0.95 and answered == total) if shared else "",
            )
    report.data["processes"] = results


# --- restart ------------------------------------------------------------------------------


def bench_restart(report: Report, redis: RedisServer, quick: bool) -> None:
    n = 300 if quick else 1000
    warnings: list[str] = []

    async def run() -> tuple[int, int, float, bool]:
        with FaultServerProcess() as server:
            settings = ProviderSettings(
                name="lab", model="fault-model", base_url=server.base_url, rpm=10**6
            )
            store = FallbackStore(RedisStore(redis.url), warn=warnings.append, reconnect_after=0.2)
            client = LLMClient(
                [settings], state=store, retry=RetryPolicy(max_retries=3, base_delay=0.05)
            )
            done = ok = degraded = 0

            async def one() -> None:
                nonlocal done, ok, degraded
                try:
                    await client.chat(USER)
                    ok += 1
                finally:
                    done += 1
                    degraded += store.degraded

            queue = list(range(n))
            started = time.monotonic()

            async def worker() -> None:
                while queue:
                    if queue.pop() == n // 2:
                        redis.stop()
                        asyncio.get_running_loop().call_later(0.3, redis.start)
                    await one()

            await asyncio.gather(*(worker() for _ in range(10)))
            elapsed = time.monotonic() - started
            await asyncio.sleep(0.5)  # Redis is back by now: the next request finds it
            await client.chat(USER)
            back = not store.degraded
            await client.aclose()
            await store.aclose()
            return ok, degraded, elapsed, back

    ok, degraded, elapsed, back = asyncio.run(run())
    report.add(
        "restart",
        "answered with Redis killed halfway",
        f"{ok}/{n} in {elapsed:.1f} s",
        f"{n}/{n}",
        verdict(ok == n),
    )
    report.add("restart", "answered on per-process state meanwhile", str(degraded))
    report.add("restart", "shared again afterwards", "yes" if back else "no", "yes", verdict(back))
    report.add(
        "restart", "warnings", str(len(warnings)), "2 (down, back)", verdict(len(warnings) == 2)
    )
    report.data["restart"] = {"ok": ok, "n": n, "degraded": degraded, "warnings": warnings}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", choices=("overhead", "processes", "restart"))
    parser.add_argument("--json", type=Path)
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--store"), parser.add_argument("--url"), parser.add_argument("--home")
    parser.add_argument("--rpm", type=int), parser.add_argument("--count", type=int)
    parser.add_argument("--start-at", type=float)
    parser.add_argument("--processes", type=int, nargs="+", default=[], help="N (1 4 16)")
    args = parser.parse_args()
    if args.child:
        asyncio.run(child(args))
        return 0
    report = Report()
    with RedisServer() as redis, tempfile.TemporaryDirectory() as home:
        if args.only in (None, "overhead"):
            bench_overhead(report, redis.url, Path(home), args.quick)
        if args.only in (None, "restart"):
            bench_restart(report, redis, args.quick)
        if args.only in (None, "processes"):
            bench_processes(report, redis, args.quick, tuple(args.processes))
    report.print()
    if args.json:
        args.json.write_text(json.dumps(report.data, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
