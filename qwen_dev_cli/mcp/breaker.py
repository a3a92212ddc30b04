"""An HTTP MCP server's circuit breaker, and the bound on a server's messages.

Apart from :mod:`.http` (which imports ``httpx``) so that building a server's object
at start-up imports nothing heavy.
"""

from __future__ import annotations

import time
from typing import Any, Final

#: The longest message a server may send, in bytes (stdio and HTTP alike).
MAX_MESSAGE: Final = 64 * 1024 * 1024
#: Failures in a row that open a server's circuit breaker.
BREAKER_THRESHOLD: Final = 5
#: Seconds an open breaker refuses requests before it lets one through.
BREAKER_COOLDOWN: Final = 30.0


class Breaker:
    """One server's circuit breaker (kept across its reconnections)."""

    def __init__(self) -> None:
        self.failures = 0
        self._opened: float | None = None

    def refusal(self) -> str | None:
        """Why a request must not be tried now, or ``None``."""
        if self._opened is None:
            return None
        left = self._opened + BREAKER_COOLDOWN - time.monotonic()
        if left <= 0:
            return None  # half open: this one tries; a failure opens it again
        return (
            f"not tried: {self.failures} failures in a row; "
            f"the next attempt in {left:.0f} s (circuit breaker)"
        )

    def success(self) -> None:
        self.failures = 0
        self._opened = None

    def failure(self) -> None:
        self.failures += 1
        if self.failures >= BREAKER_THRESHOLD:
            self._opened = time.monotonic()

    def reset(self) -> None:
        self.success()

    def report(self) -> dict[str, Any]:
        """Its state as ``mcp list --json`` and ``/mcp`` show it: ``closed``, ``open``
        (requests refused for ``retry_in_s`` more seconds) or ``half-open`` (the next
        request tries), and the failures in a row."""
        if self._opened is None:
            return {"state": "closed", "failures": self.failures, "retry_in_s": None}
        left = self._opened + BREAKER_COOLDOWN - time.monotonic()
        if left <= 0:
            return {"state": "half-open", "failures": self.failures, "retry_in_s": None}
        return {"state": "open", "failures": self.failures, "retry_in_s": round(left, 1)}


def describe(report: object) -> str:
    """A breaker's :meth:`Breaker.report` in a few words ("" for ``None``: a stdio
    server's row)."""
    if not isinstance(report, dict):
        return ""
    state, failures = report["state"], report["failures"]
    if state == "open":
        return f"open ({failures} failures in a row; tried again in {report['retry_in_s']:.0f} s)"
    if state == "half-open":
        return f"half open ({failures} failures in a row; the next request tries)"
    return f"closed ({failures} failures in a row)" if failures else "closed"
