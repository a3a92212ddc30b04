"""Lenient JSON: what gets repaired, and what is reported."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qwen_dev_cli.agent.json_repair import RepairError, loads_lenient

REPAIRS: list[tuple[str, Any, str]] = [
    ('{"a": 1,}', {"a": 1}, "trailing comma"),
    ("[1, 2,]", [1, 2], "trailing comma"),
    ("{'path': 'a.py'}", {"path": "a.py"}, "single quotes"),
    ("{'msg': 'it\\'s'}", {"msg": "it's"}, "single quotes"),
    ("{'msg': 'it's fine'}", {"msg": "it's fine"}, "single quotes"),
    ('{"x": True, "y": False, "z": None}', {"x": True, "y": False, "z": None}, "Python literal"),
    ('{"c": "one\ntwo"}', {"c": "one\ntwo"}, "unescaped newline in a string"),
    ('{"a": {"b": 1}', {"a": {"b": 1}}, "missing closing bracket"),
    ('{"a": [1, 2', {"a": [1, 2]}, "missing closing bracket"),
    ('{"a": [1}', {"a": [1]}, "missing closing bracket"),
    ('{"a":', {"a": None}, "missing closing bracket"),
    ('{path: "a"}', {"path": "a"}, "unquoted key"),
    ('{"p": "\\d+"}', {"p": "\\d+"}, "invalid escape"),
    ('{"c": "print("hi")"}', {"c": 'print("hi")'}, "unescaped quote in a string"),
    ('{"a": 1}}', {"a": 1}, "unbalanced closing bracket"),
]


@pytest.mark.parametrize(("text", "value", "note"), REPAIRS)
def test_repairs(text: str, value: Any, note: str) -> None:
    parsed, notes = loads_lenient(text)
    assert parsed == value
    assert note in notes


def test_valid_json_is_untouched() -> None:
    text = '{"s": "it\'s \\"quoted\\" \\u00e9 \\\\d", "n": [1, 2.5, -3e2, true, null]}'
    assert loads_lenient(text) == (
        {"s": 'it\'s "quoted" é \\d', "n": [1, 2.5, -300.0, True, None]},
        (),
    )


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("hello", "invalid JSON"),
        ('{"a": "cut off her', "cut off inside a string"),
        ('{"a" "b"}', "invalid JSON"),
        ("", "invalid JSON"),
    ],
)
def test_what_cannot_be_repaired_is_explained(text: str, reason: str) -> None:
    with pytest.raises(RepairError, match=reason):
        loads_lenient(text)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_never_raises_anything_but_a_repair_error(text: str) -> None:
    with contextlib.suppress(RepairError):
        loads_lenient(text)


@settings(max_examples=200, deadline=None)
@given(st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=10,
))  # fmt: skip
def test_valid_json_round_trips(value: Any) -> None:
    import json

    assert loads_lenient(json.dumps(value)) == (value, ())
