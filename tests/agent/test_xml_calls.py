"""Qwen3-Coder's XML calls: values typed by the tool's schema, repairs, problems, and the
work a hostile answer can cost. (The corpus holds the realistic samples.)"""

from __future__ import annotations

import time
from typing import Any

import pytest

from qwen_dev_cli.agent.parser import parse_text
from qwen_dev_cli.agent.xml_calls import typed_value, unframe

SCHEMAS: dict[str, dict[str, Any]] = {
    "calculate_area": {
        "type": "object",
        "properties": {
            "shape": {"type": "string"},
            "dimensions": {"type": "object"},
            "precision": {"type": "integer"},
            "scale": {"type": "number"},
            "exact": {"type": "boolean"},
            "sides": {"type": "array"},
            "label": {"type": ["string", "null"]},
            "limit": {"type": ["integer", "null"]},
            "unit": {"type": "string", "enum": ["cm", "in"]},
            "weight": {"anyOf": [{"type": "number"}, {"type": "null"}]},
        },
        "required": ["shape"],
    }
}


def xml(**parameters: str) -> str:
    body = "".join(f"<parameter={k}>\n{v}\n</parameter>\n" for k, v in parameters.items())
    return f"<tool_call>\n<function=calculate_area>\n{body}</function>\n</tool_call>"


def arguments(text: str) -> dict[str, Any]:
    reply = parse_text(text, SCHEMAS)
    assert reply.problems == (), reply.problems
    [call] = reply.calls
    return call.arguments


def test_values_are_typed_by_the_schema() -> None:
    assert arguments(
        xml(
            shape="rectangle",
            dimensions='{"width": 10,\n "height": 20}',
            precision="2",
            scale="1.5",
            exact="True",
            sides="[3, 4, 5]",
            unit="cm",
        )
    ) == {
        "shape": "rectangle",
        "dimensions": {"width": 10, "height": 20},
        "precision": 2,
        "scale": 1.5,
        "exact": True,
        "sides": [3, 4, 5],
        "unit": "cm",
    }


@pytest.mark.parametrize(
    ("name", "raw", "value"),
    [
        ("precision", "-3", -3),
        ("precision", "4.0", 4),  # a whole number written as a float
        ("scale", "2", 2),
        ("scale", "1e3", 1000.0),
        ("exact", "false", False),
        ("dimensions", "{'radius': 15.5,}", {"radius": 15.5}),  # repaired like any JSON
        ("label", "null", None),
        ("label", "a label", "a label"),
        ("limit", "null", None),
        ("limit", "7", 7),
        ("weight", "2.5", 2.5),
        ("precision", "None", None),
        ("shape", "42", "42"),  # a string stays a string
        ("shape", "null", "null"),
        ("undeclared", "12", "12"),  # not in the schema: as written
    ],
)
def test_each_type(name: str, raw: str, value: object) -> None:
    assert arguments(xml(**{"shape": "x", name: raw}))[name] == value


@pytest.mark.parametrize(
    ("name", "raw", "reason"),
    [
        ("precision", "abc", "parameter 'precision' must be an integer, not 'abc'"),
        ("precision", "2.5", "must be an integer"),
        ("scale", "nan", "must be a number"),
        ("scale", "inf", "must be a number"),
        ("scale", "1_000", "must be a number"),
        ("exact", "yes", "must be true or false"),
        ("dimensions", "[1, 2]", "must be a JSON object"),
        ("dimensions", "{unclosed", "must be a JSON object"),
        ("sides", '{"a": 1}', "must be a JSON array"),
        ("limit", "many", "must be an integer or null, not 'many'"),
        ("precision", "9" * 500, "must be an integer"),
    ],
)
def test_an_untypable_value_is_a_problem_for_the_model(name: str, raw: str, reason: str) -> None:
    reply = parse_text(xml(**{"shape": "x", name: raw}), SCHEMAS)
    assert reply.calls == ()
    [problem] = reply.problems
    assert reason in problem.reason
    assert problem.name == "calculate_area"
    assert problem.form == "qwen3_coder"
    assert problem.raw.startswith("<tool_call>")


def test_without_schemas_values_stay_strings_and_any_name_counts_in_a_tag() -> None:
    reply = parse_text(xml(shape="x", precision="2"))
    assert [(c.name, c.arguments) for c in reply.calls] == [
        ("calculate_area", {"shape": "x", "precision": "2"})
    ]


