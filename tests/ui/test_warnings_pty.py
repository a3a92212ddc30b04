"""Warnings that arrive while the prompt waits (issue 24, item 4): a Redis state store
that went away is said above the prompt, on lines of its own, never in the line being
typed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from faultserver import DEFAULT_TEXT, FaultServerProcess
from tests.redis_server import RedisServer, requires_redis_server

from .screen import Screen
from .test_repl_pty import write_config
from .test_statusbar_pty import settled_line, spawn_on_screen

pytestmark = [pytest.mark.slow, requires_redis_server]


@pytest.fixture
def server() -> Iterator[FaultServerProcess]:
    with FaultServerProcess() as srv:
        yield srv


def test_a_redis_gone_away_is_said_above_the_prompt(
    server: FaultServerProcess, tmp_path: Path
) -> None:
    redis = RedisServer()
    redis.start()
    try:
        config = write_config(tmp_path, server).read_text(encoding="utf-8")
        config += f'\n[state]\nstore = "{redis.url}"\n'
        child, screen = spawn_on_screen(tmp_path, config, 100)
        scrolled = keep_scrollback(screen)
        child.sendline("hello")
        child.expect_exact(DEFAULT_TEXT)
        settled_line(child, screen, "tok")
        child.send("half a line")  # the user is typing when the store goes away
        redis.stop()
        deadline = time.monotonic() + 20
        while not any("unavailable" in line for line in [*scrolled, *screen.lines()]):
            assert time.monotonic() < deadline, "\n".join([*scrolled, *screen.lines()])
            settled_line(child, screen, "tok", timeout=1)
        settled_line(child, screen, "per-process")  # redrawn after the warning
        rows = [*scrolled, *screen.lines()]
        warning = next(i for i, line in enumerate(rows) if "unavailable" in line)
        typed = next(i for i, line in enumerate(rows) if "half a line" in line)
        assert warning < typed, "\n".join(rows)
        assert "half a line" not in rows[warning]
        assert child.leave("\x15/exit\r") == 0
    finally:
        redis.stop()


def keep_scrollback(screen: Screen) -> list[str]:
    """The rows that scroll off the top of ``screen``, kept as a terminal's scrollback
    keeps them (the prompt's bottom toolbar scrolls what is above it away)."""
    scrolled: list[str] = []
    line_feed = screen._line_feed

    def keep() -> None:
        if screen.row == screen.rows - 1:
            scrolled.append("".join(screen.cells[0]).rstrip())
        line_feed()

    screen._line_feed = keep  # type: ignore[method-assign]  # a terminal's scrollback
    return scrolled
