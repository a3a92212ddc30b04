"""What a turn looks like while it runs: events to lines, and a throttled live footer."""

from __future__ import annotations

import io
from typing import Any

from qwen_dev_cli.agent.turn import (
    AssistantText,
    FileChanged,
    ToolCallFinished,
    ToolCallRecord,
    ToolCallStarted,
    TurnEnded,
    TurnResult,
)
from qwen_dev_cli.core import Usage
from qwen_dev_cli.core.events import Failover, RetryScheduled
from qwen_dev_cli.core.status import ClientStatus, ProviderStatus
from qwen_dev_cli.ui.statusbar import StatusBar
from qwen_dev_cli.ui.symbols import UNICODE
from qwen_dev_cli.ui.theme import make_console
from qwen_dev_cli.ui.turnview import TurnView, summary

DIFF = "--- a/x.py\n+++ b/x.py\n@@ -1 +1,2 @@\n-old\n+new\n+more\n"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def view(clock: Clock | None = None) -> tuple[TurnView, io.StringIO]:
    screen = io.StringIO()
    provider = ProviderStatus("lab", "m", "CLOSED", 0, 0, None, None, None, None, None)
    status = StatusBar(lambda: ClientStatus([provider], None, None, None, 0))
    clock = clock or Clock()
    return TurnView(make_console(file=screen, width=100), status, get_time=clock), screen


def result(**changes: object) -> TurnResult:
    fields: dict[str, Any] = {
        "text": "done",
        "provider": "lab",
        "model": "m",
        "usage": Usage(10, 5, 1234),
        "attempts": 1,
        "latency_ms": 1500.0,
        "steps": 1,
    }
    fields.update(changes)
    return TurnResult(**fields)


async def test_a_turn_with_tools_reads_as_it_happened() -> None:
    turn, screen = view()
    async with turn:
        turn(AssistantText("Let me look.\n"))
        turn(ToolCallStarted("c1", "read_file", {"path": "x.py"}))
        turn(ToolCallFinished("c1", "read_file", "ok", "print(1)"))
        turn(ToolCallStarted("c2", "edit_file", {"path": "x.py"}))
        turn(FileChanged("c2", "x.py", DIFF))
        turn(ToolCallFinished("c2", "edit_file", "ok", "edited"))
        turn(ToolCallStarted("c3", "run_command", {"command": "rm -rf /"}))
        turn(ToolCallFinished("c3", "run_command", "denied", "the user declined\nmore"))
        turn(AssistantText("All done."))
        calls = [ToolCallRecord("read_file", {}, "ok")] * 3
        turn(TurnEnded(result(attempts=2, tool_calls=calls)))
    lines = [line.rstrip() for line in screen.getvalue().splitlines()]
    assert lines == [
        "Let me look.",
        "⚙ read_file path='x.py'",
        "  ✓ read_file ok",
        "⚙ edit_file path='x.py'",
        "  ✎ x.py (+2 -1)",
        "  ✓ edit_file ok",
        "⚙ run_command command='rm -rf /'",
        "  ✗ run_command denied: the user declined",
        "All done.",
        "─ lab · m · 1,234 tokens · 1.5s · 2 attempts · 3 tool calls",
    ]


async def test_retries_are_noted_before_the_answer_not_inside_it() -> None:
    turn, screen = view()
    async with turn:
        turn.client_event(RetryScheduled(1, 3, 1.0, "503 unavailable"))
        turn(AssistantText("First paragraph.\n\nSecond"))
        turn.client_event(Failover("a", "b", "reset"))
        turn(TurnEnded(result()))
    shown = screen.getvalue()
    assert "↻ retry 1/3 in 1.0s (503 unavailable)" in shown
    assert "failover" not in shown


async def test_the_footer_is_redrawn_throttled_and_at_least_every_status_interval() -> None:
    clock = Clock()
    turn, _ = view(clock)
    async with turn:
        start = turn.refreshes
        for _ in range(10):  # ten chunks within one frame: one redraw at most
            turn(AssistantText("x"))
            clock.now += 0.001
            turn.refresh_if_due()
        assert turn.refreshes - start <= 1
        clock.now += turn.frame_interval
        turn(AssistantText("y"))
        turn.refresh_if_due()
        idle_from = turn.refreshes
        clock.now += turn.frame_interval  # nothing changed: not yet
        turn.refresh_if_due()
        assert turn.refreshes == idle_from
        clock.now += turn.status_interval  # the status line is due regardless
        turn.refresh_if_due()
        assert turn.refreshes == idle_from + 1


