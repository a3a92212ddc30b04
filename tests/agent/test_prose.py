"""An answer's prose is made from the stretches between its calls without the blanks
at their ends, never put together and then trimmed (issue 22, finding 13: a huge
answer would be held three times), and it is what it was."""

from __future__ import annotations

import itertools
import tracemalloc

from hypothesis import example, given, settings
from hypothesis import strategies as st

from qwen_dev_cli.agent.parser import _prose, _tidy, parse_text

#: Blanks of every kind ``str.strip()`` takes, made-up results, special tokens, words.
PIECES = [" ", "\t", "\n", "\n\n\n", "\r\n", "\x0b", "\x0c", "\x85", "\u2028", "\u3000"]
PIECES += ["word", "<", ">", "<tool_response>", "</tool_response>", "<|im_end|>", "\u200b"]
texts = st.lists(st.sampled_from(PIECES), max_size=24).map("".join)


@settings(max_examples=1500, deadline=None)
@given(texts, st.lists(st.integers(0, 200), max_size=8))
# a blank other than a space or a tab before a made-up result, or after it: no result
@example("\x0b<tool_response>\nx\n</tool_response>\nDone.", [])
@example("Done.\n<tool_response>\nx\n</tool_response>\x0b", [])
def test_the_prose_is_the_stretches_put_together_and_tidied(text: str, cuts: list[int]) -> None:
    points = sorted({c % (len(text) + 1) for c in cuts} | {0, len(text)})
    # every other stretch is prose (the others stand for calls)
    bounds = [(a, b) for n, (a, b) in enumerate(itertools.pairwise(points)) if n % 2 == 0]
    assert _prose(text, bounds) == _tidy("".join(text[a:b] for a, b in bounds))


def test_prose_before_a_call_is_made_once() -> None:
    call = '<tool_call>{"name": "read_file", "arguments": {"path": "a.py"}}</tool_call>'
    text = "Some prose, line after line.\n" * (1 << 15) + call + "\n"
    tracemalloc.start()
    try:
        reply = parse_text(text, {"read_file"})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(reply.calls) == 1
    assert reply.text == text[: text.index("<tool_call>")].strip()
    # before: the stretch, those put together, and that trimmed (two at a time)
    assert peak < 1.5 * len(text), (peak, len(text))
