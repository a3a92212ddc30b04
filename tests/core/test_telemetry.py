"""Telemetry: the schema of docs/architecture.md section 5, nearest-rank percentiles,
the off switch, and aggregation over runs."""

from __future__ import annotations

import json
import random
import re
from bisect import bisect_left
from typing import Any

import pytest
from rich.console import Console

from qwen_dev_cli.core.errors import (
    AuthenticationError,
    ConnectionFailed,
    MalformedResponse,
    RateLimited,
    RequestTimeout,
    ServerError,
    StreamInterrupted,
)
from qwen_dev_cli.core.events import (
    AttemptStarted,
    BreakerTransition,
    Failover,
    QuotaExhausted,
    RateLimitWait,
    RetryBudgetSpent,
    Throttled,
)
from qwen_dev_cli.core.telemetry import (
    BUCKET_BOUNDS_MS,
    BUCKET_RESOLUTION_PCT,
    BUCKET_SCHEME,
    FAILURE_KINDS,
    GENAI_DURATION_BOUNDS_S,
    Histogram,
    Telemetry,
    failure_kind,
    merge_snapshots,
    percentile,
)
from qwen_dev_cli.ui.metrics_table import print_metrics

TOP_LEVEL = {
    "total_requests": int,
    "success_rate": float,
    "avg_latency_ms": int,
    "p50_latency_ms": int,
    "p95_latency_ms": int,
    "total_tokens": int,
    "retries": int,
    "rate_limited": int,
    "circuit_breaker_blocks": int,
    "failovers": int,
    "providers": dict,
    # Added by issue 23: counts that say what they count, and histograms.
    "successful_requests": int,
    "failed_requests": int,
    "total_attempts": int,
    "failed_attempts": int,
    "failures": dict,
    "breaker_opens": int,
    "throttled": int,
    "budget_waits": int,
    "budget_wait_s": float,
    "retry_budget_spent": int,
    "quota_exhausted": int,
    "input_tokens": int,
    "output_tokens": int,
    "p50_ttft_ms": int,
    "p95_ttft_ms": int,
    "latency_resolution_pct": float,
    "histograms": dict,
}
#: The keys of docs/architecture.md section 5 before issue 23 (kept, never renamed).
LEGACY = [
    "total_requests",
    "success_rate",
    "avg_latency_ms",
    "p50_latency_ms",
    "p95_latency_ms",
    "total_tokens",
    "retries",
    "rate_limited",
    "circuit_breaker_blocks",
    "failovers",
    "providers",
]
PROVIDER_KEYS = {
    "success": int,
    "failure": int,
    "state": str,
    "attempts": int,
    "requests": int,
    "request_successes": int,
    "request_failures": int,
    "retries": int,
    "failovers": int,
    "breaker_opens": int,
    "breaker_blocks": int,
    "throttled": int,
    "rate_limited": int,
    "budget_waits": int,
    "budget_wait_s": float,
    "retry_budget_spent": int,
    "quota_exhausted": int,
    "input_tokens": int,
    "output_tokens": int,
    "failures": dict,
    "p50_latency_ms": int,
    "p95_latency_ms": int,
}


def legacy(snapshot: dict[str, Any]) -> dict[str, Any]:
    """The snapshot's pre-issue-23 keys, each provider's row cut to its three."""
    out = {key: snapshot[key] for key in LEGACY}
    out["providers"] = {name: brief(row) for name, row in snapshot["providers"].items()}
    return out


def brief(row: dict[str, Any]) -> dict[str, Any]:
    return {key: row[key] for key in ("success", "failure", "state")}


def assert_schema(snapshot: dict[str, Any]) -> None:
    # A merge adds approximate_runs when older runs had no histograms.
    assert set(snapshot) - {"approximate_runs"} == set(TOP_LEVEL)
    for key, kind in TOP_LEVEL.items():
        assert type(snapshot[key]) is kind, key
    for name, counts in snapshot["providers"].items():
        assert isinstance(name, str)
        assert set(counts) == set(PROVIDER_KEYS)
        for key, kind in PROVIDER_KEYS.items():
            assert type(counts[key]) is kind, key
        assert counts["state"] in {"CLOSED", "OPEN", "HALF_OPEN"}
        assert counts["attempts"] == counts["success"] + counts["failure"]
        assert set(counts["failures"]) == set(FAILURE_KINDS)
    assert set(snapshot["failures"]) == set(FAILURE_KINDS)
    assert snapshot["histograms"]["scheme"] == BUCKET_SCHEME
    assert json.loads(json.dumps(snapshot)) == snapshot


