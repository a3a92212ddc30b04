"""Native calls, argument decoding and the choice between native and text calls."""

from __future__ import annotations

import tracemalloc

import pytest

from qwen_dev_cli.agent.json_repair import RepairError
from qwen_dev_cli.agent.parser import (
    decode_arguments,
    parse_native,
    parse_reply,
    parse_text,
    unfinished,
)
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


def test_a_call_in_an_indented_code_block_is_prose() -> None:
    call = "<function=read_file>\n<parameter=path>\na\n</parameter>\n</function>"
    indented = "".join(f"    {line}\n" for line in call.splitlines())
    for shown in (indented, indented.replace("    ", "\t"), "  \t" + indented.lstrip()):
        reply = parse_text(f"Like this:\n\n{shown}\nDone.", {"read_file"})
        assert reply.calls == ()
    # four spaces that continue a paragraph are not code; nor are indented lines inside
    # a call's value (a file's content)
    assert len(parse_text(f"Now:\n{indented}", {"read_file"}).calls) == 1
    content = "def f():\n\n    return 1\n"
    wrapped = f"<tool_call>\n<function=write_file>\n<parameter=content>\n{content}</parameter>"
    [written] = parse_text(wrapped + "\n</function>\n</tool_call>", {"write_file"}).calls
    assert written.arguments["content"] == content.rstrip("\n")


def test_unfinished_names_the_repairs_that_supplied_a_calls_end() -> None:
    [cut] = parse_text('<tool_call>{"name": "run_command", "arguments": {"command": "ls"').calls
    assert unfinished(cut) == ["missing closing bracket"]
    xml = "<tool_call>\n<function=run_command>\n<parameter=command>\nls\n</parameter>\n"
    [cut] = parse_text(xml, {"run_command"}).calls
    assert "missing </function>" in unfinished(cut)
    [whole] = parse_text(xml + "</function>", {"run_command"}).calls
    assert unfinished(whole) == []


def test_a_huge_answer_is_read_without_copies_of_it() -> None:
    # Issue 22, finding 13: finding the code in an answer made a list of its characters
    # (eight bytes each), and the calls past the limit were listed to be counted.
    size = 1 << 20
    answers = {
        "prose": ("Plain prose, line after line.\n" * (size // 30))[:-1] + ".",
        "calls": "<tool_call>{" * (size // 12),
        "marked": "✿FUNCTION✿: read_file\n✿ARGS✿: {}\n" * (size // 33),
    }
    for kind, text in answers.items():
        tracemalloc.start()
        try:
            reply = parse_text(text, {"read_file"}, limit=32)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert len(reply.calls) + len(reply.problems) == (0 if kind == "prose" else 32)
        assert peak < 0.5 * len(text), (kind, peak)
