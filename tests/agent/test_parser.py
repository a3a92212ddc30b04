"""Native calls, argument decoding and the choice between native and text calls."""

from __future__ import annotations

import pytest

from qwen_dev_cli.agent.json_repair import RepairError
from qwen_dev_cli.agent.parser import decode_arguments, parse_native, parse_reply, parse_text
from qwen_dev_cli.core import ToolCall as NativeCall


def test_native_arguments_are_decoded() -> None:
    calls, problems = parse_native(
        [
            NativeCall("c1", "read_file", '{"path": "a.py"}'),
            NativeCall("c2", "list_dir", ""),
            NativeCall("c3", "grep", "{'pattern': 'x',}"),
        ]
    )
    assert [(c.id, c.name, c.arguments) for c in calls] == [
        ("c1", "read_file", {"path": "a.py"}),
        ("c2", "list_dir", {}),
        ("c3", "grep", {"pattern": "x"}),
    ]
    assert calls[2].repairs == ("single quotes", "trailing comma")
    assert problems == []


def test_unusable_native_calls_become_problems_with_their_id() -> None:
    calls, problems = parse_native(
        [NativeCall("c1", "read_file", "path=a.py"), NativeCall("c2", "", "{}")]
    )
    assert calls == []
    assert [(p.id, p.name) for p in problems] == [("c1", "read_file"), ("c2", None)]
    assert "invalid JSON" in problems[0].reason
    assert "no tool name" in problems[1].reason


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ({"a": 1}, {"a": 1}),
        (None, {}),
        ("", {}),
        ('"{\\"path\\": \\"a.py\\"}"', {"path": "a.py"}),
    ],
)
def test_decode_arguments(raw: object, value: dict[str, object]) -> None:
    assert decode_arguments(raw)[0] == value


def test_arguments_must_be_an_object() -> None:
    with pytest.raises(RepairError, match="not a JSON object but list"):
        decode_arguments("[1, 2]")


def test_native_calls_win_and_text_is_the_fallback() -> None:
    text = 'Reading.\n<tool_call>{"name": "read_file", "arguments": {"path": "b.py"}}</tool_call>'
    native = parse_reply("Reading.", [NativeCall("c1", "read_file", '{"path": "a.py"}')])
    assert [c.arguments for c in native.calls] == [{"path": "a.py"}]
    assert native.text == "Reading."
    fallback = parse_reply(text, [], {"read_file"})
    assert [c.arguments for c in fallback.calls] == [{"path": "b.py"}]
    assert fallback.text == "Reading."
    assert fallback.calls[0].id.startswith("call_")


def test_a_limit_stops_decoding_and_counts_the_calls_left_unread() -> None:
    text = "intro <tool_call>{" * 10_000 + " <function=read_file>\n<parameter=path>a</parameter>"
    reply = parse_text(text, {"read_file"}, limit=32)
    assert len(reply.calls) + len(reply.problems) == 32
    assert reply.unread == 10_000 - 32
    assert reply.text.startswith("intro")
    assert "<tool_call>" not in reply.text
    fenced = '```json\n{"name": "read_file", "arguments": {"path": "a"}}\n```\n' * 50
    reply = parse_text(fenced, {"read_file"}, limit=32)
    assert (len(reply.calls), reply.unread, reply.text) == (32, 18, "")
    marked = "✿FUNCTION✿: read_file\n✿ARGS✿: {}\n" * 40
    reply = parse_text(marked, {"read_file"}, limit=32)
    assert (len(reply.calls), reply.unread) == (32, 8)
    bare = "<function=read_file>\n<parameter=path>a</parameter>\n</function>\n" * 40
    reply = parse_text(bare, {"read_file"}, limit=32)
    assert (len(reply.calls), reply.unread) == (32, 8)