def busy_telemetry(states: dict[str, str] | None = None) -> Telemetry:
    states = states if states is not None else {}
    telemetry = Telemetry(lambda name: states.get(name, "CLOSED"))
    telemetry.request_finished(ok=True, latency_ms=100.4, tokens=10)
    telemetry.request_finished(ok=True, latency_ms=200.0, tokens=20)
    telemetry.request_finished(ok=False, latency_ms=300.0, tokens=0)
    telemetry.attempt_finished("sambanova", ok=False)
    telemetry.attempt_finished("hf", ok=True)
    telemetry.attempt_finished("hf", ok=True)
    telemetry.count("retries")
    telemetry.count("retries")
    telemetry.count("failovers")
    telemetry.count("rate_limited")
    telemetry.count("circuit_breaker_blocks")
    return telemetry


def test_empty_snapshot_has_the_schema_and_zeros() -> None:
    snapshot = Telemetry().snapshot()
    assert_schema(snapshot)
    assert all(snapshot[key] == 0 for key in TOP_LEVEL if TOP_LEVEL[key] in (int, float))
    assert legacy(snapshot) == {
        "total_requests": 0,
        "success_rate": 0.0,
        "avg_latency_ms": 0,
        "p50_latency_ms": 0,
        "p95_latency_ms": 0,
        "total_tokens": 0,
        "retries": 0,
        "rate_limited": 0,
        "circuit_breaker_blocks": 0,
        "failovers": 0,
        "providers": {},
    }


def test_snapshot_counts_what_happened() -> None:
    snapshot = busy_telemetry().snapshot()
    assert_schema(snapshot)
    assert legacy(snapshot) == {
        "total_requests": 3,
        "success_rate": 66.7,
        "avg_latency_ms": 200,
        "p50_latency_ms": 200,
        "p95_latency_ms": 300,
        "total_tokens": 30,
        "retries": 2,
        "rate_limited": 1,
        "circuit_breaker_blocks": 1,
        "failovers": 1,
        "providers": {
            "sambanova": {"success": 0, "failure": 1, "state": "CLOSED"},
            "hf": {"success": 2, "failure": 0, "state": "CLOSED"},
        },
    }


def test_provider_state_is_read_at_snapshot_time() -> None:
    states = {"sambanova": "CLOSED"}
    telemetry = busy_telemetry(states)
    states["sambanova"] = "OPEN"
    assert telemetry.snapshot()["providers"]["sambanova"]["state"] == "OPEN"


def test_registered_provider_shows_before_any_attempt() -> None:
    telemetry = Telemetry()
    telemetry.register_provider("local")
    assert legacy(telemetry.snapshot())["providers"] == {
        "local": {"success": 0, "failure": 0, "state": "CLOSED"}
    }


def test_disabled_telemetry_records_nothing() -> None:
    telemetry = Telemetry(enabled=False)
    telemetry.request_finished(ok=True, latency_ms=50.0, tokens=5)
    telemetry.attempt_finished("hf", ok=True)
    telemetry.count("retries")
    assert telemetry.snapshot() == Telemetry().snapshot()


def test_reset_forgets_everything() -> None:
    telemetry = busy_telemetry()
    telemetry.reset()
    assert telemetry.snapshot() == Telemetry().snapshot()


# --- percentiles ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pct", "expected"), [(0, 15), (5, 15), (30, 20), (40, 20), (50, 35), (95, 50), (100, 50)]
)
def test_percentile_is_nearest_rank(pct: float, expected: float) -> None:
    assert percentile([15, 20, 35, 40, 50], pct) == expected


def test_percentile_of_nothing_is_zero() -> None:
    assert percentile([], 95) == 0.0


def test_p95_of_twenty_samples_is_the_nineteenth() -> None:
    telemetry = Telemetry()
    for ms in range(20, 0, -1):  # order of arrival does not matter
        telemetry.request_finished(ok=True, latency_ms=float(ms), tokens=0)
    snapshot = telemetry.snapshot()
    assert (snapshot["p50_latency_ms"], snapshot["p95_latency_ms"]) == (10, 19)


# --- merging runs --------------------------------------------------------------------


def run(requests: int, ok: int, avg: int, p50: int, p95: int) -> dict[str, Any]:
    telemetry = Telemetry()
    snapshot = telemetry.snapshot()
    snapshot.update(
        total_requests=requests,
        success_rate=round(100.0 * ok / requests, 1) if requests else 0.0,
        avg_latency_ms=avg,
        p50_latency_ms=p50,
        p95_latency_ms=p95,
        total_tokens=requests * 100,
        retries=1,
        rate_limited=2,
        circuit_breaker_blocks=3,
        failovers=4,
    )
    return snapshot


