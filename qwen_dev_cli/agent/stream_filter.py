"""Keeps ``<tool_call>`` blocks out of the text the user watches stream by.

On the text protocol the model writes its calls into its answer; the user should see
the prose, and then the call as the UI presents it, not raw JSON. A block counts when
its opening tag starts a line (a tag mentioned mid-sentence is prose), and text that
could still turn into the tag is held back until it is clear which it is.
"""

from __future__ import annotations

OPEN = "<tool_call>"
CLOSE = "</tool_call>"


class ToolMarkupFilter:
    """Feed it streamed text; it returns what to show."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget everything (the stream restarted)."""
        self._pending = ""
        self._inside = False
        self._hidden: list[str] = []
        self._line_start = True
        self._after_call = False

    def feed(self, text: str) -> str:
        self._pending += text
        shown: list[str] = []
        while self._pending:
            if self._inside:
                if not self._skip_call():
                    break
            elif self._after_call:  # the line break after a closing tag goes with it
                self._pending = self._pending.lstrip(" \t")
                if self._pending:
                    self._pending = self._pending.removeprefix("\n")
                    self._after_call = False
            else:
                visible, done = self._until_call()
                shown.append(visible)
                if done:
                    break
        out = "".join(shown)
        if out:
            # whether what has been shown ends at the start of a line (blanks aside)
            tail = out.rsplit("\n", 1)[-1]
            self._line_start = not tail.strip() and ("\n" in out or self._line_start)
        return out

    def flush(self) -> str:
        """The text held back at the end of the stream."""
        out = self._pending
        if self._inside:
            hidden = "".join(self._hidden) + self._pending
            # an unclosed call is still a call; anything else was prose after all
            out = "" if hidden.lstrip().startswith(("{", "[")) else OPEN + hidden
        self.reset()
        return out

    def _until_call(self) -> tuple[str, bool]:
        """Text before the next call block; True when the rest must wait for more."""
        lower = self._pending.lower()
        index = lower.find(OPEN)
        while index != -1 and not self._starts_line(index):
            index = lower.find(OPEN, index + 1)
        if index == -1:
            keep = _partial_suffix(lower, OPEN)
            cut = len(self._pending) - keep
            visible, self._pending = self._pending[:cut], self._pending[cut:]
            return visible, True
        visible = self._pending[:index]
        self._pending = self._pending[index + len(OPEN) :]
        self._inside = True
        self._hidden = []
        return visible.rstrip(" \t"), False

    def _skip_call(self) -> bool:
        """Drop the call's text; True once its closing tag went by."""
        index = self._pending.lower().find(CLOSE)
        if index == -1:
            keep = min(len(self._pending), len(CLOSE) - 1)
            cut = len(self._pending) - keep
            self._hidden.append(self._pending[:cut])
            self._pending = self._pending[cut:]
            return False
        self._hidden.append(self._pending[:index])
        self._pending = self._pending[index + len(CLOSE) :]
        self._inside = False
        self._after_call = True
        return True

    def _starts_line(self, index: int) -> bool:
        before = self._pending[:index]
        line = before.rsplit("\n", 1)[-1]
        if line.strip():
            return False
        return "\n" in before or self._line_start


def _partial_suffix(text: str, tag: str) -> int:
    """Length of the longest end of ``text`` that begins ``tag``."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if tag.startswith(text[-size:]):
            return size
    return 0
