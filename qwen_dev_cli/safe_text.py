"""Text that the model (or a file it read, or a server) controls, made safe to put on a
terminal. A leaf: it imports nothing of ours, so every layer may use it (the client's
errors carry server text; the UI prints model text).

Escape sequences can recolour, hide or overwrite what the user sees: ``ls \\x1b[8m; rm
-rf src`` shows as ``ls`` in most terminals, so an approval dialog must never print it
raw. Control characters other than newline and tab, C1 controls and the Unicode
direction overrides become visible escapes instead."""

from __future__ import annotations

import re

_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """``text`` with every character that could drive the terminal shown as an escape."""
    return _UNSAFE.sub(_visible, text)
