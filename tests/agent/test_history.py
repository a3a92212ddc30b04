"""Histories that a crash or an interruption left with a tool call unanswered."""

from __future__ import annotations

from qwen_dev_cli.agent.agent import close_unanswered


def test_unanswered_calls_in_an_old_history_are_closed() -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "grep", "arguments": "{}"}}
    history = [
        {"role": "user", "content": "find it"},
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "user", "content": "never mind"},
    ]
    repaired = close_unanswered(history)
    assert [m["role"] for m in repaired] == ["user", "assistant", "tool", "user"]
    assert repaired[2]["tool_call_id"] == "c1"
    assert close_unanswered(repaired) == repaired
