"""Sessions at a glance: the turns of a conversation, abbreviated."""

from __future__ import annotations

from typing import Any

from qwen_dev_cli.session.summary import exchange_lines, recent, tool_call_line


def conversation(turns: int) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    for n in range(1, turns + 1):
        messages += [
            {"role": "user", "content": f"question {n}"},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {"id": f"c{n}", "function": {"name": "grep", "arguments": '{"pattern": "x"}'}}
                ],
            },
            {"role": "tool", "tool_call_id": f"c{n}", "content": "a.py:1: x"},
            {"role": "assistant", "content": f"answer {n}"},
        ]
    return messages


def test_recent_keeps_the_last_turns_each_with_its_tools_and_final_answer() -> None:
    turns = recent(conversation(5), 3)
    assert [t.asked for t in turns] == ["question 3", "question 4", "question 5"]
    assert turns[-1].tools == ("grep x",)
    assert turns[-1].answer == "answer 5"


def test_a_turn_is_a_few_lines_whatever_its_length() -> None:
    [turn] = recent(
        [
            {"role": "user", "content": "why?\n\nFile `a.py`:\n```\nx = 1\n```"},
            {"role": "assistant", "content": "\n".join(f"reason {i}" for i in range(50))},
        ]
    )
    assert exchange_lines(turn) == ["› why? …", "  reason 0", "  reason 1", "  … (48 more lines)"]


def test_a_tool_call_in_a_few_words() -> None:
    assert tool_call_line("edit_file", {"path": "src/app.py", "old_string": "a"}) == (
        "edit_file src/app.py"
    )
    assert tool_call_line("run_command", '{"command": "pytest -q"}') == "run_command pytest -q"
    assert tool_call_line("list_dir", {}) == "list_dir"
    assert tool_call_line("x", "{not json") == "x {not json"
