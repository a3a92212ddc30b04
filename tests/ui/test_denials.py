"""What `ask` says about the tool calls it did not run, and how to allow them."""

from __future__ import annotations

from qwen_dev_cli.agent.approval import NO_TERMINAL, NO_TERMINAL_CRITICAL, NO_TERMINAL_NO_SANDBOX
from qwen_dev_cli.agent.turn import ToolCallFinished, ToolCallStarted
from qwen_dev_cli.tools.sandbox import SandboxStatus
from qwen_dev_cli.ui.denials import DenialLog

NO_SANDBOX = SandboxStatus(None, "bwrap not found")


def denied(log: DenialLog, name: str, reason: str, **arguments: object) -> None:
    call_id = f"c{len(log.denials)}"
    log(ToolCallStarted(call_id, name, dict(arguments)))
    log(ToolCallFinished(call_id, name, "denied", reason))


def test_nothing_denied_nothing_said() -> None:
    log = DenialLog()
    log(ToolCallStarted("c", "read_file", {"path": "a.py"}))
    log(ToolCallFinished("c", "read_file", "ok", "x = 1"))
    assert log.report(NO_SANDBOX) == []


def test_without_a_sandbox_yolo_is_not_offered_for_commands() -> None:
    log = DenialLog()
    denied(log, "edit_file", NO_TERMINAL, path="a.py")
    denied(log, "run_command", NO_TERMINAL, command="make")
    lines = log.report(NO_SANDBOX)
    assert lines[1:3] == ["  edit_file a.py", "  run_command make"]
    assert "--approval auto-edit runs file edits" in lines[3]
    assert "yolo" not in lines[3]
    assert "no OS sandbox (bwrap not found)" in lines[3]


def test_yolo_without_a_sandbox_and_critical_commands_are_told_apart() -> None:
    log = DenialLog()
    denied(log, "run_command", NO_TERMINAL_NO_SANDBOX.format(detail="none"), command="ls")
    denied(log, "run_command", NO_TERMINAL_CRITICAL.format(reasons="rm -rf ~"), command="rm -rf ~")
    hint = log.report(NO_SANDBOX)[3]
    assert "no OS sandbox" in hint
    assert "critical commands never run unasked" in hint


def test_denials_that_no_mode_would_allow_get_their_reason_and_no_hint() -> None:
    log = DenialLog()
    denied(log, "read_file", "not run: one reply may make at most 32 tool calls", path="a")
    assert log.report(NO_SANDBOX) == [
        "1 tool call was denied:",
        "  read_file a (not run: one reply may make at most 32 tool calls)",
    ]
