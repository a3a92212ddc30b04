"""The telemetry snapshot (docs/architecture.md section 5) as rich tables: ``/metrics`` and
``qwen-dev metrics`` show the same thing. Every count says whether it counts requests
(logical calls, their retries and failovers included) or attempts (tries on one
provider), and a percentile read from merged histograms says how close it is."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from .theme import breaker_style, make_console

if TYPE_CHECKING:
    from rich.console import Console, RenderableType


def _ms(snapshot: dict[str, Any], key: str) -> str:
    """A latency, marked as approximate when it was read from merged buckets."""
    value = f"{snapshot.get(key, 0)} ms"
    resolution = float(snapshot.get("latency_resolution_pct", 0.0) or 0.0)
    return f"≈ {value}" if resolution else value


def _failures(failures: object) -> str:
    """``5xx 2, 429 1`` (the kinds that happened), or ``-``."""
    if not isinstance(failures, dict):
        return "-"
    parts = [f"{kind} {n}" for kind, n in failures.items() if n]
    return ", ".join(parts) or "-"


def metrics_renderable(snapshot: dict[str, Any]) -> RenderableType:
    totals = Table(
        title="Requests (logical calls) and attempts (tries on one provider)",
        show_header=False,
        box=None,
        pad_edge=False,
    )
    totals.add_column("metric")
    totals.add_column("value", justify="right")
    requests = int(snapshot.get("total_requests", 0))
    succeeded = int(
        snapshot.get(
            "successful_requests",
            round(requests * float(snapshot.get("success_rate", 0.0)) / 100.0),
        )
    )
    attempts = int(snapshot.get("total_attempts", 0))
    resolution = float(snapshot.get("latency_resolution_pct", 0.0) or 0.0)
    rows = [
        ("requests", f"{requests}"),
        ("success rate (of requests)", f"{snapshot.get('success_rate', 0.0):.1f} %"),
        ("requests failed", f"{requests - succeeded}"),
        ("attempts", f"{attempts}"),
        ("attempts failed", f"{snapshot.get('failed_attempts', 0)}"),
        ("attempt failures by kind", _failures(snapshot.get("failures"))),
        ("latency avg", f"{snapshot.get('avg_latency_ms', 0)} ms"),
        ("latency p50", _ms(snapshot, "p50_latency_ms")),
        ("latency p95", _ms(snapshot, "p95_latency_ms")),
        ("first token p50", _ms(snapshot, "p50_ttft_ms")),
        ("first token p95", _ms(snapshot, "p95_ttft_ms")),
        (
            "tokens (in / out)",
            f"{snapshot.get('total_tokens', 0)} "
            f"({snapshot.get('input_tokens', 0)} / {snapshot.get('output_tokens', 0)})",
        ),
        ("retries (rounds)", f"{snapshot.get('retries', 0)}"),
        ("failovers", f"{snapshot.get('failovers', 0)}"),
        ("rate-limited waits", f"{snapshot.get('rate_limited', 0)}"),
        (
            "budget waits",
            f"{snapshot.get('budget_waits', 0)} "
            f"({float(snapshot.get('budget_wait_s', 0.0)):.1f} s)",
        ),
        ("throttled (refused locally)", f"{snapshot.get('throttled', 0)}"),
        ("retry budget spent", f"{snapshot.get('retry_budget_spent', 0)}"),
        ("quotas exhausted", f"{snapshot.get('quota_exhausted', 0)}"),
        ("breaker opens", f"{snapshot.get('breaker_opens', 0)}"),
        ("breaker blocks", f"{snapshot.get('circuit_breaker_blocks', 0)}"),
    ]
    if "runs" in snapshot:
        rows.insert(0, ("runs", f"{snapshot['runs']}"))
    for name, value in rows:
        totals.add_row(Text(name, "qd.muted"), value)
    notes = []
    if resolution:
        notes.append(
            f"≈: read from latency histograms merged over runs, within {resolution:g} % "
            "(one bucket)"
        )
    approximate = int(snapshot.get("approximate_runs", 0) or 0)
    if approximate:
        notes.append(f"{approximate} older run(s) without histograms entered at their own p50/p95")
    providers = Table(
        title="Providers: attempts (ok, failed), requests ended there (ok/failed)",
        box=box.SIMPLE_HEAD,
    )
    providers.add_column("provider", min_width=8)
    for header in ("ok", "failed"):
        providers.add_column(header, justify="right", min_width=len(header))
    providers.add_column("state", min_width=9)
    for header in ("requests", "retries", "failovers", "p50 ms"):
        providers.add_column(header, justify="right", min_width=len(header))
    failures: list[str] = []
    for name, counts in dict(snapshot.get("providers", {})).items():
        state = str(counts.get("state", "CLOSED"))
        providers.add_row(
            name,
            str(counts.get("success", 0)),
            str(counts.get("failure", 0)),
            Text(state, breaker_style(state)),
            f"{counts.get('request_successes', 0)}/{counts.get('request_failures', 0)}",
            str(counts.get("retries", 0)),
            str(counts.get("failovers", 0)),
            f"{counts.get('p50_latency_ms', 0)}",
        )
        if _failures(counts.get("failures")) != "-":
            failures.append(f"{name} attempt failures: {_failures(counts.get('failures'))}")
        restraint = _failures(
            {
                "throttled": counts.get("throttled", 0),
                "retry budget spent": counts.get("retry_budget_spent", 0),
                "quota exhausted": counts.get("quota_exhausted", 0),
            }
        )
        if restraint != "-":
            failures.append(f"{name} restraint: {restraint}")
    parts: list[RenderableType] = [totals, providers]
    parts.extend(Text(line) for line in failures)
    parts.extend(Text(note, "qd.muted") for note in notes)
    return Group(*parts)


def print_metrics(snapshot: dict[str, Any], console: Console | None = None) -> None:
    (console or make_console()).print(metrics_renderable(snapshot))
