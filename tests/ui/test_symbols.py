"""Unicode symbols or ASCII: chosen by the output's encoding and the declared locale."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from qwen_dev_cli.plurals import plural
from qwen_dev_cli.ui.symbols import (
    ASCII,
    UNICODE,
    locale_is_unicode,
    symbols_for,
    terminal_stream,
)


@pytest.mark.parametrize(
    ("environ", "unicode"),
    [
        ({}, True),
        ({"LANG": "C.UTF-8"}, True),
        ({"LANG": "en_GB.UTF-8"}, True),
        ({"LANG": "de_DE.utf8@euro"}, True),
        ({"LANG": "C"}, False),
        ({"LANG": "POSIX"}, False),
        ({"LC_ALL": "C", "LANG": "en_GB.UTF-8"}, False),
        ({"LC_ALL": "C.UTF-8", "LANG": "C"}, True),
        ({"LANG": "en_US.ISO-8859-1"}, False),
        ({"LC_CTYPE": "en_US.UTF-8", "LANG": "C"}, True),
        # LANG=C as Python leaves it after coercing the C locale (PEP 538): still C.
        ({"LC_CTYPE": "C.UTF-8", "LANG": "C"}, False),
    ],
)
def test_the_declared_locale_decides(environ: dict[str, str], unicode: bool) -> None:
    assert locale_is_unicode(environ) is unicode


class Screen(io.StringIO):
    def __init__(self, encoding: str, tty: bool) -> None:
        super().__init__()
        self._encoding = encoding
        self._tty = tty

    @property
    def encoding(self) -> str:  # type: ignore[override]  # StringIO says None
        return self._encoding

    def isatty(self) -> bool:
        return self._tty


def test_an_output_that_is_not_utf8_gets_ascii() -> None:
    assert symbols_for(Console(file=Screen("ascii", tty=False))) is ASCII
    assert symbols_for(Console(file=Screen("latin-1", tty=False))) is ASCII
    assert symbols_for(Console(file=Screen("utf-8", tty=False))) is UNICODE


def test_a_terminal_follows_its_locale_a_file_its_encoding() -> None:
    c_locale = {"LANG": "C"}
    assert symbols_for(Console(file=Screen("utf-8", tty=True)), c_locale) is ASCII
    assert symbols_for(Console(file=Screen("utf-8", tty=False)), c_locale) is UNICODE
    utf8 = {"LANG": "en_GB.UTF-8"}
    assert symbols_for(Console(file=Screen("utf-8", tty=True)), utf8) is UNICODE


def test_a_c_locale_terminal_makes_rich_draw_ascii_too() -> None:
    screen = Screen("utf-8", tty=True)
    stream = terminal_stream(screen, {"LANG": "C"})
    console = Console(file=stream, width=40)
    assert console.encoding == "ascii"
    assert symbols_for(console) is ASCII
    console.print("text passes through: é")
    assert "text passes through: é" in screen.getvalue()
    assert terminal_stream(screen, {"LANG": "C.UTF-8"}) is screen


def test_every_ascii_symbol_is_ascii() -> None:
    for name, symbol in vars(ASCII).items():
        assert symbol.isascii(), name
        assert symbol, name


@pytest.mark.parametrize(
    ("count", "expected"),
    [(0, "0 tool calls"), (1, "1 tool call"), (2, "2 tool calls"), (1204, "1,204 tool calls")],
)
def test_plural(count: int, expected: str) -> None:
    assert plural(count, "tool call") == expected
