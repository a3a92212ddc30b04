"""Qwen-Agent's ✿FUNCTION✿ / ✿ARGS✿ calls."""

from __future__ import annotations

from qwen_dev_cli.agent.parser import parse_text
from qwen_dev_cli.agent.qwen_agent_calls import marked_calls

TOOLS = {"read_file", "list_dir"}


def test_calls_and_the_prose_before_them() -> None:
    text = (
        "Let me look around first.\n"
        '✿FUNCTION✿: list_dir\n✿ARGS✿: {"path": "."}\n'
        '✿FUNCTION✿: read_file\n✿ARGS✿: {"path": "setup.py"}'
    )
    reply = parse_text(text, TOOLS)
    assert reply.text == "Let me look around first."
    assert [(c.name, c.arguments) for c in reply.calls] == [
        ("list_dir", {"path": "."}),
        ("read_file", {"path": "setup.py"}),
    ]


def test_what_the_model_imagines_after_its_call_is_dropped() -> None:
    text = '✿FUNCTION✿: read_file\n✿ARGS✿: {"path": "a.py"}\n✿RESULT✿: x = 1\n✿RETURN✿: x is 1.'
    reply = parse_text(text, TOOLS)
    assert reply.text == ""
    assert [c.arguments for c in reply.calls] == [{"path": "a.py"}]


def test_full_width_colons_and_fenced_arguments() -> None:
    [call] = marked_calls('✿FUNCTION✿：read_file\n✿ARGS✿：```json\n{"path": "a.py"}\n```', 0)
    assert (call.name, call.arguments) == ("read_file", '{"path": "a.py"}')


def test_problems_for_the_model() -> None:
    reply = parse_text("✿FUNCTION✿: fly\n✿ARGS✿: {}\n✿FUNCTION✿:\n✿ARGS✿: {}", TOOLS)
    assert [p.reason for p in reply.problems] == [
        "there is no tool 'fly' (the tools are list_dir, read_file)",
        "the call has no tool name",
    ]
    assert {p.form for p in reply.problems} == {"qwen_agent"}
    [bad] = parse_text("✿FUNCTION✿: read_file\n✿ARGS✿: [1]", TOOLS).problems
    assert "not a JSON object" in bad.reason


def test_a_call_without_arguments() -> None:
    [call] = parse_text("✿FUNCTION✿: list_dir", TOOLS).calls
    assert call.arguments == {}


def test_markers_in_code_are_prose() -> None:
    text = '```\n✿FUNCTION✿: read_file\n✿ARGS✿: {"path": "a.py"}\n```'
    assert parse_text(text, TOOLS).calls == ()
