"""The one conversation rendered for native and text-protocol providers."""

from __future__ import annotations

from typing import Any

from qwen_dev_cli.agent import protocol
from qwen_dev_cli.agent.parser import CallProblem, ToolCall

CALL = ToolCall("call_1", "read_file", {"path": "a.py"})
CONVERSATION: list[dict[str, Any]] = [
    {"role": "user", "content": "read a.py and b.py"},
    protocol.assistant_message(
        "Reading.",
        [protocol.call_entry(CALL), protocol.problem_entry("call_2", CallProblem("bad", "{x"))],
    ),
    protocol.tool_message("call_1", "read_file", "A"),
    protocol.tool_message("call_2", "unparsed_call", "Error: bad"),
    {"role": "assistant", "content": "Done."},
]


def test_native_keeps_the_calls_and_drops_the_tool_name() -> None:
    rendered = protocol.render(CONVERSATION, native=True)
    assert rendered[1] == CONVERSATION[1]
    assert rendered[2] == {"role": "tool", "tool_call_id": "call_1", "content": "A"}
    assert rendered[1]["tool_calls"][1]["function"] == {"name": "unparsed_call", "arguments": "{}"}


def test_text_writes_calls_into_the_answer_and_merges_results() -> None:
    rendered = protocol.render(CONVERSATION, native=False)
    assert rendered == [
        {"role": "user", "content": "read a.py and b.py"},
        {
            "role": "assistant",
            "content": 'Reading.\n<tool_call>\n{"name": "read_file", "arguments": {"path": "a.py"}}'
            '\n</tool_call>\n<tool_call>\n{"name": "unparsed_call", "arguments": {}}\n</tool_call>',
        },
        {
            "role": "user",
            "content": "<tool_response>\nA\n</tool_response>\n"
            "<tool_response>\nError: bad\n</tool_response>",
        },
        {"role": "assistant", "content": "Done."},
    ]


def test_rendering_does_not_change_the_conversation() -> None:
    before = repr(CONVERSATION)
    protocol.render(CONVERSATION, native=False)
    protocol.render(CONVERSATION, native=True)
    assert repr(CONVERSATION) == before
