"""Where the code is in a model's answer, and searches that stay linear on any answer.

Text in code fences, indented code blocks and inline code is an example, never a call:
the parser asks :class:`Spans` whether a tag stands in code. Code is found in time
proportional to the answer (possessive regular expressions, one pass over the lines,
backtick runs paired by length rather than by a backreference), and a search asked
again and again from
growing positions (:class:`NextMatch`) reads the text once: a hostile answer of
megabytes costs milliseconds, not minutes.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable

# Possessive quantifiers: a long run of backticks, or a long line after one, must not
# be tried again at every shorter length (quadratic time on a hostile answer).
FENCE = re.compile(
    r"^(?P<indent>[ \t]{0,3})(?P<marker>`{3,}+|~{3,}+)[ \t]*+(?P<lang>[\w.+-]*+)[^\n]*+\n"
    r"(?P<body>.*?)(?:^[ \t]{0,3}(?P=marker)[ \t]*$|\Z)",
    re.MULTILINE | re.DOTALL,
)
_BACKTICKS = re.compile(r"`+")
_INDENT = re.compile(r" {0,3}\t| {4}")
#: What ``str.strip()`` keeps (``\s`` is ``str.isspace``): a line without it is blank.
_NOT_BLANK = re.compile(r"\S")
_FENCE_INFO = re.compile(r"[\w-]*")


def code_spans(text: str) -> tuple[list[re.Match[str]], Spans]:
    """The code fences of ``text``, and every stretch of code (fences, indented blocks
    and inline)."""
    fences = list(FENCE.finditer(text))
    spans = [fence.span() for fence in fences]
    # Each later kind is looked for outside the stretches found before, without a
    # blanked copy of the text (a copy of a hostile answer of 64 MiB is 64 MB more).
    spans.extend(indented_code(text, Spans(spans)))
    spans.extend(inline_code(text, _merged(spans)))
    return fences, Spans(spans)


def _merged(spans: Iterable[tuple[int, int]]) -> Spans:
    """``spans`` with those that overlap made one (an indented block may run across a
    fence), so that :meth:`Spans.at` can tell whether any holds a position."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return Spans(merged)


def indented_code(text: str, skip: Spans | None = None) -> list[tuple[int, int]]:
    """Markdown's indented code blocks: lines indented by four columns (spaces, or a
    tab), after a blank line or at the start, up to the last such line before one that
    is not indented. One pass over the lines; a line that begins in ``skip`` (a code
    fence: whole lines) counts as blank."""
    spans: list[tuple[int, int]] = []
    block_start = block_end = -1
    after_blank = True
    position = 0
    while position < len(text):
        newline = text.find("\n", position)
        end = len(text) if newline == -1 else newline + 1
        blank = _NOT_BLANK.search(text, position, end) is None or (
            skip is not None and skip.at(position) is not None
        )
        indented = not blank and _INDENT.match(text, position, end) is not None
        if block_start != -1:
            if indented:
                block_end = end
            elif not blank:
                spans.append((block_start, block_end))
                block_start = -1
        elif indented and after_blank:
            block_start, block_end = position, end
        after_blank = blank
        position = end
    if block_start != -1:
        spans.append((block_start, block_end))
    return spans


class Spans:
    """Stretches of the text that do not overlap, for asking which one holds a position
    (in logarithmic time: a hostile answer may hold thousands)."""

    def __init__(self, spans: Iterable[tuple[int, int]] = ()) -> None:
        self.spans = sorted(spans)
        self._starts = [start for start, _ in self.spans]

    def append(self, start: int, end: int) -> None:
        """Add a span that begins after all the others."""
        self.spans.append((start, end))
        self._starts.append(start)

    def at(self, position: int) -> tuple[int, int] | None:
        index = bisect_right(self._starts, position) - 1
        if index >= 0 and self.spans[index][1] > position:
            return self.spans[index]
        return None


class NextMatch:
    """The next match of a pattern at or after a position, remembered like
    :mod:`.xml_calls`' finders: asked from every tag, the search for a closing tag that
    is far away (or missing) still reads the text only once."""

    def __init__(self, pattern: re.Pattern[str], text: str, stop: int) -> None:
        self.pattern, self.text, self.stop = pattern, text, stop
        self._from = -1
        self._hit: re.Match[str] | None = None

    def search(self, position: int) -> re.Match[str] | None:
        hit = self._hit
        if self._from != -1 and position >= self._from and (hit is None or hit.start() >= position):
            return hit
        self._from = position
        self._hit = self.pattern.search(self.text, position, self.stop)
        return self._hit


def inline_code(text: str, skip: Spans | None = None) -> list[tuple[int, int]]:
    """The inline code spans of ``text``: a run of backticks up to the next run of the
    same length (a run that none closes is just backticks). Linear, where a regex with
    backreferences takes quadratic time on a long run of backticks. Runs in ``skip``
    (fences and indented blocks: whole lines, so a run is in one or out) do not count."""
    runs = [
        (m.start(), m.end())
        for m in _BACKTICKS.finditer(text)
        if skip is None or skip.at(m.start()) is None
    ]
    by_length: dict[int, list[int]] = {}
    for index, (start, end) in enumerate(runs):
        by_length.setdefault(end - start, []).append(index)
    cursor = dict.fromkeys(by_length, 0)  # per length: the next candidate closing run
    spans: list[tuple[int, int]] = []
    index = 0
    while index < len(runs):
        start, end = runs[index]
        same = by_length[end - start]
        at = cursor[end - start]
        while at < len(same) and same[at] <= index:
            at += 1
        cursor[end - start] = at
        if at == len(same):
            index += 1
            continue
        closing = same[at]
        spans.append((start, runs[closing][1]))
        index = closing + 1
    return spans


def unfence(body: str) -> str:
    """``body`` without a code fence around it, if it has one."""
    head = body.lstrip()
    if head[:3] not in ("```", "~~~"):
        return body
    marker = head[: len(head) - len(head.lstrip(head[0]))]
    info, newline, inner = head[len(marker) :].partition("\n")
    if not newline or not _FENCE_INFO.fullmatch(info):
        return body
    inner = inner.rstrip()
    return inner.removesuffix(marker).rstrip() if inner.endswith(marker) else inner
