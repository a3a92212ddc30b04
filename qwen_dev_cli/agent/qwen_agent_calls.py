"""Qwen-Agent's function-call form, which Qwen2-era models served through it write::

    I'll read it.
    ✿FUNCTION✿: read_file
    ✿ARGS✿: {"path": "a.py"}

Qwen-Agent stops generation at ``✿RESULT✿``, where it puts the tool's result; a model
served without that stop word goes on to imagine the result (``✿RESULT✿: ...``) and
an answer built on it (``✿RETURN✿: ...``). So, as in Qwen-Agent, what comes before the
first ``✿FUNCTION✿`` is the reply's prose, each ``✿FUNCTION✿`` / ``✿ARGS✿`` pair a
call, and everything from ``✿RESULT✿`` or ``✿RETURN✿`` on is dropped. The markers are
never prose, so they count wherever they stand outside code.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from .json_repair import json_extent
from .xml_calls import MAX_CALL_CHARS, clipped

FN_NAME: Final = "✿FUNCTION✿"
FN_ARGS: Final = "✿ARGS✿"
FN_RESULT: Final = "✿RESULT✿"
FN_EXIT: Final = "✿RETURN✿"
_SEPARATORS = ":： \t"


@dataclass(frozen=True)
class MarkedCall:
    """One ``✿FUNCTION✿`` call: its text, the tool's name and its raw arguments."""

    raw: str
    name: str
    arguments: str
    #: Its length when that is more than a call may hold (nothing else was read).
    oversized: int = 0


def marked_calls(text: str, start: int) -> Iterator[MarkedCall]:
    """The calls of ``text`` from its first ``✿FUNCTION✿``, at ``start``, on, one at a
    time (a hostile answer may hold millions: the caller stops reading them)."""
    end = len(text)
    for marker in (FN_RESULT, FN_EXIT):
        found = text.find(marker, start)
        if found != -1:
            end = min(end, found)
    position = start
    while position != -1 and position + len(FN_NAME) <= end:
        after = text.find(FN_NAME, position + len(FN_NAME), end)
        stop = end if after == -1 else after
        if stop - position > MAX_CALL_CHARS:
            line = text.find("\n", position, min(stop, position + 1000))
            head = text[position + len(FN_NAME) : position + 1000 if line == -1 else line]
            name = head.strip().lstrip(_SEPARATORS).strip()
            raw = clipped(text, position, stop)
            yield MarkedCall(raw, name, "", oversized=stop - position)
            position = after
            continue
        raw = text[position:stop]
        head, has_args, arguments = raw[len(FN_NAME) :].partition(FN_ARGS)
        name = head.strip().lstrip(_SEPARATORS).split("\n", 1)[0].strip()
        yield MarkedCall(raw, name, _arguments(arguments) if has_args else "")
        position = after


def _arguments(text: str) -> str:
    """The arguments' JSON, without what a model may add after it (a comment, a fence)."""
    text = text.strip().lstrip(_SEPARATORS).strip()
    if text.startswith("```"):
        body = text.split("\n", 1)[1] if "\n" in text else ""
        text = body.rsplit("```", 1)[0].strip()
    if text.startswith(("{", "[")):
        extent = json_extent(text)
        if extent is not None:
            return text[:extent]
    return text
