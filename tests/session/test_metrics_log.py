"""The metrics log: each run's snapshot a line, histograms included; older lines (no
histograms) still read and merged; damaged lines skipped."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from qwen_dev_cli.core.telemetry import Telemetry
from qwen_dev_cli.session.metrics_log import MetricsLog

if TYPE_CHECKING:
    from pathlib import Path

#: A line as issue 22's qwen-dev wrote it: no histograms, no labelled counts.
OLD_LINE = {
    "ts": 1.0,
    "total_requests": 4,
    "success_rate": 75.0,
    "avg_latency_ms": 100,
    "p50_latency_ms": 80,
    "p95_latency_ms": 300,
    "total_tokens": 40,
    "retries": 1,
    "rate_limited": 0,
    "circuit_breaker_blocks": 0,
    "failovers": 0,
    "providers": {"lab": {"success": 3, "failure": 2, "state": "CLOSED"}},
}


def test_runs_recorded_old_and_new_merge(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text(json.dumps(OLD_LINE) + "\n{broken\n", encoding="utf-8")
    log = MetricsLog(path)
    for latencies in ([20.0, 30.0], [5000.0]):
        telemetry = Telemetry()
        for ms in latencies:
            telemetry.request_finished(ok=True, latency_ms=ms, tokens=1, provider="lab")
            telemetry.attempt_finished("lab", ok=True)
        log.append(telemetry.snapshot())
    log.append(Telemetry().snapshot())  # no request: no line
    assert len(path.read_text(encoding="utf-8").splitlines()) == 4
    merged = log.aggregate()
    assert merged["runs"] == 3
    assert merged["total_requests"] == 7
    assert merged["successful_requests"] == 6  # 3 of the old run's 4 (75 %), then 3
    assert merged["approximate_runs"] == 1
    assert merged["avg_latency_ms"] == round((4 * 100 + 20 + 30 + 5000) / 7)
    assert merged["p95_latency_ms"] == 5000
    lab = merged["providers"]["lab"]
    assert (lab["success"], lab["failure"], lab["attempts"]) == (6, 2, 8)
    assert (lab["requests"], lab["request_successes"]) == (3, 3)  # the old line had none
    assert merged["histograms"]["latency_ms"]["count"] == 7
