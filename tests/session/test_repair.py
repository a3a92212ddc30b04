"""The one repair of tool calls left without a result."""

from __future__ import annotations

from typing import Any

from qwen_dev_cli.session.repair import (
    STOPPED,
    close_unanswered,
    tool_result,
    unanswered,
    unanswered_at_end,
)


def _call(call_id: str, name: str = "grep") -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": "{}"}}


def _asks(*calls: dict[str, Any]) -> dict[str, Any]:
    return {"role": "assistant", "content": "", "tool_calls": list(calls)}


USER = {"role": "user", "content": "find it"}


def test_a_gap_in_the_middle_is_closed_in_place() -> None:
    history = [USER, _asks(_call("c1")), {"role": "user", "content": "never mind"}]
    repaired = close_unanswered(history)
    assert [m["role"] for m in repaired] == ["user", "assistant", "tool", "user"]
    assert repaired[2] == tool_result("c1", "grep", STOPPED)
    assert close_unanswered(repaired) == repaired
    assert len(history) == 3  # the input is left alone


def test_only_the_calls_without_a_result_are_answered_in_call_order() -> None:
    history = [
        USER,
        _asks(_call("c1"), _call("c2", "read_file"), _call("c3", "run_command")),
        tool_result("c2", "read_file", "text"),
    ]
    assert unanswered(history) == [
        (3, tool_result("c1", "grep", STOPPED)),
        (3, tool_result("c3", "run_command", STOPPED)),
    ]
    assert unanswered_at_end(history) == [
        tool_result("c1", "grep", STOPPED),
        tool_result("c3", "run_command", STOPPED),
    ]
    assert close_unanswered(history)[3:] == unanswered_at_end(history)


def test_the_model_is_not_told_a_killed_call_did_nothing() -> None:
    # A command killed halfway may have changed files: "not run" alone would mislead.
    assert "check its effect" in STOPPED


def test_gaps_at_the_end_and_further_up_are_told_apart() -> None:
    history = [USER, _asks(_call("old")), USER, _asks(_call("new"))]
    assert [where for where, _ in unanswered(history)] == [2, 4]
    assert [m["tool_call_id"] for m in unanswered_at_end(history)] == ["new"]


def test_answered_calls_calls_without_ids_and_plain_answers_need_nothing() -> None:
    history = [
        USER,
        _asks(_call("c1")),
        tool_result("c1", "grep", "found"),
        _asks({"type": "function", "function": {"name": "grep"}}),
        {"role": "assistant", "content": "done"},
    ]
    assert unanswered(history) == []
    assert close_unanswered(history) == history
