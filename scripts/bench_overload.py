#!/usr/bin/env python
"""Retry storms, side by side: many processes through one account to a degraded provider.

    .venv/bin/python scripts/bench_overload.py [--quick] [--before REF] [--json out.json]

16 processes x 50 requests (paced over about twice the outage) through one account to
provider A, which answers 503 to half of its requests (a seeded random half) for 30 s
and then recovers; a healthy provider B is the fallback. Run with B and without it, by:

after    this tree's client: the account's retry budget and adaptive throttling, shared
         through the ``local`` store (a SQLite file every process opens).
today    the client without them: ``--before REF`` runs the code of a git commit (taken
         with ``git archive``); without it, this tree with the restraint switched off
         (``retry_budget_ratio = 10``, ``throttle_k = 0``), which retries exactly as the
         client did before issue 21 for a 503.
sdk      the openai SDK (``AsyncOpenAI``, its default ``max_retries=2``), without B (it
         has no failover).

Every client keeps ``max_retries = 3`` and a breaker whose threshold is out of reach (a
provider failing half its requests rarely fails five in a row: the situation the retry
budget exists for). Measured: retry amplification on A during the outage (attempts A
received / requests that went to A), requests answered (all, and those started after
A recovered), requests that failed fast saying the retry budget is spent, local
refusals by throttling. Targets: amplification <= 1.2 without B (after), near 1 with B;
100% answered with B; >= 99% answered after recovery without B.

quota    A answers every request with 429 ``insufficient_quota``: attempts A receives
         from 16 processes x 5 paced requests with B as the fallback. Target: 1.

``--quick`` shortens the outage to 10 s (and the run with it); ``--failing 1.0 --runs
after,today`` has A fail every request in the outage (the issue's baseline: 4.00).
``--child`` is internal: one process of a run, printing one JSON line per request.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
# A run of "today" may put another tree's qwen_dev_cli first (see --before).
sys.path.insert(0, os.environ.get("BENCH_OVERLOAD_TREE", sys.path[0]))

import argparse
import asyncio
import json
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

from faultserver import ChaosMix, FaultServerProcess, Outcome

_REPO = Path(__file__).resolve().parent.parent
PROCESSES = 16
REQUESTS = 50
USER = [{"role": "user", "content": "hello"}]
QUOTA = Outcome.status(
    429,
    message="You exceeded your current quota, please check your plan and billing details.",
    code="insufficient_quota",
    error_type="insufficient_quota",
)


# --- one process of a run ----------------------------------------------------------------


def ready(args: argparse.Namespace) -> float:
    """Say this process is ready, and wait for the driver's start time: 16 processes
    starting on a busy machine must not all fire their first request at once because
    they finished starting together."""
    Path(f"{args.go}.{args.offset}").touch()
    while not Path(args.go).exists():
        time.sleep(0.01)
    return float(Path(args.go).read_text())


async def child(args: argparse.Namespace) -> None:
    """Send ``args.count`` requests, one at a time, request i starting no earlier than
    ``start + offset + i * interval`` (the monotonic clock, shared by every process on
    the machine; ``start`` is written to the file ``args.go`` once every process is
    ready); print one JSON line per request."""
    if args.client == "sdk":
        send, close = _sdk_client(args)
    else:
        send, close = await _qwen_client(args)
    start_at = await asyncio.to_thread(ready, args)
    for i in range(args.count):
        due = start_at + args.offset + i * args.interval
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        started = time.monotonic()
        row: dict[str, Any] = {"start": started}
        try:
            row.update(await send())
            row["ok"] = True
        except Exception as exc:
            row.update(ok=False, error=getattr(exc, "kind", type(exc).__name__))
            row["events"] = getattr(exc, "events", {})
        row["a_attempts"] = row.get("events", {}).get("attempt:a", 0)
        row["end"] = time.monotonic()
        print(json.dumps(row), flush=True)
    await close()


async def _qwen_client(args: argparse.Namespace) -> tuple[Any, Any]:
    from qwen_dev_cli.core import BreakerPolicy, LLMClient, ProviderSettings, RetryPolicy
    from qwen_dev_cli.core.state import open_store

    providers = [
        ProviderSettings(name=name, model="fault-model", base_url=url, api_key="bench-key")
        for name, url in (("a", args.a), ("b", args.b))
        if url
    ]
    store = open_store("local", home=Path(args.home))
    retry = RetryPolicy(max_retries=3)
    if args.client == "off":
        retry = RetryPolicy(max_retries=3, retry_budget_ratio=10.0, throttle_k=0.0)
    client = LLMClient(
        providers, retry=retry, breaker=BreakerPolicy(failure_threshold=10**6), state=store
    )
    seen: dict[str, int] = {}

    def note(event: Any) -> None:
        name = type(event).__name__
        if name == "AttemptStarted":
            name = f"attempt:{event.provider}"
        elif name == "Throttled":
            name = f"Throttled:{event.provider}"
        seen[name] = seen.get(name, 0) + 1

    client.subscribe(note)
    # Warm up what a first request would pay for: the store's file, the lazy imports.
    await client.refresh_status()
    from qwen_dev_cli.core.providers import openai_compat  # noqa: F401  # imported for its cost, not its name

    async def send() -> dict[str, Any]:
        seen.clear()
        try:
            result = await client.chat(USER)
        except Exception as exc:
            exc.events = dict(seen)  # type: ignore[attr-defined]  # carried to the row
            raise
        return {"provider": result.provider, "events": dict(seen), "shared": shared()}

    def shared() -> bool:
        return not getattr(store, "degraded", False)

    async def close() -> None:
        await client.aclose()
        await store.aclose()

    return send, close


def _sdk_client(args: argparse.Namespace) -> tuple[Any, Any]:
    from openai import AsyncOpenAI, DefaultAsyncHttpxClient

    seen: dict[str, int] = {}

    async def note(request: Any) -> None:
        seen["attempt:a"] = seen.get("attempt:a", 0) + 1

    http = DefaultAsyncHttpxClient(event_hooks={"request": [note]})
    # Its default max_retries (2), as a user gets it.
    client = AsyncOpenAI(base_url=args.a, api_key="bench-key", http_client=http)

    async def send() -> dict[str, Any]:
        seen.clear()
        try:
            await client.chat.completions.create(
                model="fault-model",
                messages=[{"role": "user", "content": "hello"}],
            )
        except Exception as exc:
            exc.events = dict(seen)  # type: ignore[attr-defined]  # carried to the row
            raise
        return {"provider": "a", "events": dict(seen)}

    async def close() -> None:
        await client.close()
        await http.aclose()

    return send, close


# --- the driver -----------------------------------------------------------------------------


@dataclass
class Run:
    name: str
    client: str  # after | off | before | sdk
    with_b: bool
    rows: list[dict[str, Any]] = field(default_factory=list)
    a_times: list[float] = field(default_factory=list)
    b_attempts: int = 0
    outage: tuple[float, float] = (0.0, 0.0)


def run(
    run: Run,
    *,
    outage: float,
    interval: float,
    count: int,
    default: Outcome | None = None,
    tree: Path | None = None,
    failing: float = 0.5,
) -> Run:
    """One run: fresh servers and a fresh store, ``PROCESSES`` children, and A degraded
    for ``outage`` seconds from the start (or answering ``default`` throughout)."""
    with (
        tempfile.TemporaryDirectory() as home,
        FaultServerProcess(default=default) as a,
        FaultServerProcess(text="from b") as b,
    ):
        go = Path(home) / "go"
        env = dict(os.environ)
        client = run.client
        if client == "before":
            assert tree is not None
            env["BENCH_OVERLOAD_TREE"] = str(tree)
            client = "after"  # that tree's client, as it is
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    "--client",
                    client,
                    "--a",
                    a.base_url,
                    "--b",
                    b.base_url if run.with_b else "",
                    "--home",
                    home,
                    "--go",
                    str(go),
                    "--offset",
                    str(p * interval / PROCESSES),
                    "--interval",
                    str(interval),
                    "--count",
                    str(count),
                ],
                stdout=subprocess.PIPE,
                text=True,
                env=env,
            )
            for p in range(PROCESSES)
        ]
        while len(list(Path(home).glob("go.*"))) < PROCESSES:
            if any(proc.poll() is not None for proc in procs):
                raise SystemExit("a child process died before it was ready")
            time.sleep(0.05)
        start_at = time.monotonic() + 0.5
        go.with_suffix(".tmp").write_text(str(start_at))
        go.with_suffix(".tmp").rename(go)
        time.sleep(max(0.0, start_at - time.monotonic()))
        if default is None:
            a.configure(chaos=ChaosMix(p503=failing, seed=21))
            began = time.monotonic()
            time.sleep(outage)
            a.configure(chaos=None)
            run.outage = (began, time.monotonic())
        for proc in procs:
            out, _ = proc.communicate(timeout=900)
            run.rows += [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        run.a_times = [r["time"] for r in a.requests() if r["path"].endswith("/chat/completions")]
        run.b_attempts = sum(1 for r in b.requests() if r["path"].endswith("/chat/completions"))
    return run


def summarise(run: Run) -> dict[str, Any]:
    began, ended = run.outage
    during = [r for r in run.rows if began <= r["start"] < ended]
    after = [r for r in run.rows if r["start"] >= ended]
    # Each request counts its own attempts on A (its AttemptStarted events; the SDK's
    # requests through an httpx hook), so retries landing after the outage still count.
    to_a = [r for r in during if r["a_attempts"] > 0]
    attempts = sum(r["a_attempts"] for r in to_a)
    events: dict[str, int] = {}
    for row in run.rows:
        for name, n in row.get("events", {}).items():
            events[name] = events.get(name, 0) + n
    latencies = sorted(r["end"] - r["start"] for r in run.rows)
    errors = sorted({r["error"] for r in run.rows if not r["ok"]})
    return {
        "run": run.name,
        "requests": len(run.rows),
        "answered": sum(r["ok"] for r in run.rows),
        "during": len(during),
        "to_a_during": len(to_a),
        "a_attempts_during": attempts,
        "amplification": attempts / len(to_a) if to_a else 0.0,
        "after": len(after),
        "answered_after": sum(r["ok"] for r in after),
        "budget_spent_failures": sum(r.get("error") == "retry_budget_exhausted" for r in run.rows),
        "errors": {e: sum(r.get("error") == e for r in run.rows) for e in errors},
        "throttled": events.get("Throttled:a", 0),
        "throttled_b": events.get("Throttled:b", 0),
        "budget_events": events.get("RetryBudgetSpent", 0),
        "a_attempts": len(run.a_times),
        "a_attempts_counted": sum(r["a_attempts"] for r in run.rows),
        "b_attempts": run.b_attempts,
        "p50_s": statistics.median(latencies) if latencies else 0.0,
        "max_s": latencies[-1] if latencies else 0.0,
    }


def _archive(ref: str, into: Path) -> Path:
    archive = subprocess.run(
        ["git", "-C", str(_REPO), "archive", ref, "qwen_dev_cli"],
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 10 s outage instead of 30 s")
    parser.add_argument("--before", metavar="REF", help="git commit to measure as 'today'")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--only", choices=("outage", "quota"))
    parser.add_argument(
        "--failing",
        type=float,
        default=0.5,
        help="share of A's requests answered 503 in the outage (1.0: the issue's baseline)",
    )
    parser.add_argument(
        "--runs",
        default="after-b,today-b,after,today,sdk",
        help="which outage runs, comma-separated (default: all five)",
    )
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--client", default="after")
    parser.add_argument("--a"), parser.add_argument("--b"), parser.add_argument("--home")
    parser.add_argument("--go"), parser.add_argument("--offset", type=float)
    parser.add_argument("--interval", type=float), parser.add_argument("--count", type=int)
    args = parser.parse_args()
    if args.child:
        asyncio.run(child(args))
        return 0
    outage = 10.0 if args.quick else 30.0
    interval = 2 * outage / REQUESTS  # 50 requests over twice the outage
    today = "before" if args.before else "off"
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as trees:
        tree = _archive(args.before, Path(trees)) if args.before else None
        if args.only in (None, "outage"):
            chosen = set(args.runs.split(","))
            for key, name, client, with_b in (
                ("after-b", "after, with B", "after", True),
                ("today-b", "today, with B", today, True),
                ("after", "after, without B", "after", False),
                ("today", "today, without B", today, False),
                ("sdk", "openai SDK, without B", "sdk", False),
            ):
                if key not in chosen:
                    continue
                done = run(
                    Run(name, client, with_b),
                    outage=outage,
                    interval=interval,
                    count=REQUESTS,
                    tree=tree,
                    failing=args.failing,
                )
                results.append(summarise(done))
                print(_line(results[-1]), flush=True)
        if args.only in (None, "quota"):
            for name, client in (("after", "after"), ("today", today), ("openai SDK", "sdk")):
                done = run(
                    Run(f"quota: {name}", client, client != "sdk"),
                    outage=0.0,
                    interval=1.6,
                    count=5,
                    default=QUOTA,
                    tree=tree,
                )
                row = summarise(done)
                results.append(row)
                print(
                    f"{row['run']:<24} A attempts {row['a_attempts']:>4} for "
                    f"{row['requests']} requests; answered {row['answered']}",
                    flush=True,
                )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    return 0


def _line(row: dict[str, Any]) -> str:
    return (
        f"{row['run']:<24} amplification {row['amplification']:.2f} "
        f"({row['a_attempts_during']} attempts / {row['to_a_during']} requests to A in the "
        f"outage); answered {row['answered']}/{row['requests']}, after recovery "
        f"{row['answered_after']}/{row['after']}; failed saying the budget is spent "
        f"{row['budget_spent_failures']}; A throttled locally {row['throttled']} (B "
        f"{row['throttled_b']}); B attempts "
        f"{row['b_attempts']}; p50 {row['p50_s']:.2f} s, max {row['max_s']:.1f} s; "
        f"errors {row['errors']}"
    )


if __name__ == "__main__":
    sys.exit(main())
