"""The parser against a corpus of realistic model outputs (tests/agent/corpus.py)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qwen_dev_cli.agent.parser import ParsedReply, parse_text
from qwen_dev_cli.agent.stream_filter import ToolMarkupFilter
from qwen_dev_cli.tools import DEFAULT_TOOLS

from .corpus import SAMPLES, Sample

#: The tools with their parameters' schemas, as the agent passes them (XML values are
#: typed by them).
TOOL_NAMES = {tool.name: tool.spec()["function"]["parameters"] for tool in DEFAULT_TOOLS}
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
     "\\", "\n", "name", "arguments", "read_file", "True", "`", "<tool_response>", " ",
     "<function=", "<function=read_file>", "</function>", "<parameter=", "<parameter=path>",
     "<parameter=start_line>", "</parameter>", ">", "12", "✿FUNCTION✿", "✿ARGS✿", "✿RESULT✿"]
)  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(st.lists(st.one_of(_FRAGMENTS, st.text(max_size=5)), max_size=40).map("".join))
def test_call_shaped_noise_never_raises(text: str) -> None:
    reply = parse_text(text, TOOL_NAMES)
    for call in reply.calls:
        assert isinstance(call.arguments, dict)


@settings(max_examples=500, deadline=None)
@given(st.lists(_FRAGMENTS, max_size=40).map("".join), st.lists(st.integers(0), max_size=8))
def test_the_stream_filter_shows_the_same_whatever_the_chunks(text: str, cuts: list[int]) -> None:
    points = sorted({c % (len(text) + 1) for c in cuts})
    pieces = [text[a:b] for a, b in zip([0, *points], [*points, len(text)], strict=True)]
    whole, chunked = ToolMarkupFilter(TOOL_NAMES), ToolMarkupFilter(TOOL_NAMES)
    expected = whole.feed(text) + whole.flush()
    assert "".join(chunked.feed(piece) for piece in pieces) + chunked.flush() == expected
