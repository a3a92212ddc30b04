"""Each run's telemetry snapshot, appended to ``QWEN_DEV_HOME/metrics.jsonl``, so that
``qwen-dev metrics`` can aggregate across runs. Numbers only: no prompt, no key."""

from __future__ import annotations

import json
import logging
import os
import time
from typing import TYPE_CHECKING, Any

from ..core.telemetry import merge_snapshots

if TYPE_CHECKING:
    from pathlib import Path


log = logging.getLogger(__name__)


class MetricsLog:
    """The metrics file of one ``QWEN_DEV_HOME``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, snapshot: dict[str, Any]) -> None:
        """Record one run; runs that made no request are not worth a line."""
        if not snapshot.get("total_requests"):
            return
        line = json.dumps({"ts": time.time(), **snapshot}) + "\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            with os.fdopen(fd, "a", encoding="utf-8") as handle:
                handle.write(line)
        except OSError as exc:
            # A run's metrics are not worth an error after its answer was given.
            log.info("cannot record metrics in %s: %s", self.path, exc)

    def snapshots(self) -> list[dict[str, Any]]:
        """Every recorded run; damaged lines (a run killed mid-write) are skipped."""
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return []
        runs = []
        for line in text.splitlines():
            try:
                run = json.loads(line)
            except ValueError:
                continue
            if isinstance(run, dict):
                runs.append(run)
        return runs

    def aggregate(self) -> dict[str, Any]:
        """All runs merged into one snapshot of the usual schema, plus ``runs``."""
        runs = self.snapshots()
        merged = merge_snapshots(runs)
        merged["runs"] = len(runs)
        return merged