def test_an_unknown_tool_is_a_problem_naming_the_tools() -> None:
    [problem] = parse_text(xml(shape="x").replace("calculate_area", "nuke"), SCHEMAS).problems
    assert problem.reason == "there is no tool 'nuke' (the tools are calculate_area)"
    assert problem.name == "nuke"


def test_repairs_are_recorded() -> None:
    text = "<tool_call>\n<function=calculate_area>\n<parameter=shape>\nsquare\n</tool_call>"
    [call] = parse_text(text, SCHEMAS).calls
    assert call.arguments == {"shape": "square"}
    assert "missing </parameter>" in call.repairs
    [call] = parse_text(xml(shape="a").replace("</tool_call>", ""), SCHEMAS).calls
    assert call.repairs == ("missing </tool_call>",)
    [call] = parse_text(xml(shape="a", precision="1") + xml(shape="b"), SCHEMAS).calls[:1]
    assert call.repairs == ()


def test_a_parameter_given_twice_is_a_problem_not_a_guess() -> None:
    text = xml(shape="a").replace("</function>", "<parameter=shape>\nb\n</parameter>\n</function>")
    reply = parse_text(text, SCHEMAS)
    assert reply.calls == ()
    [problem] = reply.problems
    assert "its parameter 'shape' is given twice" in problem.reason


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        ("\nhello\n", "hello"),
        ("hello", "hello"),
        ("\r\nhello\r\n", "hello"),
        ("\n\nblank line first\n", "\nblank line first"),
        ("\nkeeps trailing newline\n\n", "keeps trailing newline\n"),
        ("  \n  indented\n", "  indented"),  # blanks after the tag are not the value's
        ("\n    a\n      b\n    ", "a\n  b"),  # the closing tag's indentation comes off
        ("\n    a\n  b\n    ", "    a\n  b"),  # unless a line has less
    ],
)
def test_a_value_loses_only_its_framing(raw: str, text: str) -> None:
    assert unframe(raw)[0] == text


def test_typed_value_alone() -> None:
    assert typed_value("n", "\n 12 \n", {"type": "integer"}) == (12, ())
    with pytest.raises(ValueError, match="parameter 'n' must be true or false, not 'x'"):
        typed_value("n", "x", {"type": "boolean"})


def test_a_call_cut_anywhere_never_raises() -> None:
    text = xml(shape="rectangle", dimensions='{"w": 1}', precision="2")
    for end in range(len(text) + 1):
        reply = parse_text(text[:end], SCHEMAS)
        assert len(reply.calls) + len(reply.problems) <= 1


HOSTILE = {
    "unclosed tags": "<tool_call>\n<function=read_file>\n<parameter=path>\na\n",
    "names never closed": "<tool_call><function=",
    "parameters never closed": "<parameter=a>x",
    "closing tags inside values": "</parameter>x",
    "function ends inside values": "</function>y",
    "bare functions": "<function=read_file>\n<parameter=path>\nx",
    "markers": '✿FUNCTION✿: read_file ✿ARGS✿: {"a": ',
    "json tags": "<tool_call>{",
    "backticks": "`",
    "fences": "```\n<tool_call>\n",
    "invented responses": "<tool_response>\n",
}


@pytest.mark.parametrize("unit", HOSTILE.values(), ids=list(HOSTILE))
def test_hostile_answers_take_linear_time(unit: str) -> None:
    """Doubling the answer about doubles the time (a quadratic parser quadruples it, and
    on these inputs would take minutes)."""
    schemas = {"read_file": {"type": "object", "properties": {}}}

    def cost(size: int) -> float:
        # This process's CPU time, the best of three: other processes on a loaded
        # machine neither stretch it nor make the ratio flap.
        text = unit * (size // len(unit))
        runs = []
        for _ in range(3):
            started = time.process_time()
            parse_text(text, schemas)
            runs.append(time.process_time() - started)
        return min(runs)

    cost(20_000)  # warm up
    small, large = cost(100_000), cost(400_000)
    assert large < 12 * small + 0.05


def test_a_value_the_answer_ended_inside_is_not_run() -> None:
    # An answer cut at its token limit (or stopped looping) inside a command must not
    # run the half that arrived: `rm -rf ./` of `rm -rf ./build`.
    cut = "<tool_call>\n<function=run_command>\n<parameter=command>\nrm -rf ./"
    reply = parse_text(cut, ["run_command"])
    assert reply.calls == ()
    [problem] = reply.problems
    assert "cut off where the answer ended" in problem.reason
    bare = parse_text("<function=run_command>\n<parameter=command>\nrm -rf ./", ["run_command"])
    assert bare.calls == ()
