"""Lenient JSON for model output: strict first, then the common damage repaired.

Models writing JSON by hand (tool calls in text, and sometimes native ``arguments``)
make the same few mistakes: trailing commas, single quotes, Python literals
(``True``/``False``/``None``), bare keys, raw newlines or stray quotes inside strings,
regex backslashes that are not JSON escapes, and output cut off before the closing
braces. :func:`loads_lenient` parses strict JSON as it is; otherwise it rewrites the
text once, character by character, and parses the result. What still fails raises
:class:`RepairError` with the reason the model needs in order to try again.
:func:`loads_values` also takes several values written one after another, and
:func:`json_extent` finds where a value ends in surrounding text.
"""

from __future__ import annotations

import json
import re
from typing import Any

_CLOSERS = {"{": "}", "[": "]"}
_ESCAPES = set('"\\/bfnrtu')
_PYTHON = {"True": "true", "False": "false", "None": "null"}
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class RepairError(ValueError):
    """JSON that could not be parsed even after repair; ``str()`` says why."""


def loads_lenient(text: str) -> tuple[Any, tuple[str, ...]]:
    """The value of ``text`` and the repairs it needed (empty when it was valid)."""
    try:
        return json.loads(text), ()
    except json.JSONDecodeError as exc:
        strict_error = exc
    except RecursionError as exc:
        raise RepairError("JSON nested too deeply") from exc
    repaired, notes = repair(text)
    if "unterminated string" in notes:
        # Cut off mid-string (the output limit, usually): closing it would, say, write
        # half a file. The model must send the call again.
        raise RepairError("cut off inside a string (the answer was probably too long)")
    try:
        return json.loads(repaired), notes
    except (json.JSONDecodeError, RecursionError):
        pass
    where = f"line {strict_error.lineno} column {strict_error.colno}"
    raise RepairError(f"invalid JSON ({strict_error.msg} at {where})") from strict_error


def loads_values(raw: str) -> tuple[Any, tuple[str, ...]]:
    """One JSON value, or several written one after the other (as a list)."""
    try:
        return loads_lenient(raw)
    except RepairError:
        parts = _split_values(raw)
        if len(parts) < 2:
            raise
    values: list[Any] = []
    repairs: list[str] = []
    for part in parts:
        value, notes = loads_lenient(part)
        values.append(value)
        repairs.extend(notes)
    return values, tuple(dict.fromkeys(repairs))


def _split_values(raw: str) -> list[str]:
    parts: list[str] = []
    rest = raw.strip()
    while rest:
        if not rest.startswith(("{", "[")):
            return []  # not a run of JSON values
        extent = json_extent(rest)
        if extent is None:  # the last one is cut off; repair may still close it
            parts.append(rest)
            break
        parts.append(rest[:extent])
        rest = rest[extent:].strip()
    return parts


def json_extent(
    text: str, start: int = 0, stop: int | None = None, *, halt: str = ""
) -> int | None:
    """The length of the complete JSON value at ``text[start:stop]``'s start (None if cut
    off). A character of ``halt`` met outside a string cuts it off there: JSON has no
    such character, and a scan that stops at it costs no more than the text up to it."""
    end = len(text) if stop is None else stop
    depth = 0
    quote: str | None = None
    i = start
    while i < end:
        char = text[i]
        if quote is not None:
            if char == "\\":
                i += 1
            elif char == quote:
                quote = None
        elif char in "\"'":
            quote = char
        elif char in "{[":
            depth += 1
        elif char in "}]":
            depth -= 1
            if depth == 0:
                return i + 1 - start
        elif char in halt:
            return None
        i += 1
    return None


def repair(text: str) -> tuple[str, tuple[str, ...]]:
    """``text`` rewritten towards valid JSON, and what was changed."""
    fixer = _Fixer(text)
    fixer.run()
    return "".join(fixer.out), tuple(dict.fromkeys(fixer.notes))


