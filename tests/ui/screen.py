"""A small terminal screen for pty tests: what a person would see, row by row.

prompt-toolkit and rich redraw with cursor moves and partial rewrites, so the bytes a
pty reads are not the screen. This applies the few controls they use (cursor moves
and positioning, erase in line and display, carriage return, line feed with
scrolling, auto-wrap on and off) and ignores styles and the rest. Enough for
asserting on a status bar line; not a terminal emulator.
"""

from __future__ import annotations

import re

_CONTROL = re.compile(
    r"\x1b\[(?P<private>[?>]?)(?P<params>[\d;]*)(?P<final>[@-~])"  # CSI
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"  # OSC, e.g. the window title
    r"|\x1b[()][0-9A-Za-z]"  # character set
    r"|\x1b[=>78]"  # keypad modes, save/restore cursor
    r"|[\r\n\b\x07]"
)


class Screen:
    """``rows`` x ``columns`` cells fed with a terminal's output."""

    def __init__(self, rows: int, columns: int) -> None:
        self.rows = rows
        self.columns = columns
        self.cells = [[" "] * columns for _ in range(rows)]
        self.row = 0
        self.column = 0
        self.wrap = True

    def feed(self, data: str) -> None:
        position = 0
        for match in _CONTROL.finditer(data):
            self._text(data[position : match.start()])
            self._control(match)
            position = match.end()
        self._text(data[position:])

    def lines(self) -> list[str]:
        """Each row, trailing blanks removed."""
        return ["".join(row).rstrip() for row in self.cells]

    def line_with(self, text: str) -> str:
        """The lowest row holding ``text`` (the status bar is drawn at the bottom)."""
        found = [line for line in self.lines() if text in line]
        assert found, f"{text!r} is not on the screen:\n" + "\n".join(self.lines())
        return found[-1]

    def _text(self, text: str) -> None:
        for char in text:
            if self.column >= self.columns:
                if not self.wrap:
                    self.column = self.columns - 1
                else:
                    self.column = 0
                    self._line_feed()
            self.cells[self.row][self.column] = char
            self.column += 1

    def _line_feed(self) -> None:
        if self.row == self.rows - 1:
            self.cells.pop(0)
            self.cells.append([" "] * self.columns)
        else:
            self.row += 1

    def _control(self, match: re.Match[str]) -> None:
        text = match.group()
        if text == "\r":
            self.column = 0
        elif text == "\n":
            self._line_feed()
        elif text == "\b":
            self.column = max(self.column - 1, 0)
        elif match.group("final"):
            self._csi(match.group("private"), match.group("params"), match.group("final"))

    def _csi(self, private: str, params: str, final: str) -> None:
        numbers = [int(p) if p else 0 for p in params.split(";")] if params else []
        first = numbers[0] if numbers else 0
        count = max(first, 1)
        if private == "?":
            if 7 in numbers and final in "hl":
                self.wrap = final == "h"
            return
        if final == "A":
            self.row = max(self.row - count, 0)
        elif final == "B":
            self.row = min(self.row + count, self.rows - 1)
        elif final == "C":
            self.column = min(self.column + count, self.columns - 1)
        elif final == "D":
            self.column = max(min(self.column, self.columns - 1) - count, 0)
        elif final == "G":
            self.column = min(count, self.columns) - 1
        elif final == "d":
            self.row = min(count, self.rows) - 1
        elif final in "Hf":
            row = numbers[0] if numbers and numbers[0] else 1
            column = numbers[1] if len(numbers) > 1 and numbers[1] else 1
            self.row, self.column = min(row, self.rows) - 1, min(column, self.columns) - 1
        elif final == "K":
            self._erase_line(first)
        elif final == "J":
            self._erase_display(first)

    def _erase_line(self, how: int) -> None:
        line = self.cells[self.row]
        column = min(self.column, self.columns)
        span = {0: range(column, self.columns), 1: range(0, column + 1)}.get(
            how, range(self.columns)
        )
        for index in span:
            if index < self.columns:
                line[index] = " "

    def _erase_display(self, how: int) -> None:
        if how == 0:
            self._erase_line(0)
            rows = range(self.row + 1, self.rows)
        elif how == 1:
            self._erase_line(1)
            rows = range(0, self.row)
        else:
            rows = range(self.rows)
        for row in rows:
            self.cells[row] = [" "] * self.columns
