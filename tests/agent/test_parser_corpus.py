"""The parser against a corpus of realistic model outputs (tests/agent/corpus.py)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qwen_dev_cli.agent.parser import ParsedReply, parse_text
from qwen_dev_cli.tools import DEFAULT_TOOLS

from .corpus import SAMPLES, Sample

TOOL_NAMES = {tool.name for tool in DEFAULT_TOOLS}
#: The share of samples the parser must get exactly right.
REQUIRED_SCORE = 0.95


def exact(sample: Sample, reply: ParsedReply) -> bool:
    calls = [(c.name, c.arguments) for c in reply.calls]
    return (
        calls == sample.calls
        and reply.text == sample.prose
        and len(reply.problems) == sample.problems
    )


def test_the_corpus_is_big_and_varied() -> None:
    assert len(SAMPLES) >= 80
    assert len({s.id for s in SAMPLES}) == len(SAMPLES)
    kinds = {s.kind for s in SAMPLES}
    assert kinds == {"clean", "damaged", "broken", "multi", "mixed", "none", "lookalike"}


def test_at_least_95_percent_of_the_corpus_is_parsed_exactly() -> None:
    misses = [s.id for s in SAMPLES if not exact(s, parse_text(s.text, TOOL_NAMES))]
    score = 1 - len(misses) / len(SAMPLES)
    assert score >= REQUIRED_SCORE, f"score {score:.1%}; wrong: {misses}"


@pytest.mark.parametrize(
    "sample", [s for s in SAMPLES if s.kind in ("none", "lookalike")], ids=lambda s: s.id
)
def test_text_without_a_call_never_produces_one(sample: Sample) -> None:
    reply = parse_text(sample.text, TOOL_NAMES)
    assert reply.calls == ()
    assert reply.problems == ()


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: s.id)
def test_sample(sample: Sample) -> None:
    """Each sample on its own, so that a regression names the sample."""
    reply = parse_text(sample.text, TOOL_NAMES)
    assert [(c.name, c.arguments) for c in reply.calls] == sample.calls
    assert reply.text == sample.prose
    assert len(reply.problems) == sample.problems


def test_problems_say_why() -> None:
    by_id = {s.id: s for s in SAMPLES}
    cut = parse_text(by_id["broken-cut-off-in-string"].text, TOOL_NAMES).problems[0]
    assert "cut off" in cut.reason
    assert cut.name == "write_file"
    nameless = parse_text(by_id["broken-no-name"].text, TOOL_NAMES).problems[0]
    assert "name" in nameless.reason


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_arbitrary_text_never_raises(text: str) -> None:
    reply = parse_text(text, TOOL_NAMES)
    assert isinstance(reply.text, str)


_FRAGMENTS = st.sampled_from(
    ["<tool_call>", "</tool_call>", "```", "```json\n", "{", "}", "[", "]", '"', "'", ",", ":",
     "\\", "\n", "name", "arguments", "read_file", "True", "`", "<tool_response>", " "]
)  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(st.lists(st.one_of(_FRAGMENTS, st.text(max_size=5)), max_size=40).map("".join))
def test_call_shaped_noise_never_raises(text: str) -> None:
    reply = parse_text(text, TOOL_NAMES)
    for call in reply.calls:
        assert isinstance(call.arguments, dict)
