"""Counts in words (`1 tool call`, `2 tool calls`): a leaf every layer may use (it imports
nothing of ours)."""

from __future__ import annotations


def plural(count: int, word: str, many: str | None = None) -> str:
    """``1 tool call``, ``2 tool calls``, ``1,204 messages``."""
    noun = word if count == 1 else (many or word + "s")
    return f"{count:,} {noun}"
