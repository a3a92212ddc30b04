"""The theme: every style the UI names exists, prompt-toolkit draws each one as rich
does, and colour still goes where the user said it should not."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from prompt_toolkit.styles import Attrs
from rich.style import Style
from rich.text import Text

import qwen_dev_cli
from qwen_dev_cli.ui.symbols import ASCII, symbols_for
from qwen_dev_cli.ui.theme import STYLES, breaker_style, make_console, prompt_style
from qwen_dev_cli.vocabulary import RISK_LEVELS

PACKAGE = Path(qwen_dev_cli.__file__).parent
#: A style name in a string or in markup (not one an f-string completes).
STYLE_NAME = re.compile(r"""["'\[](qd\.[a-z_.]*[a-z_])(?=["'\]\s])""")


class Terminal(io.StringIO):
    """A terminal that says it is one."""

    def isatty(self) -> bool:
        return True


def test_every_style_the_code_names_is_in_the_theme() -> None:
    named = {
        (path.relative_to(PACKAGE).as_posix(), name)
        for path in PACKAGE.rglob("*.py")
        for name in STYLE_NAME.findall(path.read_text(encoding="utf-8"))
    }
    assert len(named) > 40  # the scan sees the UI's styles
    assert [(where, name) for where, name in sorted(named) if name not in STYLES] == []


def test_every_risk_level_and_breaker_state_has_its_style() -> None:
    for risk in RISK_LEVELS:
        assert f"qd.risk.{risk}" in STYLES
    for state in ("CLOSED", "HALF_OPEN", "OPEN"):
        assert breaker_style(state) in STYLES
    assert breaker_style("SOMETHING_NEW") == "qd.plain"


def test_styles_are_named_for_meaning_not_colour() -> None:
    colours = {"red", "green", "yellow", "blue", "cyan", "magenta", "white", "black", "dim"}
    for name in STYLES:
        assert not set(name.split(".")) & colours, name


@pytest.mark.parametrize("name", sorted(STYLES))
def test_prompt_toolkit_draws_each_style_as_rich_does(name: str) -> None:
    rich = Style.parse(STYLES[name])
    attrs: Attrs = prompt_style().get_attrs_for_style_str(f"class:{name}")
    assert attrs.bold == bool(rich.bold)
    assert attrs.reverse == bool(rich.reverse)
    if rich.color is not None:
        assert attrs.color == f"ansi{rich.color.name}".replace("ansiwhite", "ansigray")
    elif rich.dim:
        assert attrs.color == "808080"  # the toolbar's grey
    if rich.bgcolor is not None:
        assert attrs.bgcolor == f"ansi{rich.bgcolor.name}"


def test_the_toolbar_keeps_its_colours() -> None:
    """The colours the bottom toolbar had when it kept its own table."""
    style = prompt_style()
    toolbar = style.get_attrs_for_style_str("class:bottom-toolbar")
    assert (toolbar.bgcolor, toolbar.color, toolbar.reverse) == ("1c1c1c", "bcbcbc", False)
    for name, colour, bold in [
        ("qd.provider.closed", "ansigreen", False),
        ("qd.provider.open", "ansired", True),
        ("qd.provider.half_open", "ansiyellow", False),
        ("qd.muted", "808080", False),
        ("qd.model", "ansicyan", False),
        ("qd.activity", "ansimagenta", True),
        ("qd.busy", "ansiblue", False),
        ("qd.warning", "ansiyellow", True),
        ("qd.prompt", "ansicyan", True),
    ]:
        attrs = style.get_attrs_for_style_str(f"class:bottom-toolbar class:{name}")
        assert (attrs.color, attrs.bold) == (colour, bold), name


def test_the_console_knows_the_theme() -> None:
    screen = io.StringIO()
    console = make_console(file=screen, force_terminal=True, color_system="standard")
    console.print(Text("stop", "qd.error"), Text("go", "qd.ok"))
    assert "\x1b[31mstop" in screen.getvalue()
    assert "\x1b[32mgo" in screen.getvalue()
    assert console.get_style("qd.warning") == Style.parse("bold yellow")


def test_no_color_and_non_terminals_get_no_colour(monkeypatch: pytest.MonkeyPatch) -> None:
    pipe = io.StringIO()
    make_console(file=pipe).print(Text("stop", "qd.error"))
    assert pipe.getvalue() == "stop\n"

    monkeypatch.setenv("NO_COLOR", "1")
    screen = io.StringIO()
    make_console(file=screen, force_terminal=True, color_system="standard").print(
        Text("stop", "qd.failure")
    )
    assert "stop" in screen.getvalue()
    assert not re.search(r"\x1b\[[\d;]*3\dm", screen.getvalue())  # bold, but no colour


@pytest.mark.parametrize("stderr", [False, True])
def test_a_c_locale_terminal_gets_ascii(monkeypatch: pytest.MonkeyPatch, stderr: bool) -> None:
    for name in ("LC_ALL", "LC_CTYPE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", "C")
    monkeypatch.setattr("sys.stderr" if stderr else "sys.stdout", Terminal())
    console = make_console(stderr=stderr)
    assert console.encoding == "ascii"
    assert symbols_for(console) is ASCII


def test_standard_error_is_looked_up_when_written(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not pinned at start (a live display redirects it), unless its locale needs it."""
    monkeypatch.setenv("LANG", "C.UTF-8")
    console = make_console(stderr=True)
    later = io.StringIO()
    monkeypatch.setattr("sys.stderr", later)
    console.print("to the stream of the moment")
    assert "to the stream of the moment" in later.getvalue()
