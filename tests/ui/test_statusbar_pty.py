"""The status bar in a real terminal of 80 and 120 columns, with five providers and a
retry under way: shortened by priority, never cut mid-word; the model and the token
count always there. And a terminal whose locale is C gets it in ASCII."""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest

from faultserver import DEFAULT_TEXT, FaultServerProcess, Outcome
from tests.ui.screen import Screen
from tests.ui.test_repl_pty import PROMPT, Terminal, write_config

pytestmark = pytest.mark.slow

NAMES = ("alpha", "beta", "gamma", "delta", "epsilon")
ROWS = 30


@pytest.fixture
def server() -> Iterator[FaultServerProcess]:
    with FaultServerProcess() as srv:
        yield srv


class _Feed:
    """pexpect's ``logfile_read``: everything the REPL prints goes to the screen too."""

    def __init__(self, screen: Screen) -> None:
        self.screen = screen

    def write(self, data: str) -> None:
        self.screen.feed(data)

    def flush(self) -> None:
        pass


def spawn_on_screen(tmp_path: Path, config: str, columns: int) -> tuple[Terminal, Screen]:
    """The REPL with ``config``, in a terminal whose screen the test can read."""
    path = tmp_path / "config.toml"
    path.write_text(config, encoding="utf-8")
    workspace = tmp_path / "ws"
    workspace.mkdir(exist_ok=True)
    child = pexpect.spawn(
        sys.executable,
        ["-m", "qwen_dev_cli", "--config", str(path)],
        cwd=str(workspace),
        env={**os.environ, "TERM": "xterm-256color"},
        dimensions=(ROWS, columns),
        encoding="utf-8",
        timeout=30,
    )
    screen = Screen(ROWS, columns)
    child.logfile_read = _Feed(screen)
    terminal = Terminal(child)
    terminal.expect(r"\d tok")  # the status bar is up: the prompt is ready
    return terminal, screen


def crowded_config(srv: FaultServerProcess) -> str:
    """Five providers on the fault server; a retry waits 30 s or more."""
    body = f"provider_order = {list(NAMES)!r}\n".replace("'", '"')
    for name in NAMES:
        body += f'[providers.{name}]\nbase_url = "{srv.base_url}"\nmodel = "{name}-model"\n'
    body += "[retry]\nmax_retries = 2\nbase_delay = 30\nmax_delay = 30\n"
    return body + "[circuit_breaker]\nfailure_threshold = 5\n"


def settled_line(terminal: Terminal, screen: Screen, text: str, timeout: float = 15) -> str:
    """The bottom-most screen row holding ``text`` and the token count, once drawn
    whole (the output is read, and cursor-position requests answered, meanwhile)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = [row for row in screen.lines() if text in row and re.search(r"\d tok", row)]
        if rows:
            try:  # one more look: the row may be drawn in more than one write
                terminal.child.expect(re.escape(Terminal.CPR_REQUEST), timeout=0.2)
                terminal.child.send("\x1b[1;1R")
            except pexpect.TIMEOUT:
                return screen.line_with(text)
            continue
        assert time.monotonic() < deadline, "\n".join(screen.lines())
        try:
            terminal.child.expect(re.escape(Terminal.CPR_REQUEST), timeout=0.2)
            terminal.child.send("\x1b[1;1R")
        except pexpect.TIMEOUT:
            pass


def cut_words(line: str) -> list[str]:
    """Words of the bar that are a piece of a longer word it could hold (``beta-m``)."""
    whole = {*NAMES, *(f"{n}-model" for n in NAMES), "unavailable)", "budget:", "local", "tok"}
    return [w for w in line.split() if w not in whole and any(o.startswith(w) for o in whole)]


def assert_fits(line: str, columns: int) -> None:
    assert len(line) <= columns, line
    assert re.search(r"\b\d[\d,]* tok\b", line), line  # the token count stays
    assert re.search(r"\b\w+-model\b", line), line  # and the model
    assert cut_words(line) == [], line
    assert "…" not in line, line


@pytest.mark.parametrize("columns", [80, 120])
def test_the_bar_is_shortened_to_fit_never_cut(
    server: FaultServerProcess, tmp_path: Path, columns: int
) -> None:
    terminal, screen = spawn_on_screen(tmp_path, crowded_config(server), columns)
    idle = settled_line(terminal, screen, "alpha")
    assert_fits(idle, columns)
    server.script(*[Outcome.status(503)] * len(NAMES))
    terminal.sendline("hello")
    busy = settled_line(terminal, screen, "retry 1/2 in")
    assert_fits(busy, columns)
    assert "0% ok" in busy or columns == 80  # demoted providers say so, room permitting
    terminal.sendintr()  # stop the wait for the retry
    terminal.expect_exact("interrupted")
    terminal.expect(PROMPT)
    idle = settled_line(terminal, screen, "0% ok")  # every provider failed once: demoted
    assert_fits(idle, columns)
    assert "CLOSED" not in idle
    if columns == 120:
        for name in NAMES:
            assert f"● {name} 0% ok" in idle
    assert terminal.leave() == 0


@pytest.mark.parametrize("locale", [{"LANG": "C"}, {"LC_ALL": "C"}, {"LC_ALL": "POSIX"}])
def test_a_c_locale_terminal_gets_ascii(
    server: FaultServerProcess,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    locale: dict[str, str],
) -> None:
    for name in ("LANG", "LC_ALL", "LC_CTYPE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in locale.items():
        monkeypatch.setenv(name, value)
    terminal, screen = spawn_on_screen(tmp_path, write_config(tmp_path, server).read_text(), 100)
    bar = settled_line(terminal, screen, "lab")
    assert bar == "* lab CLOSED | lab - fault-model | 0 tok | approval ask | budget: local"
    terminal.sendline("hello")
    terminal.expect_exact(DEFAULT_TEXT)  # the answer itself passes through as it is
    terminal.expect(r"- lab - fault-model - \d+ tokens - ")
    terminal.expect_exact("> ")
    terminal.child.send("\x04")
    terminal.expect(r"session \S+ saved - resume: qwen-dev --resume \S+")
    terminal.child.expect(pexpect.EOF)
    shown = "\n".join(screen.lines())
    assert shown.replace(DEFAULT_TEXT, "").isascii(), shown
