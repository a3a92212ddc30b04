"""grep's (and glob's) regular expressions, on RE2: matching time linear in the text, whatever the
pattern.

Python's ``re`` backtracks, holding the GIL: ``(a|a)*$`` on a 28-character line took
minutes and Ctrl-C could not stop it, and no check of the pattern's shape catches
every such case. RE2 (the ``google-re2`` wheel) never backtracks. What it cannot
express, backreferences and lookaround, is refused with a message telling the model
what to write instead.
"""

from __future__ import annotations

from typing import Protocol

import re2  # type: ignore[import-untyped]  # google-re2 ships no type information

from .base import ToolError


class Matcher(Protocol):
    """A compiled pattern: what grep needs of it."""

    @property
    def pattern(self) -> str: ...

    def search(self, text: str) -> object | None: ...

    def match(self, text: str) -> object | None: ...


_UNSUPPORTED = {
    "(?=": "lookahead ((?=...))",
    "(?!": "negative lookahead ((?!...))",
    "(?<=": "lookbehind ((?<=...))",
    "(?<!": "negative lookbehind ((?<!...))",
}


def compile_pattern(pattern: str, *, ignore_case: bool = False) -> Matcher:
    """``pattern`` compiled by RE2, or a :class:`ToolError` saying why not."""
    options = re2.Options()
    options.log_errors = False  # RE2 would print every bad pattern on stderr
    options.case_sensitive = not ignore_case
    try:
        compiled: Matcher = re2.compile(pattern, options)
    except re2.error as exc:
        raise ToolError(_explain(pattern, exc)) from exc
    return compiled


def _explain(pattern: str, exc: Exception) -> str:
    detail = exc.args[0] if exc.args else exc
    if isinstance(detail, bytes):
        detail = detail.decode("utf-8", errors="replace")
    text = str(detail)
    if "invalid escape sequence: \\" in text and text[-1:].isdigit():
        feature = "backreferences (\\1)"
    else:
        feature = next((name for token, name in _UNSUPPORTED.items() if token in text), "")
    if feature:
        return (
            f"grep: {pattern!r} uses {feature}, which grep's regex engine (RE2, linear "
            "time) does not support; search for a simpler pattern and read the matches"
        )
    return f"grep: invalid regular expression {pattern!r}: {text}"
