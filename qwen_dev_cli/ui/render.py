"""Streaming markdown for the terminal, without flicker and without quadratic cost.

The answer is cut into blocks as it arrives (paragraphs, list items, headings, fenced
code). A finished block is rendered once with rich and printed for good; only the
unfinished tail is re-rendered, and only when someone asks for the live view (a rich
``Live`` refreshing at a throttled rate). A block that grows too long (a big code
block, a long list) is committed in pieces, so the tail, and with it the cost of
each refresh, stays bounded however long the answer gets.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rich.control import Control
from rich.markdown import Markdown
from rich.segment import ControlType, Segment, SegmentLines
from rich.syntax import Syntax
from rich.text import Text

from .symbols import symbols_for

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderableType, RenderResult

_FENCE_OPEN = re.compile(r"^ {0,3}(`{3,}|~{3,})\s*([^`\s]*)")
_HEADING = re.compile(r"^ {0,3}#{1,6}(\s|$)")
_LIST_ITEM = re.compile(r"^ ?([-*+]|\d{1,9}[.)])(\s|$)")

Line = list[Segment]
_WORD_START = re.compile(r" (?=[A-Za-z])")


def _last_word_start(text: str, limit: int) -> int | None:
    """Where in ``text[:limit]`` (its second half) the last space before a letter is."""
    cut = None
    for match in _WORD_START.finditer(text, limit // 2, limit):
        cut = match.start()
    return cut


@dataclass
class _Fence:
    marker: str
    lang: str

    def could_close(self, text: str) -> bool:
        """Whether a line holding ``text`` might close the fence (blanks and the
        fence's character only)."""
        return not text.strip(" \t\r\f\v" + self.marker[0])

    def closed_by(self, line: str) -> bool:
        stripped = line.strip()
        return (
            len(line) - len(line.lstrip(" ")) <= 3
            and stripped.startswith(self.marker)
            and set(stripped) == {self.marker[0]}
        )


@dataclass
class _Block:
    """The unfinished block: its complete lines, and whether a blank line preceded it."""

    lines: list[str] = field(default_factory=list)
    gap: bool = False
    blank_after: bool = False

    @property
    def is_list(self) -> bool:
        return bool(self.lines) and _LIST_ITEM.match(self.lines[0]) is not None


class MarkdownStream:
    """Renders one streamed answer at a time to ``console``.

    Feed it text as it arrives; finished blocks are printed at once (above a running
    ``Live``, if any); :attr:`tail` is the renderable of what is not finished yet.

    Args:
        console: where the answer goes.
        code_theme: pygments theme of code blocks.
        max_live_lines: the most source lines the tail may hold before it is
            committed in pieces (default: half the console height).
    """

    def __init__(
        self,
        console: Console,
        *,
        code_theme: str = "monokai",
        max_live_lines: int | None = None,
    ) -> None:
        self.console = console
        self.symbols = symbols_for(console)
        self.code_theme = code_theme
        self.max_live_lines = max_live_lines or max(4, console.height // 2 - 2)
        #: The longest line held while it streams (four screen widths): a longer one
        #: goes on in lines of this length.
        self.max_line_chars = 4 * max(console.width, 40)
        #: Bumped whenever the tail changes, so a viewer knows when to re-render.
        self.version = 0
        self.tail = _Tail(self)
        self._reset()

    def _reset(self) -> None:
        self._block = _Block()
        self._fence: _Fence | None = None
        self._partial: list[str] = []
        self._partial_chars = 0
        # The line being streamed, in a fence, is blanks and the fence's character so
        # far (it may yet close the fence: it is held whole).
        self._could_close = False
        # The rest of the line being streamed is dropped (a long fence opener, whose
        # words after the language are not shown).
        self._dropping = False
        #: Terminal lines printed for the current answer (to erase them on a restart).
        self._answer_lines = 0
        self._text_seen = False
        self.version += 1

    # --- input ------------------------------------------------------------------------

    def feed(self, text: str) -> None:
        """Add streamed text."""
        if not text:
            return
        self._text_seen = True
        self.version += 1
        if "\n" in text:
            *complete, rest = ("".join(self._partial) + text).split("\n")
            self._partial = [rest] if rest else []
            self._partial_chars = len(rest)
            if self._dropping:
                complete, self._dropping = complete[1:], False
            for line in complete:
                self._line(line)
            self._could_close = self._fence is not None and self._fence.could_close(rest)
        elif self._dropping:
            return
        else:
            self._partial.append(text)
            self._partial_chars += len(text)
            self._could_close = (
                self._could_close and self._fence is not None and (self._fence.could_close(text))
            )
        if self._partial_chars > self.max_line_chars and not self._could_close:
            self._cut_long_line()
        self._settle_partial()

    def finish(self) -> None:
        """The answer is complete: print what is left and get ready for the next one."""
        if self._partial:
            self._line("".join(self._partial))
            self._partial = []
            self._partial_chars = 0
        if self._fence is not None:
            self._commit_code(final=True)
        else:
            self._commit_markdown()
        self._reset()

    def interrupt(self) -> None:
        """The answer was cut short by the user: keep it, marked as such."""
        note = "interrupted: what was said so far is kept" if self._text_seen else "interrupted"
        self.finish()
        self.console.print(Text(f"{self.symbols.stopped} {note}", "qd.notice"))

    def restart(self, reason: str) -> None:
        """The text streamed so far is void (the answer is being re-issued)."""
        printed = self._answer_lines
        self._reset()
        if not printed:
            return
        if self.console.is_terminal and printed + self.max_live_lines + 2 <= self.console.height:
            # Still on screen: take it back, line by line, from the bottom up.
            self.console.print(
                Control(*[(ControlType.CURSOR_UP, 1), (ControlType.ERASE_IN_LINE, 2)] * printed)
            )
        else:
            self.console.print(
                Text(
                    f"{self.symbols.again} {reason}: the answer above is void; "
                    "it starts again below",
                    "qd.notice",
                )
            )

    # --- block splitting --------------------------------------------------------------

    def _line(self, line: str) -> None:
        if self._fence is not None:
            self._code_line(line)
            return
        block = self._block
        if not line.strip():
            if block.lines:
                block.blank_after = True
            else:
                block.gap = True
            return
        fence = _FENCE_OPEN.match(line)
        if fence:
            self._commit_markdown()
            self._fence = _Fence(fence.group(1), fence.group(2))
            return
        if _HEADING.match(line):
            self._commit_markdown()
            self._block.lines.append(line)
            self._commit_markdown()
            return
        if block.blank_after:
            if block.is_list and line.startswith("  "):
                block.lines += ["", line]
                block.blank_after = False
                return
            self._commit_markdown()
            self._block.gap = True
        self._block.lines.append(line)
        if len(self._block.lines) >= self.max_live_lines:
            self._split_long_block()

    def _cut_long_line(self) -> None:
        """The line being streamed is too long to hold (a hostile answer of 64 MiB may
        be one line): it goes on as lines of at most :attr:`max_line_chars`, so the
        tail, and with it the memory and the cost of each refresh, stays bounded.

        Prose is cut at a space before a letter, and the space dropped: a line that
        begins with a letter only continues the paragraph, and the line break between
        renders as that space, so the paragraph looks as it would uncut (a heading that
        long goes on as a paragraph). Code is cut where it must (a long code line then
        shows a line break); a line that may yet close its fence is held whole."""
        text = "".join(self._partial)
        limit = self.max_line_chars
        while len(text) > limit:
            if self._fence is not None:
                head, text = text[:limit], text[limit:]
                self._code_line(head, whole=False)  # a piece of a line never closes it
                continue
            cut = _last_word_start(text, limit)
            if cut is None:
                head, text = text[:limit], text[limit:]
            else:
                head, text = text[:cut], text[cut + 1 :]
            if self._line_opens_fence(head):  # the rest of the line is its info string
                self._dropping, text = True, ""
        self._partial = [text] if text else []
        self._partial_chars = len(text)

    def _line_opens_fence(self, line: str) -> bool:
        self._line(line)
        return self._fence is not None

    def _settle_partial(self) -> None:
        """A line has begun after a blank one: if it starts a new block, the block
        before it is finished now rather than when the new line ends."""
        block = self._block
        if self._fence is not None or not block.blank_after or not block.lines:
            return
        head = ""
        for part in self._partial:
            head += part
            if head.strip():
                break
        else:
            return
        if block.is_list and head.startswith("  "):
            return
        self._commit_markdown()

    def _code_line(self, line: str, *, whole: bool = True) -> None:
        """A line of code (``whole``: a line of the answer, not a piece of a long one,
        which cannot close the fence)."""
        assert self._fence is not None
        if whole and self._fence.closed_by(line):
            self._commit_code(final=True)
            return
        self._block.lines.append(line)
        if len(self._block.lines) >= self.max_live_lines:
            self._commit_code(final=False)

    def _split_long_block(self) -> None:
        lines = self._block.lines
        cut = len(lines)
        if self._block.is_list:
            starts = [i for i, text in enumerate(lines) if i and _LIST_ITEM.match(text)]
            cut = starts[-1] if starts else cut
        keep = lines[cut:]
        self._block.lines = lines[:cut]
        self._commit_markdown()
        self._block.lines = keep

    # --- committing -------------------------------------------------------------------

    def _commit_markdown(self) -> None:
        block = self._block
        self._block = _Block(gap=block.blank_after)
        if not block.lines:
            self._block.gap = block.gap or block.blank_after
            return
        markdown = Markdown("\n".join(block.lines), code_theme=self.code_theme)
        self._emit(_trim(self.console.render_lines(markdown, pad=False)), gap=block.gap)

    def _commit_code(self, *, final: bool) -> None:
        fence = self._fence
        assert fence is not None
        block = self._block
        self._block = _Block()
        if final:
            self._fence = None
        if block.lines:
            syntax = self._code(block.lines, fence.lang)
            self._emit(self.console.render_lines(syntax, pad=False), gap=block.gap)

    def _code(self, lines: list[str], lang: str) -> Syntax:
        return Syntax(
            "\n".join(lines),
            lang or "text",
            theme=self.code_theme,
            word_wrap=True,
            padding=(0, 1),
        )

    def _emit(self, lines: list[Line], *, gap: bool) -> None:
        if not lines:
            return
        if gap and self._answer_lines:
            lines = [[], *lines]
        self.console.print(SegmentLines(lines, new_lines=True))
        self._answer_lines += len(lines)

    # --- the live tail ----------------------------------------------------------------

    def tail_renderable(self) -> RenderableType | None:
        """The unfinished part, as rich would render it now (``None`` when empty)."""
        lines = list(self._block.lines)
        partial = "".join(self._partial)
        if partial:
            lines.append(partial)
        if not lines:
            return None
        if self._fence is not None:
            return self._code(lines, self._fence.lang)
        return Markdown("\n".join(lines), code_theme=self.code_theme)

    @property
    def has_output(self) -> bool:
        """Whether lines of the current answer have been printed for good."""
        return self._answer_lines > 0

    @property
    def tail_gap(self) -> bool:
        return self._block.gap and self._answer_lines > 0


class _Tail:
    """The live tail of a :class:`MarkdownStream`; re-rendered only when it changed,
    and cut to its last lines so it never outgrows the screen."""

    def __init__(self, stream: MarkdownStream) -> None:
        self._stream = stream
        self._key: tuple[int, int] | None = None
        self._lines: list[Line] = []

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        stream = self._stream
        key = (stream.version, options.max_width)
        if key != self._key:
            self._key = key
            renderable = stream.tail_renderable()
            lines: list[Line] = []
            if renderable is not None:
                rendered = console.render_lines(renderable, options.update(height=None), pad=False)
                lines = _trim(rendered)[-stream.max_live_lines :]
                if lines and stream.tail_gap:
                    lines.insert(0, [])
            self._lines = lines
        if self._lines:
            yield SegmentLines(self._lines, new_lines=True)


def _trim(lines: list[Line]) -> list[Line]:
    """Without the blank lines rich puts around blocks (spacing follows the source)."""

    def blank(line: Line) -> bool:
        return not "".join(segment.text for segment in line).strip()

    start, end = 0, len(lines)
    while start < end and blank(lines[start]):
        start += 1
    while end > start and blank(lines[end - 1]):
        end -= 1
    return lines[start:end]
