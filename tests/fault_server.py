"""The fault server moved to the top-level :mod:`faultserver` package.

This module only re-exports it, for test files that still import ``tests.fault_server``;
import :mod:`faultserver` in new code. ``python -m tests.fault_server`` still serves.
"""

from __future__ import annotations

from faultserver import (
    DEFAULT_TEXT,
    KINDS,
    ChaosMix,
    FaultServer,
    FaultServerProcess,
    Outcome,
    RecordedRequest,
    count_completion_tokens,
    count_prompt_tokens,
)
from faultserver.cli import main

__all__ = [
    "DEFAULT_TEXT",
    "KINDS",
    "ChaosMix",
    "FaultServer",
    "FaultServerProcess",
    "Outcome",
    "RecordedRequest",
    "count_completion_tokens",
    "count_prompt_tokens",
]

if __name__ == "__main__":
    raise SystemExit(main())
