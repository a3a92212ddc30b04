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
from array import array
from bisect import bisect_right
from collections.abc import Iterable, Iterator

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


def code_spans(text: str, asked: Iterable[int] | None = None) -> tuple[Fences, Spans]:
    """The code fences of ``text``, and every stretch of code (fences, indented blocks
    and inline).

    With ``asked`` (positions, in increasing order), only the stretches that
    :meth:`Spans.at` needs to answer for those positions are kept, and it answers for
    them exactly as it would with every stretch: an answer may hold sixteen million
    inline code spans (eight bytes each), where a parser only asks about its tags."""
    found = Spans(typecode=_typecode(text))
    for fence in FENCE.finditer(text):
        found.append(*fence.span())
    fences = Fences(text, found)
    # Each later kind is looked for outside the stretches found before, without a
    # blanked copy of the text (a copy of a hostile answer of 64 MiB is 64 MB more).
    found = found.union(indented_code(text, found))
    every = _in_order(text, found)
    if asked is None:
        spans = Spans(typecode=_typecode(text))
        for span in every:
            spans.append(*span)
        return fences, spans
    return fences, _answering(every, asked, _typecode(text))


def _in_order(text: str, blocks: Spans) -> Iterator[tuple[int, int]]:
    """The blocks (fences and indented code) and the inline code of ``text``, in order.
    Inline code is the most numerous (an answer may hold millions of spans): it comes as
    it is found, merged with the blocks, and is never listed."""
    others = iter(blocks)
    block = next(others, None)
    for span in inline_code(text, blocks.merged()):
        while block is not None and block <= span:
            yield block
            block = next(others, None)
        yield span
    while block is not None:
        yield block
        block = next(others, None)


def _answering(every: Iterator[tuple[int, int]], asked: Iterable[int], typecode: str) -> Spans:
    """Of ``every`` span (in order), those :meth:`Spans.at` answers with for the
    positions ``asked`` (in increasing order), and where one of them holds a position
    that the others would not answer with (blocks overlap), an empty span there: asked
    for those positions, the result answers as all the spans would."""
    kept = Spans(typecode=typecode)
    current: tuple[int, int] | None = None  # the last span to begin at or before
    following = next(every, None)
    for position in asked:
        while following is not None and following[0] <= position:
            current, following = following, next(every, None)
        if current is not None and current[1] > position:
            if not kept or kept.last() != current:
                kept.append(*current)
        elif kept and kept.last()[1] > position:
            kept.append(position, position)
    return kept


class Fences:
    """The code fences of a text, in order, each matched again when asked for: a
    hostile answer may hold millions, and a match kept is some 200 bytes where its
    span is eight."""

    def __init__(self, text: str, spans: Spans) -> None:
        self.text, self._spans = text, spans

    def __len__(self) -> int:
        return len(self._spans)

    def __iter__(self) -> Iterator[re.Match[str]]:
        for start, _ in self._spans:
            # the same match as finditer's: it tried this position first
            fence = FENCE.match(self.text, start)
            assert fence is not None
            yield fence


def _typecode(text: str) -> str:
    """Four bytes a position when they do (any answer within the 64 MiB body cap)."""
    return "i" if len(text) < 2**31 else "q"


def indented_code(text: str, skip: Spans | None = None) -> Spans:
    """Markdown's indented code blocks: lines indented by four columns (spaces, or a
    tab), after a blank line or at the start, up to the last such line before one that
    is not indented. One pass over the lines; a line that begins in ``skip`` (a code
    fence: whole lines) counts as blank."""
    spans = Spans(typecode=_typecode(text))
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
                spans.append(block_start, block_end)
                block_start = -1
        elif indented and after_blank:
            block_start, block_end = position, end
        after_blank = blank
        position = end
    if block_start != -1:
        spans.append(block_start, block_end)
    return spans


class Spans:
    """Stretches of the text in order of their start (then of their end), for asking
    which one holds a position (in logarithmic time: a hostile answer may hold
    millions). Held as two arrays of positions, eight bytes a span (sixteen past
    2 GiB), not as tuples of numbers (about 120 bytes)."""

    def __init__(self, spans: Iterable[tuple[int, int]] = (), *, typecode: str = "q") -> None:
        self._starts = array(typecode)
        self._ends = array(typecode)
        for start, end in sorted(spans):
            self.append(start, end)

    def append(self, start: int, end: int) -> None:
        """Add a span that begins after all the others (or with the last, ending no
        sooner)."""
        self._starts.append(start)
        self._ends.append(end)

    def __len__(self) -> int:
        return len(self._starts)

    def last(self) -> tuple[int, int]:
        """The span appended last."""
        return self._starts[-1], self._ends[-1]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return zip(self._starts, self._ends, strict=True)

    def at(self, position: int) -> tuple[int, int] | None:
        """The span that begins last at or before ``position`` (of those that begin
        there, the one that ends last), if it holds ``position``."""
        index = bisect_right(self._starts, position) - 1
        if index >= 0 and self._ends[index] > position:
            return self._starts[index], self._ends[index]
        return None

    def union(self, other: Spans) -> Spans:
        """These spans and ``other``'s, in order, in one pass (as ``sorted`` would
        order them)."""
        both = Spans(typecode=self._starts.typecode)
        mine, theirs = iter(self), iter(other)
        a, b = next(mine, None), next(theirs, None)
        while a is not None or b is not None:
            if b is None or (a is not None and a <= b):
                assert a is not None
                both.append(*a)
                a = next(mine, None)
            else:
                both.append(*b)
                b = next(theirs, None)
        return both

    def merged(self) -> Spans:
        """These spans with those that overlap made one (an indented block may run
        across a fence), so that :meth:`at` can tell whether any holds a position."""
        merged = Spans(typecode=self._starts.typecode)
        for start, end in self:
            if merged._starts and start < merged._ends[-1]:
                merged._ends[-1] = max(merged._ends[-1], end)
            else:
                merged.append(start, end)
        return merged


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


def inline_code(text: str, skip: Spans | None = None) -> Iterator[tuple[int, int]]:
    """The inline code spans of ``text``, in order: a run of backticks up to the next
    run of the same length (a run that none closes is just backticks). Linear, where a
    regex with backreferences takes quadratic time on a long run of backticks, and
    holding nothing per run: a first pass finds where the last run of each length
    begins, so a run opens a span exactly when a run of its length comes after it, and
    the second pass then goes on to the first such run. Runs in ``skip`` (fences and
    indented blocks: whole lines, so a run is in one or out) do not count."""
    last: dict[int, int] = {}  # per length: where the last run of it begins
    for run in _runs(text, skip):
        last[run.end() - run.start()] = run.start()
    closing = 0  # the length of the run that closes the open span (0: none is open)
    opened = -1
    for run in _runs(text, skip):
        start, end = run.span()
        if closing == 0:
            if last[end - start] > start:
                closing, opened = end - start, start
        elif end - start == closing:
            yield opened, end
            closing = 0


def _runs(text: str, skip: Spans | None) -> Iterator[re.Match[str]]:
    """The runs of backticks in ``text``, those in ``skip`` left out."""
    for run in _BACKTICKS.finditer(text):
        if skip is None or skip.at(run.start()) is None:
            yield run


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
