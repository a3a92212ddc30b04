"""The tool calls a message makes, read the one way every layer reads them."""

from __future__ import annotations

from qwen_dev_cli.core.types import tool_calls_of


def test_each_call_gives_its_function_part_in_order() -> None:
    message = {
        "role": "assistant",
        "tool_calls": [
            {"id": "a", "type": "function", "function": {"name": "grep", "arguments": "{}"}},
            {"id": "b", "type": "function", "function": {"name": "glob", "arguments": "{}"}},
        ],
    }
    assert [f["name"] for f in tool_calls_of(message)] == ["grep", "glob"]


def test_whatever_a_file_or_server_holds_is_read_without_a_crash() -> None:
    odd = {"tool_calls": ["not a call", {"function": "not an object"}, {"id": "x"}, None]}
    assert tool_calls_of(odd) == [{}, {}, {}, {}]
    assert tool_calls_of({"role": "user", "content": "hi"}) == []
    assert tool_calls_of({"tool_calls": None}) == []