def test_merge_sums_counters() -> None:
    merged = merge_snapshots([run(10, 10, 100, 90, 200), run(30, 15, 500, 400, 900)])
    assert_schema(merged)
    assert merged["total_requests"] == 40
    assert merged["success_rate"] == 62.5
    assert merged["total_tokens"] == 4000
    assert [merged[k] for k in ("retries", "rate_limited", "circuit_breaker_blocks")] == [
        2,
        4,
        6,
    ]
    assert merged["failovers"] == 8


def test_runs_recorded_before_histograms_enter_at_their_p50_and_p95() -> None:
    """An older line has only p50/p95: half its requests enter at each. The mean still
    merges exactly; percentiles come from those stand-ins (within a bucket), and the
    merge says how many runs it approximated."""
    merged = merge_snapshots([run(10, 10, 100, 90, 200), run(30, 15, 500, 400, 900)])
    assert merged["avg_latency_ms"] == 400  # (10*100 + 30*500) / 40
    # Stand-ins: 5x90, 5x200, 15x400, 15x900: rank 20 is a 400, rank 38 a 900.
    assert same_bucket(merged["p50_latency_ms"], 400)
    assert same_bucket(merged["p95_latency_ms"], 900)
    assert merged["approximate_runs"] == 2
    alone = merge_snapshots([run(30, 15, 500, 400, 900)])
    assert same_bucket(alone["p50_latency_ms"], 400)
    assert same_bucket(alone["p95_latency_ms"], 900)


def test_merge_ignores_latencies_of_empty_runs() -> None:
    merged = merge_snapshots([run(0, 0, 9999, 9999, 9999), run(4, 4, 100, 100, 100)])
    assert merged["avg_latency_ms"] == 100
    assert merged["p95_latency_ms"] == 100


def test_merge_sums_providers_and_keeps_last_state() -> None:
    first = busy_telemetry({"sambanova": "OPEN"}).snapshot()
    second = busy_telemetry({"sambanova": "HALF_OPEN"}).snapshot()
    merged = merge_snapshots([first, json.loads(json.dumps(second))])
    assert legacy(merged)["providers"] == {
        "sambanova": {"success": 0, "failure": 2, "state": "HALF_OPEN"},
        "hf": {"success": 4, "failure": 0, "state": "CLOSED"},
    }


def test_merge_of_nothing_is_an_empty_snapshot() -> None:
    assert merge_snapshots([]) == Telemetry().snapshot()


def test_merge_tolerates_snapshots_missing_keys() -> None:
    merged = merge_snapshots([{"total_requests": 2, "success_rate": 50.0}])
    assert_schema(merged)
    assert (merged["total_requests"], merged["success_rate"]) == (2, 50.0)


# --- histograms: runs merge exactly ------------------------------------------------


def same_bucket(estimate: float, true: float) -> bool:
    """Whether ``estimate`` (a whole number of ms, as reported) lies in the bucket of
    ``true``, give or take its rounding."""
    index = bisect_left(BUCKET_BOUNDS_MS, true)
    low = BUCKET_BOUNDS_MS[index - 1] if index else 0.0
    high = BUCKET_BOUNDS_MS[index] if index < len(BUCKET_BOUNDS_MS) else float("inf")
    return low - 0.5 < estimate <= high + 0.5


def one_run(latencies: list[float], *, ttft: list[float] | None = None) -> dict[str, Any]:
    """A run's snapshot as the metrics log stores it (through JSON)."""
    telemetry = Telemetry()
    telemetry.register_provider("lab")
    for i, ms in enumerate(latencies):
        first = ttft[i] if ttft is not None else None
        telemetry.request_finished(ok=True, latency_ms=ms, tokens=3, provider="lab", ttft_ms=first)
    return dict(json.loads(json.dumps(telemetry.snapshot())))


def nearest_rank(values: list[float], pct: float) -> float:
    return percentile(sorted(values), pct)


def test_the_bucket_bounds_hold_the_genai_boundaries() -> None:
    for seconds in GENAI_DURATION_BOUNDS_S:
        assert seconds * 1000 in BUCKET_BOUNDS_MS
    assert BUCKET_RESOLUTION_PCT == 18.9