async def test_one_tool_call_is_counted_in_the_singular() -> None:
    turn, screen = view()
    async with turn:
        calls = [ToolCallRecord("read_file", {}, "ok")]
        turn(TurnEnded(result(usage=Usage(1, 0, 1), tool_calls=calls)))
    assert "─ lab · m · 1 token · 1.5s · 1 tool call" in screen.getvalue()


async def test_a_command_shows_the_end_of_its_output_and_where_the_rest_is() -> None:
    turn, screen = view()
    output = "exit code 1\n" + "\n".join(f"line {n}" for n in range(1, 13))
    async with turn:
        turn(ToolCallStarted("c1", "run_command", {"command": "pytest -q"}))
        turn(ToolCallFinished("c1", "run_command", "error", output))
    lines = [line.rstrip() for line in screen.getvalue().splitlines()]
    assert lines[1:] == [
        "  ✗ run_command error: exit code 1",
        "    │ line 8",
        "    │ line 9",
        "    │ line 10",
        "    │ line 11",
        "    │ line 12",
        "    … the last 5 of 12 lines: /output shows it all",
    ]


async def test_a_short_command_output_is_shown_whole_and_no_output_shows_nothing() -> None:
    turn, screen = view()
    async with turn:
        turn(ToolCallFinished("c1", "run_command", "ok", "exit code 0\nall 3 passed\n"))
        turn(ToolCallFinished("c2", "run_command", "ok", "exit code 0\n(no output)"))
        edited = "(the user changed the command to: ls)\nexit code 0\nREADME.md"
        turn(ToolCallFinished("c3", "run_command", "ok", edited))
    lines = [line.rstrip() for line in screen.getvalue().splitlines()]
    assert lines == [
        "  ✓ run_command ok",
        "    │ all 3 passed",
        "  ✓ run_command ok",
        "  ✓ run_command ok",
        "    │ README.md",
    ]


async def test_a_failover_is_worded_for_a_person() -> None:
    turn, screen = view()
    async with turn:
        turn.client_event(Failover("alpha", "beta", "503 unavailable"))
    assert "↻ alpha failed (503 unavailable), trying beta" in screen.getvalue()


class AsciiScreen(io.StringIO):
    """A stream whose encoding cannot hold the Unicode symbols."""

    @property
    def encoding(self) -> str:  # type: ignore[override]  # StringIO says None
        return "ascii"


async def test_an_ascii_terminal_gets_ascii_symbols() -> None:
    screen = AsciiScreen()
    provider = ProviderStatus("lab", "m", "CLOSED", 0, 0, None, None, None, None, None)
    status = StatusBar(lambda: ClientStatus([provider], None, None, None, 0))
    async with TurnView(make_console(file=screen, width=100), status) as turn:
        turn(ToolCallStarted("c1", "run_command", {"command": "make"}))
        turn(ToolCallFinished("c1", "run_command", "ok", "exit code 0\nbuilt"))
        turn(ToolCallFinished("c2", "read_file", "error", "no such file"))
        turn(TurnEnded(result(tool_calls=[ToolCallRecord("run_command", {}, "ok")])))
    shown = screen.getvalue()
    assert shown.isascii()
    assert "* run_command command='make'" in shown
    assert "  + run_command ok" in shown
    assert "    | built" in shown
    assert "  x read_file error: no such file" in shown
    assert "- lab - m - 1,234 tokens - 1.5s - 1 tool call" in shown


def test_the_summary_says_when_an_answer_was_cut_or_stopped() -> None:
    assert "answer cut at its token limit" in summary(result(finish_reason="length"), UNICODE)
    looping = summary(result(finish_reason="repetition"), UNICODE)
    assert "answer stopped: the model was repeating itself" in looping
    assert "answer" not in summary(result(finish_reason="stop"), UNICODE).split("tok")[1]
