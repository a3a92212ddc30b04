"""The symbols the terminal UI draws with, in Unicode or in plain ASCII.

A terminal that was told it speaks ASCII (``LANG=C``, ``LC_ALL=POSIX``, a non-UTF-8
charset, or an output stream that is not UTF-8) shows ``●`` and ``│`` as garbage. Python
does not help here: under the C locale it switches its own streams to UTF-8 (PEP 538
and 540), so ``sys.stdout.encoding`` says ``utf-8`` while the terminal does not. So the
choice looks at the locale the user declared as well as at the stream's encoding, and
every piece of the UI takes its symbols from :func:`symbols_for` its console.

Also here: :func:`plural`, so counts read right everywhere (``1 tool call``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO, cast

if TYPE_CHECKING:
    from rich.console import Console


@dataclass(frozen=True)
class Symbols:
    """One character set for the UI (each field names what the symbol means)."""

    ok: str
    failed: str
    warning: str
    tool: str
    edit: str
    compacted: str
    again: str
    stopped: str
    prompt: str
    dot: str
    bar: str
    ellipsis: str
    arrow: str
    rule: str
    closed: str
    open: str
    half_open: str
    current: str


UNICODE = Symbols(
    ok="✓",
    failed="✗",
    warning="⚠",
    tool="⚙",
    edit="✎",
    compacted="⇣",
    again="↻",
    stopped="⏹",
    prompt="›",
    dot="·",
    bar="│",
    ellipsis="…",
    arrow="→",
    rule="─",
    closed="●",
    open="○",
    half_open="◐",
    current="●",
)

ASCII = Symbols(
    ok="+",
    failed="x",
    warning="!",
    tool="*",
    edit="~",
    compacted="v",
    again="~",
    stopped="#",
    prompt=">",
    dot="-",
    bar="|",
    ellipsis="...",
    arrow="->",
    rule="-",
    closed="*",
    open="o",
    half_open="~",
    current="*",
)

#: The values Python's C-locale coercion (PEP 538) puts in ``LC_CTYPE``.
_COERCED = frozenset({"C.UTF-8", "C.utf8", "UTF-8"})
_C_LOCALES = frozenset({"C", "POSIX"})


def locale_is_unicode(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the locale the user declared (``LC_ALL``, else ``LC_CTYPE``, else
    ``LANG``) lets the terminal show UTF-8. Nothing declared counts as yes (the usual
    container default, on terminals that do show UTF-8)."""
    env = os.environ if environ is None else environ
    lang = env.get("LANG") or ""
    declared = env.get("LC_ALL") or ""
    if not declared:
        ctype = env.get("LC_CTYPE") or ""
        # Python coerced a C locale into LC_CTYPE: what the user said is still LANG=C.
        coerced = ctype in _COERCED and lang in _C_LOCALES
        declared = lang if coerced else (ctype or lang)
    if not declared:
        return True
    if declared in _C_LOCALES:
        return False
    _, dot, charset = declared.partition(".")
    charset = charset.partition("@")[0]
    return not dot or _is_utf(charset)


def _is_utf(encoding: str | None) -> bool:
    return (encoding or "").lower().replace("-", "").replace("_", "").startswith("utf")


def encoding_is_unicode(encoding: str | None) -> bool:
    """Whether text in ``encoding`` can hold the Unicode symbols."""
    return _is_utf(encoding)


def symbols_for(console: Console, environ: Mapping[str, str] | None = None) -> Symbols:
    """The symbols ``console`` can show: ASCII when its encoding is not UTF-8, or when it
    is a terminal whose locale says ASCII."""
    if not encoding_is_unicode(console.encoding):
        return ASCII
    if console.is_terminal and not locale_is_unicode(environ):
        return ASCII
    return UNICODE


class _DeclaredEncoding:
    """A text stream that writes through to another but reports another encoding: how a
    rich ``Console`` learns that the terminal is ASCII when Python made stdout UTF-8."""

    def __init__(self, stream: TextIO, encoding: str) -> None:
        self._stream = stream
        self.encoding = encoding

    def write(self, text: str) -> int:
        return self._stream.write(text)

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        return self._stream.isatty()

    def fileno(self) -> int:
        return self._stream.fileno()


def terminal_stream(stream: TextIO, environ: Mapping[str, str] | None = None) -> TextIO:
    """``stream``, or a view of it that says ``ascii`` when the locale of the terminal
    behind it does: rich then draws its tables and rules in ASCII too."""
    if stream.isatty() and not locale_is_unicode(environ):
        # All a Console uses of its file: write, flush, isatty, fileno, encoding.
        return cast("TextIO", _DeclaredEncoding(stream, "ascii"))
    return stream
