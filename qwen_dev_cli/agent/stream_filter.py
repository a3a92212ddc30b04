"""Keeps tool calls out of the text the user watches stream by.

On the text protocol the model writes its calls into its answer; the user should see
the prose, and then the call as the UI presents it, not raw JSON or XML. Hidden:

- a ``<tool_call>`` block whose tag starts a line, or whose tag is followed by a
  ``<function=`` (Qwen3-Coder writes its calls right after its prose);
- a ``<function=NAME>`` block without ``<tool_call>`` when a parameter or the
  function's end follows its tag (and, when the tools are known, NAME is one);
- everything from a ``✿FUNCTION✿`` on (Qwen-Agent's calls; what follows them is the
  model imagining their results).

A tag mentioned mid-sentence is prose, and so is markup in code: fences, indented code
blocks and inline code are followed as the text goes by, so ``<function=...>`` shown in
code stays visible. Text that could still turn into a call is held back until it is
clear which it is (a few hundred characters at most). The cost of a chunk is
proportional to its length.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Final

from .qwen_agent_calls import FN_NAME
from .xml_calls import FUNCTION, FUNCTION_END, NAME_LIMIT, PARAMETER, TAG_NAME

OPEN = "<tool_call>"
CLOSE = "</tool_call>"
_OPENERS = re.compile(rf"(?i:{OPEN})|{FUNCTION}|{FN_NAME}")
_NAME_CHARS = re.compile(r"[\w.:\-\"' ]*")
#: Blanks waited for between a tag and what must follow it before deciding it is prose.
_BLANKS_LIMIT: Final = 64
_CALL, _PROSE, _WAIT = "call", "prose", "wait"
#: How what an unclosed ``<tool_call>`` hid begins (after blanks) when it is a call.
_CALL_STARTS: Final = ("{", "[", FUNCTION)


class _Lines:
    """Where the text shown so far stands: at the start of a line (blanks aside), in a
    code fence, in an indented code block, in inline code."""

    def __init__(self) -> None:
        self.at_start = True
        self.in_fence = False
        self._head = ""  # the current line's first characters: is it a fence?
        self._run = 0  # backticks in a row, just read
        self._code_run = 0  # the run that opened the inline code we are in (0: none)
        # Indented code (as :func:`.code_spans.indented_code` finds it): the current
        # line's indentation in columns, whether the line before was blank, whether the
        # last line that was not was in a block, and whether this one is.
        self._indent = 0
        self._after_blank = True
        self._block = False
        self._line_block = False

    def advance(self, text: str) -> None:
        for char in text:
            if self.at_start and char not in " \t\n":
                self._line_block = self.indented()
            if char == "`":
                self._run += 1
                if len(self._head) < 8:
                    self._head += char
                self.at_start = False
                continue
            if self._run:
                self._code_run = self._after_run()
                self._run = 0
            if char == "\n":
                head = self._head.lstrip(" ")
                if len(self._head) - len(head) <= 3 and head[:3] in ("```", "~~~"):
                    self.in_fence = not self.in_fence
                if not self.at_start:
                    self._block = self._line_block
                self._after_blank = self.at_start
                self._head, self._code_run, self.at_start = "", 0, True
                self._indent, self._line_block = 0, False
                continue
            if char not in " \t":
                self.at_start = False
            elif self.at_start:
                self._indent = _columns(self._indent, char)
            if len(self._head) < 8:
                self._head += char

    def indented(self, blanks: str = "") -> bool:
        """Whether the current line, ``blanks`` (held back, not shown yet) further on, is
        in an indented code block."""
        if not self.at_start:
            return self._line_block
        indent = self._indent
        for char in blanks:
            indent = _columns(indent, char)
        return not self.in_fence and indent >= 4 and (self._after_blank or self._block)

    def in_code(self, blanks: str = "") -> bool:
        return self.in_fence or self.indented(blanks) or self._after_run() > 0

    def _after_run(self) -> int:
        """The inline-code state once the run of backticks just read has ended."""
        if not self._run:
            return self._code_run
        if not self._code_run:
            return self._run
        return 0 if self._run == self._code_run else self._code_run


class ToolMarkupFilter:
    """Feed it streamed text; it returns what to show.

    Args:
        tool_names: the tools that exist; a ``<function=NAME>`` without
            ``<tool_call>`` is hidden only if NAME is one (``None``: any name).
    """

    def __init__(self, tool_names: Collection[str] | None = None) -> None:
        self.tool_names = frozenset(tool_names) if tool_names is not None else None
        self.reset()

    def reset(self) -> None:
        """Forget everything (the stream restarted)."""
        self._pending = ""
        self._closing: str | None = None  # inside a hidden block, until this tag
        self._rest = False  # hiding everything to the end
        self._opener = ""
        # An unclosed <tool_call> is shown at the end unless it holds a call: what it
        # hid is kept only until its start shows that it does (a hostile answer of
        # 64 MiB in one unclosed call is not held twice).
        self._hidden: list[str] = []
        self._lead = ""  # its first characters after blanks, until that is known
        self._hides_call = False
        self._lines = _Lines()
        self._after_call = False
        self._call_at_line_start = False

    def feed(self, text: str) -> str:
        self._pending += text
        shown: list[str] = []
        while self._pending:
            if self._rest:
                self._pending = ""
            elif self._closing is not None:
                if not self._skip_block():
                    break
            elif self._after_call:  # the line break after a closing tag goes with it
                self._pending = self._pending.lstrip(" \t")
                if self._pending:
                    self._pending = self._pending.removeprefix("\n")
                    self._after_call = False
            elif self._until_call(shown):
                break
        return "".join(shown)

    def flush(self) -> str:
        """The text held back at the end of the stream."""
        out = self._pending
        if self._closing == CLOSE:
            # an unclosed call is still a call; anything else was prose after all
            hidden = [*self._hidden, self._pending]
            call = self._hides_call or _lead(hidden).startswith(_CALL_STARTS)
            out = "" if call else "".join([self._opener, *hidden])
        elif self._closing is not None or self._rest:
            out = ""  # an unclosed <function=...> or a ✿FUNCTION✿: calls
        else:
            opener = _OPENERS.search(out)
            call = opener is not None and not out[: opener.start()].strip(" \t")
            rest = out.lstrip(" \t")
            blanks = out[: len(out) - len(rest)]
            if call and self._decide(rest, final=True, blanks=blanks) == _CALL:
                out = ""  # a call cut off right after its tag
        self.reset()
        return out

    def _until_call(self, shown: list[str]) -> bool:
        """Show the text before the next call and start hiding it; True when the rest
        must wait for more text."""
        # Blanks before a call go with it, so they are held back like a partial tag.
        while (match := _OPENERS.search(self._pending)) is not None:
            before = self._pending[: match.start()]
            words = before.rstrip(" \t")
            shown.append(words)
            self._lines.advance(words)
            blanks = before[len(words) :]
            self._pending = self._pending[len(words) :]
            verdict = self._decide(self._pending[len(blanks) :], final=False, blanks=blanks)
            if verdict == _WAIT:
                return True
            if verdict == _PROSE:
                shown.append(self._pending[: len(blanks) + 1])
                self._lines.advance(self._pending[: len(blanks) + 1])
                self._pending = self._pending[len(blanks) + 1 :]
                continue
            self._pending = self._pending[len(blanks) :]
            self._start_hiding(match.group(0))
            return False
        cut = len(self._pending) - _partial_opener(self._pending)
        cut = max(len(self._pending[:cut].rstrip(" \t")), cut - _BLANKS_LIMIT)
        visible, self._pending = self._pending[:cut], self._pending[cut:]
        shown.append(visible)
        self._lines.advance(visible)
        return True

    def _hide(self, text: str) -> None:
        """Keep ``text`` of an unclosed ``<tool_call>`` while it may yet be shown."""
        if self._closing != CLOSE or self._hides_call or not text:
            return
        self._hidden.append(text)
        if len(self._lead) < len(FUNCTION):
            self._lead = _lead([self._lead, text])
            if self._lead.startswith(_CALL_STARTS):
                self._hides_call = True
                self._hidden = []

    def _start_hiding(self, opener: str) -> None:
        self._hidden = []
        self._lead = ""
        self._hides_call = False
        self._opener = self._pending[: len(opener)]
        self._call_at_line_start = self._lines.at_start
        if opener == FN_NAME:
            self._rest = True
            return
        if opener == FUNCTION:
            self._closing = FUNCTION_END
            return  # the tag stays in the pending text: hidden with the block
        self._closing = CLOSE
        self._pending = self._pending[len(opener) :]

    def _skip_block(self) -> bool:
        """Drop the call's text; True once its closing tag went by."""
        assert self._closing is not None
        index = self._pending.lower().find(self._closing)
        if index == -1:
            keep = min(len(self._pending), len(self._closing) - 1)
            cut = len(self._pending) - keep
            self._hide(self._pending[:cut])
            self._pending = self._pending[cut:]
            return False
        self._hide(self._pending[:index])
        self._pending = self._pending[index + len(self._closing) :]
        self._closing = None
        # A call that began mid-line leaves its line break to the prose after it.
        self._after_call = self._call_at_line_start
        return True

    # --- is it a call? -------------------------------------------------------------------

    def _decide(self, text: str, *, final: bool, blanks: str = "") -> str:
        """Whether the opener ``text`` starts with (after ``blanks``, held back) begins
        a call, is prose, or (unless the stream is over) needs more text to tell."""
        lines = self._lines
        in_code = lines.in_code(blanks)
        if text.startswith(FN_NAME):
            return _PROSE if in_code else _CALL
        if text.startswith(FUNCTION):
            return _PROSE if in_code else self._function(text, final)
        if lines.at_start and not lines.indented(blanks):
            return _CALL
        if in_code:
            return _PROSE
        return _follows(text, len(OPEN), (FUNCTION,), final)

    def _function(self, text: str, final: bool) -> str:
        start = len(FUNCTION)
        close = text.find(">", start, start + NAME_LIMIT + 2)
        if close == -1:
            name_so_far = text[start : start + NAME_LIMIT + 2]
            fits = len(name_so_far) <= NAME_LIMIT + 1 and _NAME_CHARS.fullmatch(name_so_far)
            return _WAIT if fits and not final else _PROSE
        name = text[start:close].strip().strip("\"'")
        if not TAG_NAME.fullmatch(name):
            return _PROSE
        if self.tool_names is not None and name not in self.tool_names:
            return _PROSE
        return _follows(text, close + 1, (PARAMETER, FUNCTION_END), final, end_is_call=True)