def test_eleven_runs_from_23_ms_to_59_s_give_the_true_median_and_p95() -> None:
    """The issue's case: averaging each run's percentiles showed 20410 ms for p50 and
    p95; the true median is 67 ms and the p95 59 s."""
    latencies = [23.0, 31.0, 42.0, 48.0, 55.0, 67.0, 71.0, 90.0, 160.0, 35_000.0, 59_000.0]
    merged = merge_snapshots([one_run([ms]) for ms in latencies])
    assert merged["total_requests"] == 11
    assert nearest_rank(latencies, 50) == 67.0
    assert same_bucket(merged["p50_latency_ms"], 67.0)
    assert abs(merged["p50_latency_ms"] - 67) <= 67 * BUCKET_RESOLUTION_PCT / 100
    assert merged["p95_latency_ms"] == 59_000
    assert merged["avg_latency_ms"] == round(sum(latencies) / 11)
    assert merged["latency_resolution_pct"] == BUCKET_RESOLUTION_PCT
    assert "approximate_runs" not in merged
    lab = merged["providers"]["lab"]
    assert (lab["requests"], lab["request_successes"]) == (11, 11)
    assert same_bucket(lab["p50_latency_ms"], 67.0)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_known_distributions_across_runs_merge_within_a_bucket(seed: int) -> None:
    """Several runs of different sizes and shapes (log-normal bulk, a slow tail): the
    merged p50 and p95 lie in the bucket of the true nearest-rank values over all."""
    rng = random.Random(seed)
    runs: list[list[float]] = []
    for size, mu in [(40, 5.0), (300, 6.5), (7, 9.0), (120, 4.0), (1, 11.0)]:
        runs.append([rng.lognormvariate(mu, 0.8) for _ in range(size)])
    ttfts = [[ms * rng.uniform(0.1, 0.5) for ms in r] for r in runs]
    merged = merge_snapshots(one_run(r, ttft=t) for r, t in zip(runs, ttfts, strict=True))
    everything = [ms for r in runs for ms in r]
    firsts = [ms for t in ttfts for ms in t]
    assert merged["total_requests"] == len(everything)
    for pct in (50, 95):
        true = nearest_rank(everything, pct)
        assert same_bucket(merged[f"p{pct}_latency_ms"], round(true)), (pct, true)
        assert same_bucket(merged[f"p{pct}_ttft_ms"], round(nearest_rank(firsts, pct)))
    assert merged["histograms"]["latency_ms"]["count"] == len(everything)
    assert merged["histograms"]["providers"]["lab"]["ttft_ms"]["count"] == len(firsts)


def test_a_merge_of_merges_is_the_merge_of_all() -> None:
    rng = random.Random(5)
    runs = [one_run([rng.uniform(5, 5000) for _ in range(n)]) for n in (3, 50, 11, 200)]
    once = merge_snapshots(runs)
    twice = merge_snapshots([merge_snapshots(runs[:2]), merge_snapshots(runs[2:])])
    assert once["histograms"] == twice["histograms"]
    assert (once["p50_latency_ms"], once["p95_latency_ms"]) == (
        twice["p50_latency_ms"],
        twice["p95_latency_ms"],
    )


def test_histogram_percentile_stays_within_what_was_recorded() -> None:
    hist = Histogram()
    hist.record(250.0, 4)
    assert hist.percentile(50) == hist.percentile(99) == 250.0
    hist.record(0.1)
    hist.record(10_000_000.0)  # past the last bound: the open bucket
    assert hist.percentile(100) == 10_000_000.0
    assert hist.percentile(1) == 0.1  # the first rank is the smallest value recorded
    assert Histogram().percentile(50) == 0.0


def test_damaged_histograms_are_approximated_not_trusted() -> None:
    snapshot = one_run([10.0, 20.0, 30.0])
    snapshot["histograms"]["latency_ms"]["buckets"] = {"9999": 3}
    merged = merge_snapshots([snapshot])
    assert merged["approximate_runs"] == 1
    assert merged["p50_latency_ms"] == 20


# --- counts that say what they count -----------------------------------------------


def test_failures_are_counted_by_kind() -> None:
    telemetry = Telemetry()
    for error in [
        RateLimited("slow down", status_code=429),
        ServerError("boom", status_code=503),
        RequestTimeout("silent"),
        ConnectionFailed("reset by peer"),
        StreamInterrupted("cut", after_first_token=True),
        MalformedResponse("not json"),
        AuthenticationError("bad key", status_code=401),
    ]:
        telemetry.attempt_finished("lab", ok=False, error=error)

    class QuotaExceeded(RateLimited):
        pass

    telemetry.attempt_finished("lab", ok=False, error=QuotaExceeded("quota", status_code=429))
    snapshot = telemetry.snapshot()
    expected = {"429": 1, "quota": 1, "5xx": 1, "timeout": 1, "reset": 2, "malformed": 1}
    assert snapshot["failures"] == {**expected, "other": 1}
    assert snapshot["providers"]["lab"]["failures"] == snapshot["failures"]
    assert (snapshot["total_attempts"], snapshot["failed_attempts"]) == (8, 8)
    assert failure_kind(None) == "other"


