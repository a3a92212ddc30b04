"""The stream assembler's text: one string grown as the answer streams, not a list
joined at the end (which holds a 64 MiB answer twice; issue 22, finding 13)."""

from __future__ import annotations

import json
import random
import sys
import tracemalloc

import pytest

from qwen_dev_cli.core.providers.assembler import StreamAssembler, TextAccumulator


def test_the_text_is_the_pieces_in_order_whatever_their_kind() -> None:
    rng = random.Random(11)
    alphabet = ["a", "é", "✿", "😀", "\ud83d", "\n", "word "]
    pieces = ["".join(rng.choices(alphabet, k=rng.randint(0, 300))) for _ in range(2000)]
    text = TextAccumulator()
    for piece in pieces:
        text.append(piece)
    assert text.text() == "".join(pieces)
    text.append("and more")  # asked for, it still grows
    assert text.text() == "".join(pieces) + "and more"
    assert TextAccumulator().text() == ""


@pytest.mark.skipif(
    sys.gettrace() is not None, reason="under a tracer CPython does not grow strings in place"
)
def test_a_long_answer_is_held_about_once_while_it_grows() -> None:
    size = 8 << 20
    tracemalloc.start()
    try:
        text = TextAccumulator()
        for number in range(size // 16384):
            text.append("x" * 16383 + str(number % 10))
        whole = text.text()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(whole) == size
    assert peak < 1.5 * size  # a list joined at the end: more than 2x


def test_the_assembler_replies_with_the_whole_text() -> None:
    assembler = StreamAssembler("lab", "model")
    for word in ("Hello", ", ", "world"):
        data = json.dumps({"choices": [{"delta": {"content": word}}]})
        assert assembler.feed(data) == word
    assert assembler.reply(None).text == "Hello, world"
