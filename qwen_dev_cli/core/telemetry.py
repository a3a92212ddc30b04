"""Counters and latencies of logical requests, in the one schema that ``get_metrics()``,
``/metrics``, ``qwen-dev metrics --json`` and ``ask --json`` share.

Only numbers and provider names are recorded: never prompt text, never keys.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

Counter = Literal["retries", "rate_limited", "circuit_breaker_blocks", "failovers"]

# Latencies kept for percentiles: enough for stable p95, bounded memory.
_LATENCY_SAMPLES = 10_000


@dataclass
class _ProviderCounts:
    success: int = 0
    failure: int = 0


class Telemetry:
    """Accumulates what the client did. ``state_of`` reads each provider's breaker state
    at snapshot time, so the snapshot is never stale."""

    def __init__(
        self, state_of: Callable[[str], str] | None = None, *, enabled: bool = True
    ) -> None:
        self._state_of = state_of
        self.enabled = enabled
        self.reset()

    def reset(self) -> None:
        self.total_requests = 0
        self.successes = 0
        self.total_tokens = 0
        self.retries = 0
        self.rate_limited = 0
        self.circuit_breaker_blocks = 0
        self.failovers = 0
        self._latencies: deque[float] = deque(maxlen=_LATENCY_SAMPLES)
        self._latency_sum = 0.0
        self._latency_count = 0
        self._providers: dict[str, _ProviderCounts] = {}

    def register_provider(self, name: str) -> None:
        self._providers.setdefault(name, _ProviderCounts())

    # --- recording ------------------------------------------------------------------

    def request_finished(self, *, ok: bool, latency_ms: float, tokens: int) -> None:
        """One logical request ended (after its retries and failovers)."""
        if not self.enabled:
            return
        self.total_requests += 1
        if ok:
            self.successes += 1
        self.total_tokens += tokens
        self._latencies.append(latency_ms)
        self._latency_sum += latency_ms
        self._latency_count += 1

    def attempt_finished(self, provider: str, *, ok: bool) -> None:
        if not self.enabled:
            return
        counts = self._providers.setdefault(provider, _ProviderCounts())
        if ok:
            counts.success += 1
        else:
            counts.failure += 1

    def count(self, counter: Counter) -> None:
        """Add one to ``retries``, ``rate_limited``, ``circuit_breaker_blocks`` or
        ``failovers``."""
        if self.enabled:
            setattr(self, counter, getattr(self, counter) + 1)

    # --- reading --------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The docs/architecture.md section 5 schema; numbers are numbers."""
        ordered = sorted(self._latencies)
        return {
            "total_requests": self.total_requests,
            "success_rate": round(100.0 * self.successes / self.total_requests, 1)
            if self.total_requests
            else 0.0,
            "avg_latency_ms": round(self._latency_sum / self._latency_count)
            if self._latency_count
            else 0,
            "p50_latency_ms": round(percentile(ordered, 50)),
            "p95_latency_ms": round(percentile(ordered, 95)),
            "total_tokens": self.total_tokens,
            "retries": self.retries,
            "rate_limited": self.rate_limited,
            "circuit_breaker_blocks": self.circuit_breaker_blocks,
            "failovers": self.failovers,
            "providers": {
                name: {
                    "success": counts.success,
                    "failure": counts.failure,
                    "state": self._state_of(name) if self._state_of else "CLOSED",
                }
                for name, counts in self._providers.items()
            },
        }


def percentile(ordered: list[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending list (0 for an empty one)."""
    if not ordered:
        return 0.0
    rank = max(1, -(-len(ordered) * pct // 100))
    return ordered[min(len(ordered), int(rank)) - 1]


def merge_snapshots(snapshots: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Aggregate per-run snapshots (``qwen-dev metrics``). Percentiles cannot be merged
    exactly; the request-weighted mean of each run's percentile is reported."""
    total = Telemetry()
    weights: list[tuple[int, float, float, float]] = []
    states: dict[str, str] = {}
    for snap in snapshots:
        n = int(snap.get("total_requests", 0))
        total.total_requests += n
        total.successes += round(n * float(snap.get("success_rate", 0.0)) / 100.0)
        total.total_tokens += int(snap.get("total_tokens", 0))
        for key in ("retries", "rate_limited", "circuit_breaker_blocks", "failovers"):
            setattr(total, key, getattr(total, key) + int(snap.get(key, 0)))
        weights.append(
            (
                n,
                float(snap.get("avg_latency_ms", 0)),
                float(snap.get("p50_latency_ms", 0)),
                float(snap.get("p95_latency_ms", 0)),
            )
        )
        for name, prov in dict(snap.get("providers", {})).items():
            counts = total._providers.setdefault(name, _ProviderCounts())
            counts.success += int(prov.get("success", 0))
            counts.failure += int(prov.get("failure", 0))
            states[name] = str(prov.get("state", "CLOSED"))
    total._state_of = lambda name: states.get(name, "CLOSED")
    merged = total.snapshot()
    n_all = sum(w[0] for w in weights)
    if n_all:
        merged["avg_latency_ms"] = round(sum(w[0] * w[1] for w in weights) / n_all)
        merged["p50_latency_ms"] = round(sum(w[0] * w[2] for w in weights) / n_all)
        merged["p95_latency_ms"] = round(sum(w[0] * w[3] for w in weights) / n_all)
    return merged
