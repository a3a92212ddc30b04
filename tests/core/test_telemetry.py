"""Telemetry: the schema of docs/architecture.md section 5, nearest-rank percentiles,
the off switch, and aggregation over runs."""

from __future__ import annotations

import json
from typing import Any

import pytest

from qwen_dev_cli.core.telemetry import Telemetry, merge_snapshots, percentile

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
}


def assert_schema(snapshot: dict[str, Any]) -> None:
    assert set(snapshot) == set(TOP_LEVEL)
    for key, kind in TOP_LEVEL.items():
        assert type(snapshot[key]) is kind, key
    for name, counts in snapshot["providers"].items():
        assert isinstance(name, str)
        assert set(counts) == {"success", "failure", "state"}
        assert type(counts["success"]) is int
        assert type(counts["failure"]) is int
        assert counts["state"] in {"CLOSED", "OPEN", "HALF_OPEN"}
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
    assert snapshot == {
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
    assert snapshot == {
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
    assert telemetry.snapshot()["providers"] == {
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


def test_merge_weights_latencies_by_requests() -> None:
    merged = merge_snapshots([run(10, 10, 100, 90, 200), run(30, 15, 500, 400, 900)])
    assert merged["avg_latency_ms"] == 400  # (10*100 + 30*500) / 40
    assert merged["p50_latency_ms"] == round((10 * 90 + 30 * 400) / 40)
    assert merged["p95_latency_ms"] == round((10 * 200 + 30 * 900) / 40)


def test_merge_ignores_latencies_of_empty_runs() -> None:
    merged = merge_snapshots([run(0, 0, 9999, 9999, 9999), run(4, 4, 100, 100, 100)])
    assert merged["avg_latency_ms"] == 100
    assert merged["p95_latency_ms"] == 100


def test_merge_sums_providers_and_keeps_last_state() -> None:
    first = busy_telemetry({"sambanova": "OPEN"}).snapshot()
    second = busy_telemetry({"sambanova": "HALF_OPEN"}).snapshot()
    merged = merge_snapshots([first, json.loads(json.dumps(second))])
    assert merged["providers"] == {
        "sambanova": {"success": 0, "failure": 2, "state": "HALF_OPEN"},
        "hf": {"success": 4, "failure": 0, "state": "CLOSED"},
    }


def test_merge_of_nothing_is_an_empty_snapshot() -> None:
    assert merge_snapshots([]) == Telemetry().snapshot()


def test_merge_tolerates_snapshots_missing_keys() -> None:
    merged = merge_snapshots([{"total_requests": 2, "success_rate": 50.0}])
    assert_schema(merged)
    assert (merged["total_requests"], merged["success_rate"]) == (2, 50.0)
