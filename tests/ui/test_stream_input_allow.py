"""A caller's ``allow`` with an ``updatedInput``: honoured for a command it rewrote,
refused for any other change, never ignored (review finding: the SDK always sends it,
and a caller that rewrote the input to make it safe had the original run)."""

from __future__ import annotations

from qwen_dev_cli.agent.turn import ApprovalRequest
from qwen_dev_cli.ui.stream_input import _allowed

WRITE = ApprovalRequest(kind="write", tool="write_file", summary="create a.txt")
COMMAND = ApprovalRequest(kind="command", tool="run_command", summary="run", command="rm -rf b")


def test_the_same_input_or_none_is_a_plain_allow() -> None:
    asked = {"path": "a.txt", "content": "x"}
    assert _allowed(WRITE, asked, None).approved
    assert _allowed(WRITE, asked, dict(asked)).approved


def test_a_rewritten_command_runs_as_rewritten() -> None:
    asked = {"command": "rm -rf b", "timeout": 30}
    decision = _allowed(COMMAND, asked, {"command": "rm -rf b/cache", "timeout": 30})
    assert decision.approved
    assert decision.edited_command == "rm -rf b/cache"


def test_any_other_change_is_refused_not_ignored() -> None:
    asked = {"path": "a.txt", "content": "x"}
    changed = _allowed(WRITE, asked, {"path": "other.txt", "content": "x"})
    assert not changed.approved
    assert "changed input" in (changed.reason or "")
    moved = _allowed(COMMAND, {"command": "ls", "cwd": "."}, {"command": "ls", "cwd": "/"})
    assert not moved.approved
    blank = _allowed(COMMAND, {"command": "ls"}, {"command": "  "})
    assert not blank.approved
