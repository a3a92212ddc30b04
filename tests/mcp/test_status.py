"""The status bar's ``mcp 2/3``: servers ready/started, shown while one starts (busy)
or once one failed (a warning), gone when all are ready, shortened after the budget
store, before the model."""

from __future__ import annotations

from qwen_dev_cli.core.status import ClientStatus
from qwen_dev_cli.ui.statusbar import StatusBar


def bar(counts: tuple[int, int, bool] | None) -> StatusBar:
    snapshot = ClientStatus([], None, "m", None, 0)
    return StatusBar(lambda: snapshot, mcp=lambda: counts)


def test_starting_servers_show_as_busy() -> None:
    fragments = bar((1, 3, True)).fragments()
    assert ("qd.busy", "mcp 1/3") in fragments


def test_a_failed_server_shows_as_a_warning() -> None:
    fragments = bar((2, 3, False)).fragments()
    assert ("qd.warning", "mcp 2/3") in fragments


def test_all_ready_or_none_configured_says_nothing() -> None:
    assert "mcp" not in bar((3, 3, False)).plain()
    assert "mcp" not in bar(None).plain()


def test_a_narrow_line_keeps_the_model_longer_than_the_servers() -> None:
    line = bar((0, 2, True))
    assert "mcp 0/2" in line.plain(len(line.plain()))
    kept = "no provider │ mcp 0/2 │ 0 tok"
    assert line.plain(len(kept)) == kept  # the budget store goes first
    assert line.plain(len("no provider")) == "no provider"
