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
NOT_BLANK = re.compile(r"\S")
_FENCE_INFO = re.compile(r"[\w-]*")


def code_spans(text: str, asked: Iterable[int] | None = None) -> tuple[Fences, Spans]:
    """The code fences of ``text``, and every stretch of code (fences, indented blocks
    and inline).

    With ``asked`` (positions, in increasing order), only the stretches that
    :meth:`Spans.at` needs to answer for those positions are kept, and it answers for
    them exactly as it would with every stretch: an answer may hold sixteen million
    inline code spans (eight bytes each), where a parser only asks about its tags."""
    # The blocks (fences and indented code) are held once, packed (about two bytes
    # each); the fences are found again where they are wanted (a hostile answer may hold
    # eight million).
    blocks = Packed()
    for block in _union(_fence_spans(text), indented_code(text, Ahead(_fence_spans(text)))):
        blocks.append(*block)
    every = _in_order(text, blocks)
    if asked is None:
        spans = Spans(typecode=_typecode(text))
        for span in every:
            spans.append(*span)
        return Fences(text), spans
    return Fences(text), _answering(every, asked, _typecode(text))


def _fence_spans(text: str) -> Iterator[tuple[int, int]]:
    return (fence.span() for fence in FENCE.finditer(text))


def _union(
    mine: Iterator[tuple[int, int]], theirs: Iterator[tuple[int, int]]
) -> Iterator[tuple[int, int]]:
    """Two streams of spans in order, as one in order (as ``sorted`` would order them)."""
    a, b = next(mine, None), next(theirs, None)
    while a is not None or b is not None:
        if b is None or (a is not None and a <= b):
            assert a is not None
            yield a
            a = next(mine, None)
        else:
            yield b
            b = next(theirs, None)


def _merged(spans: Iterable[tuple[int, int]]) -> Iterator[tuple[int, int]]:
    """Spans in order, with those that overlap made one (an indented block may run
    across a fence), so that :meth:`Ahead.at` can tell whether any holds a position."""
    start = end = -1
    for begins, ends in spans:
        if start != -1 and begins < end:
            end = max(end, ends)
        else:
            if start != -1:
                yield start, end
            start, end = begins, ends
    if start != -1:
        yield start, end


def _in_order(text: str, blocks: Packed) -> Iterator[tuple[int, int]]:
    """The blocks (fences and indented code) and the inline code of ``text``, in order.
    Inline code is the most numerous (an answer may hold millions of spans): it comes as
    it is found, merged with the blocks, and is never listed."""
    return _union(iter(blocks), inline_code(text, blocks))


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
    """The code fences of a text, in order, found again each time they are asked for: a
    hostile answer may hold eight million, and a match kept is some 200 bytes (its span
    eight)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._count = -1

    def __len__(self) -> int:
        if self._count == -1:
            self._count = sum(1 for _ in FENCE.finditer(self.text))
        return self._count

    def __iter__(self) -> Iterator[re.Match[str]]:
        return FENCE.finditer(self.text)


def _typecode(text: str) -> str:
    """Four bytes a position when they do (any answer within the 64 MiB body cap)."""
    return "i" if len(text) < 2**31 else "q"


def indented_code(text: str, skip: Spans | Ahead | None = None) -> Iterator[tuple[int, int]]:
    """Markdown's indented code blocks, in order: lines indented by four columns
    (spaces, or a tab), after a blank line or at the start, up to the last such line
    before one that is not indented. One pass over the lines; a line that begins in
    ``skip`` (a code fence: whole lines) counts as blank."""
    block_start = block_end = -1
    after_blank = True
    position = 0
    while position < len(text):
        newline = text.find("\n", position)
        end = len(text) if newline == -1 else newline + 1
        blank = NOT_BLANK.search(text, position, end) is None or (
            skip is not None and skip.at(position) is not None
        )
        indented = not blank and _INDENT.match(text, position, end) is not None
        if block_start != -1:
            if indented:
                block_end = end
            elif not blank:
                yield block_start, block_end
                block_start = -1
        elif indented and after_blank:
            block_start, block_end = position, end
        after_blank = blank
        position = end
    if block_start != -1:
        yield block_start, block_end


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


class Ahead:
    """Spans in order, asked about positions that only grow: :meth:`at` answers as
    :meth:`Spans.at` would, holding no more than two spans."""

    def __init__(self, spans: Iterator[tuple[int, int]]) -> None:
        self._spans = spans
        self._current: tuple[int, int] | None = None
        self._next = next(spans, None)

    def at(self, position: int) -> tuple[int, int] | None:
        while self._next is not None and self._next[0] <= position:
            self._current, self._next = self._next, next(self._spans, None)
        current = self._current
        return current if current is not None and current[1] > position else None


class Packed:
    """Spans in order of their start, to go through in order only: each as how far it
    begins after the one before and its length, in as few bytes as they take (seven
    bits a byte; a fence of an empty line, eight characters from the last: two bytes,
    where two positions in an array take eight)."""

    def __init__(self) -> None:
        self._bytes = bytearray()
        self._last = 0

    def append(self, start: int, end: int) -> None:
        """Add a span that begins no sooner than the last."""
        _pack(self._bytes, start - self._last)
        _pack(self._bytes, end - start)
        self._last = start

    def __iter__(self) -> Iterator[tuple[int, int]]:
        data, at, start = self._bytes, 0, 0
        while at < len(data):
            gap, at = _unpack(data, at)
            length, at = _unpack(data, at)
            start += gap
            yield start, start + length


def _pack(into: bytearray, number: int) -> None:
    while number >= 0x80:
        into.append(number & 0x7F | 0x80)
        number >>= 7
    into.append(number)


def _unpack(data: bytearray, at: int) -> tuple[int, int]:
    """The number packed at ``at``, and where the next begins."""
    number, shift = 0, 0
    while (byte := data[at]) & 0x80:
        number |= (byte & 0x7F) << shift
        shift += 7
        at += 1
    return number | byte << shift, at + 1


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


def inline_code(
    text: str, blocks: Iterable[tuple[int, int]] | None = None
) -> Iterator[tuple[int, int]]:
    """The inline code spans of ``text``, in order: a run of backticks up to the next
    run of the same length (a run that none closes is just backticks). Linear, where a
    regex with backreferences takes quadratic time on a long run of backticks, and
    holding nothing per run: a first pass finds where the last run of each length
    begins, so a run opens a span exactly when a run of its length comes after it, and
    the second pass then goes on to the first such run. Runs in ``blocks`` (fences and
    indented blocks, in order: whole lines, so a run is in one or out) do not count."""
    last: dict[int, int] = {}  # per length: where the last run of it begins
    for run in _runs(text, blocks):
        last[run.end() - run.start()] = run.start()
    closing = 0  # the length of the run that closes the open span (0: none is open)
    opened = -1
    for run in _runs(text, blocks):
        start, end = run.span()
        if closing == 0:
            if last[end - start] > start:
                closing, opened = end - start, start
        elif end - start == closing:
            yield opened, end
            closing = 0


def _runs(text: str, blocks: Iterable[tuple[int, int]] | None) -> Iterator[re.Match[str]]:
    """The runs of backticks in ``text``, those in ``blocks`` left out."""
    skip = Ahead(_merged(blocks if blocks is not None else ()))
    for run in _BACKTICKS.finditer(text):
        if skip.at(run.start()) is None:
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