class _Fixer:
    def __init__(self, text: str) -> None:
        self.text = text
        self.i = 0
        self.out: list[str] = []
        self.stack: list[str] = []
        self.notes: list[str] = []

    def run(self) -> None:
        while self.i < len(self.text):
            char = self.text[self.i]
            if char in "\"'":
                self.string(char)
            elif char == ",":
                self.comma()
            elif char in _CLOSERS:
                self.stack.append(char)
                self.emit(char)
            elif char in "}]":
                self.closer(char)
            elif (word := _WORD.match(self.text, self.i)) is not None:
                self.word(word.group())
            else:
                self.emit(char)
        self.finish()

    def emit(self, piece: str, advance: int = 1) -> None:
        self.out.append(piece)
        self.i += advance

    def next_significant(self, start: int) -> str:
        rest = self.text[start:].lstrip()
        return rest[:1]

    def comma(self) -> None:
        if self.next_significant(self.i + 1) in ("}", "]", ""):
            self.notes.append("trailing comma")
            self.i += 1
        else:
            self.emit(",")

    def closer(self, char: str) -> None:
        if not self.stack:
            self.notes.append("unbalanced closing bracket")
            self.i += 1
            return
        # A closer for an outer bracket first closes the inner ones the model forgot.
        while self.stack and _CLOSERS[self.stack[-1]] != char:
            if char == "}" and "{" not in self.stack:
                break
            if char == "]" and "[" not in self.stack:
                break
            self.out.append(_CLOSERS[self.stack.pop()])
            self.notes.append("missing closing bracket")
        if self.stack and _CLOSERS[self.stack[-1]] == char:
            self.stack.pop()
            self.emit(char)
        else:
            self.notes.append("unbalanced closing bracket")
            self.i += 1

    def word(self, word: str) -> None:
        if word in _PYTHON:
            self.notes.append("Python literal")
            self.emit(_PYTHON[word], len(word))
        elif word not in ("true", "false", "null") and self.next_significant(
            self.i + len(word)
        ).startswith(":"):
            self.notes.append("unquoted key")
            self.emit(f'"{word}"', len(word))
        else:
            self.emit(word, len(word))

    def string(self, quote: str) -> None:
        if quote == "'":
            self.notes.append("single quotes")
        self.emit('"')
        while self.i < len(self.text):
            char = self.text[self.i]
            if char == "\\":
                self.escape(quote)
            elif char == quote and self.closes_string(self.i + 1):
                self.emit('"')
                return
            elif char == '"':
                if quote == '"':
                    self.notes.append("unescaped quote in a string")
                self.emit('\\"')
            elif char in "\n\r\t" or ord(char) < 0x20:
                self.notes.append("unescaped newline in a string")
                self.emit({"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(char, f"\\u{ord(char):04x}"))
            else:
                self.emit(char)
        self.notes.append("unterminated string")
        self.out.append('"')

    def escape(self, quote: str) -> None:
        following = self.text[self.i + 1 : self.i + 2]
        if following == "'" and quote == "'":
            self.emit("'", 2)
        elif following == "u" and re.fullmatch(
            r"[0-9a-fA-F]{4}", self.text[self.i + 2 : self.i + 6]
        ):
            self.emit(self.text[self.i : self.i + 6], 6)
        elif following in _ESCAPES - {"u"}:
            self.emit("\\" + following, 2)
        else:  # "\d" in a regex, or a lone backslash: keep it as a literal backslash
            self.notes.append("invalid escape")
            self.emit("\\\\")

    def closes_string(self, after: int) -> bool:
        """Whether a quote at ``after - 1`` ends the string, judging by what follows:
        a model's stray inner quote is followed by more text, a real end by , : } ]."""
        return self.next_significant(after) in (",", ":", "}", "]", "")

    def finish(self) -> None:
        while self.out and self.out[-1].strip() == "":
            self.out.pop()
        if self.out and self.out[-1] == ",":
            self.notes.append("trailing comma")
            self.out.pop()
        if self.out and self.out[-1] == ":":
            self.out.append("null")
        if self.stack:
            self.notes.append("missing closing bracket")
        while self.stack:
            self.out.append(_CLOSERS[self.stack.pop()])
