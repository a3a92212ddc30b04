"""Where the code is (``agent/code_spans.py``): kept only where it is asked about, it
answers as every span would (issue 22, finding 13: an answer may hold sixteen million
inline code spans, and the parser only asks about its tags)."""

from __future__ import annotations

import tracemalloc

from hypothesis import given, settings
from hypothesis import strategies as st

from qwen_dev_cli.agent.code_spans import Packed, code_spans
from qwen_dev_cli.agent.parser import _asked_in_code

#: Fences, indented blocks that run across them, inline code and the tags asked about.
PIECES = ["```\n", "~~~\n", "```json\n", "    ", "\t", "\n", "\n\n", "`", "``", "x", " "]
PIECES += ["<tool_call>", "<TOOL_CALL >", "<function=f>", "\u273fFUNCTION\u273f", "FUNCTION\u273f"]
texts = st.lists(st.sampled_from(PIECES), max_size=30).map("".join)


@settings(max_examples=800, deadline=None)
@given(texts, st.data())
def test_the_code_kept_for_some_positions_answers_for_them_as_all_of_it(
    text: str, data: st.DataObject
) -> None:
    fences, every = code_spans(text)
    asked = sorted(data.draw(st.sets(st.integers(0, len(text)))))
    kept_fences, kept = code_spans(text, asked)
    assert [kept.at(p) for p in asked] == [every.at(p) for p in asked]
    assert len(kept) <= 2 * len(asked)
    assert [f.span() for f in kept_fences] == [f.span() for f in fences]


@settings(max_examples=500, deadline=None)
@given(texts)
def test_the_parser_asks_about_every_tag_that_may_begin_a_call_in_order(text: str) -> None:
    asked = list(_asked_in_code(text))
    assert asked == sorted(asked)
    lower = text.lower()  # the tag <tool_call> in any case
    expected = [
        at
        for at in range(len(text))
        if lower.startswith(("<tool_call>", "<tool_call >"), at)
        or text.startswith(("<function=", "\u273fFUNCTION\u273f"), at)
    ]
    assert asked == expected


def test_dense_inline_code_is_not_held_when_no_tag_is_in_it() -> None:
    text = "`a`b" * 10_000 + "`<tool_call>`"
    _, every = code_spans(text)
    _, kept = code_spans(text, _asked_in_code(text))
    assert len(every) == 10_001
    assert list(kept) == [(40_000, 40_013)]


@given(st.lists(st.tuples(st.integers(0, 2**40), st.integers(0, 2**40))))
def test_packed_spans_come_back_as_they_went_in(pairs: list[tuple[int, int]]) -> None:
    spans = sorted((start, start + length) for start, length in pairs)
    packed = Packed()
    for span in spans:
        packed.append(*span)
    assert list(packed) == spans


def test_blocks_are_held_about_two_bytes_each() -> None:
    text = "```\n```\n" * 100_000  # a hundred thousand fences
    tracemalloc.start()
    try:
        fences, kept = code_spans(text, _asked_in_code(text))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(fences) == 100_000
    assert len(kept) == 0
    assert peak < 4 * 100_000, peak  # two positions of four bytes each: 800,000
