"""The telemetry snapshot (docs/architecture.md section 5) as rich tables: ``/metrics`` and
``qwen-dev metrics`` show the same thing."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from .theme import breaker_style, make_console

if TYPE_CHECKING:
    from rich.console import Console, RenderableType


def metrics_renderable(snapshot: dict[str, Any]) -> RenderableType:
    totals = Table(title="Requests", show_header=False, box=None, pad_edge=False)
    totals.add_column("metric")
    totals.add_column("value", justify="right")
    rows = [
        ("requests", f"{snapshot.get('total_requests', 0)}"),
        ("success rate", f"{snapshot.get('success_rate', 0.0):.1f} %"),
        ("latency avg", f"{snapshot.get('avg_latency_ms', 0)} ms"),
        ("latency p50", f"{snapshot.get('p50_latency_ms', 0)} ms"),
        ("latency p95", f"{snapshot.get('p95_latency_ms', 0)} ms"),
        ("tokens", f"{snapshot.get('total_tokens', 0)}"),
        ("retries", f"{snapshot.get('retries', 0)}"),
        ("rate-limited waits", f"{snapshot.get('rate_limited', 0)}"),
        ("breaker blocks", f"{snapshot.get('circuit_breaker_blocks', 0)}"),
        ("failovers", f"{snapshot.get('failovers', 0)}"),
    ]
    if "runs" in snapshot:
        rows.insert(0, ("runs", f"{snapshot['runs']}"))
    for name, value in rows:
        totals.add_row(Text(name, "qd.muted"), value)
    providers = Table(title="Providers")
    providers.add_column("provider")
    providers.add_column("success", justify="right")
    providers.add_column("failure", justify="right")
    providers.add_column("state")
    for name, counts in dict(snapshot.get("providers", {})).items():
        state = str(counts.get("state", "CLOSED"))
        providers.add_row(
            name,
            str(counts.get("success", 0)),
            str(counts.get("failure", 0)),
            Text(state, breaker_style(state)),
        )
    return Group(totals, providers)


def print_metrics(snapshot: dict[str, Any], console: Console | None = None) -> None:
    (console or make_console()).print(metrics_renderable(snapshot))