def _follows(
    text: str, start: int, tags: tuple[str, ...], final: bool, *, end_is_call: bool = False
) -> str:
    """Whether one of ``tags`` follows ``text[start:]``'s blanks."""
    rest = text[start : start + _BLANKS_LIMIT + 16]
    body = rest.lstrip()
    if not body:
        if final:
            return _CALL if end_is_call else _PROSE
        return _WAIT if len(rest) <= _BLANKS_LIMIT else _PROSE
    if body.startswith(tags):
        return _CALL
    if not final and any(tag.startswith(body) for tag in tags):
        return _WAIT
    return _PROSE


def _partial_opener(text: str) -> int:
    """Length of the longest end of ``text`` that begins an opener (a tag cut by the
    chunking)."""
    lower = text[-len(OPEN) :].lower()
    for size in range(min(len(OPEN) - 1, len(text)), 0, -1):
        end = text[-size:]
        if OPEN.startswith(lower[-size:]) or FUNCTION.startswith(end) or FN_NAME.startswith(end):
            return size
    return 0


def _lead(parts: list[str]) -> str:
    """The first characters of ``parts`` joined, after blanks: enough to tell whether
    they begin a call."""
    lead = ""
    for part in parts:
        lead += part if lead else part.lstrip()
        if len(lead) >= len(FUNCTION):
            break
    return lead[: len(FUNCTION)]


def _columns(indent: int, blank: str) -> int:
    """The indentation after one more blank (a tab goes to the next multiple of four)."""
    return indent + 1 if blank == " " else (indent // 4 + 1) * 4