def test_events_are_counted_per_provider() -> None:
    clock = [100.0]
    telemetry = Telemetry(clock=lambda: clock[0])
    trace = telemetry.request_started()
    telemetry.observe(AttemptStarted("a", "m", 1))
    telemetry.attempt_finished("a", ok=False, error=ServerError("x", status_code=500))
    telemetry.observe(BreakerTransition("a", "CLOSED", "OPEN"))
    telemetry.observe(Failover("a", "b", "500"))
    telemetry.observe(AttemptStarted("b", "m", 2))
    telemetry.attempt_finished("b", ok=False, error=RateLimited("x", status_code=429))
    telemetry.count("rate_limited", "b")
    telemetry.observe(RateLimitWait("b", 3.0))
    clock[0] += 2.5  # the wait ends when the next attempt starts
    telemetry.observe(AttemptStarted("b", "m", 3))
    telemetry.count("circuit_breaker_blocks", "a")
    telemetry.observe(Throttled("a", 0.4))
    telemetry.observe(RetryBudgetSpent("a"))
    telemetry.observe(QuotaExhausted("a", 60.0, "monthly quota"))
    telemetry.attempt_finished("b", ok=True)
    telemetry.request_finished(
        ok=True,
        latency_ms=3000.0,
        tokens=15,
        trace=trace,
        provider="b",
        input_tokens=10,
        output_tokens=5,
        ttft_ms=2900.0,
    )
    snapshot = telemetry.snapshot()
    a, b = snapshot["providers"]["a"], snapshot["providers"]["b"]
    assert (a["attempts"], a["failure"], a["requests"], a["failovers"]) == (1, 1, 0, 1)
    assert (a["breaker_opens"], a["breaker_blocks"], a["throttled"]) == (1, 1, 1)
    assert (a["retry_budget_spent"], a["quota_exhausted"]) == (1, 1)
    assert (b["attempts"], b["success"], b["retries"], b["rate_limited"]) == (2, 1, 1, 1)
    assert (b["requests"], b["request_successes"], b["request_failures"]) == (1, 1, 0)
    assert (b["budget_waits"], b["budget_wait_s"]) == (1, 2.5)
    assert (b["input_tokens"], b["output_tokens"]) == (10, 5)
    assert (snapshot["total_requests"], snapshot["successful_requests"]) == (1, 1)
    assert (snapshot["total_attempts"], snapshot["failed_attempts"]) == (3, 2)
    assert snapshot["success_rate"] == 100.0  # of requests, though 2 of 3 attempts failed
    assert (snapshot["input_tokens"], snapshot["output_tokens"]) == (10, 5)
    assert (snapshot["p50_ttft_ms"], snapshot["budget_wait_s"]) == (2900, 2.5)
    merged = merge_snapshots([snapshot, json.loads(json.dumps(snapshot))])
    assert merged["providers"]["b"]["budget_wait_s"] == 5.0
    assert merged["providers"]["a"]["failures"]["5xx"] == 2
    assert (merged["successful_requests"], merged["failed_attempts"]) == (2, 4)
    # /metrics and qwen-dev metrics show the restraint's counts, in all and per provider.
    console = Console(record=True, width=120)
    print_metrics(merged, console)
    table = console.export_text()
    for row in ("throttled (refused locally)", "retry budget spent", "quotas exhausted"):
        assert re.search(rf"{re.escape(row)}\s+2\n", table), row
    assert "a restraint: throttled 2, retry budget spent 2, quota exhausted 2" in table


def test_a_failed_request_belongs_to_the_last_provider_tried() -> None:
    telemetry = Telemetry()
    trace = telemetry.request_started()
    telemetry.observe(AttemptStarted("a", "m", 1))
    telemetry.attempt_finished("a", ok=False, error=ServerError("x", status_code=502))
    telemetry.request_finished(ok=False, latency_ms=12.0, tokens=0, trace=trace)
    row = telemetry.snapshot()["providers"]["a"]
    assert (row["requests"], row["request_failures"]) == (1, 1)
