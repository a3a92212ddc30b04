"""The loop detector: stops what SmolLM2 really does when it loops, and nothing that
merely looks repetitive (code, data, tables)."""

from __future__ import annotations

import re

import pytest

from qwen_dev_cli.core.providers.repetition import MAX_CANDIDATES, RepetitionGuard

# A tokenizer stand-in: words with their leading space, a run of one punctuation mark,
# newlines, about as fine as a BPE vocabulary on English and code.
_PIECES = re.compile(r" ?\w+|\n| ?([^\w\s])\1*|\s+")


def pieces(text: str) -> list[str]:
    return [match.group(0) for match in _PIECES.finditer(text)]


def first_loop(text: str) -> int | None:
    """The piece at which the guard stops ``text``; None if it never does."""
    guard = RepetitionGuard()
    for n, piece in enumerate(pieces(text)):
        if guard.feed(piece):
            return n
    return None


# What SmolLM2-135M wrote for "Write a very long story about a lighthouse." (its own
# words, shortened), then the paragraph it repeated until max_tokens.
STORY = (
    "In the sleepy town of Whiskey, a lighthouse stood as a beacon of hope and a symbol "
    "of resilience. The keeper, an old sailor named Elba, climbed its stairs every night "
    "to light the lamp, and the ships that passed knew they were close to home.\n\n"
)
LOOP = (
    "The lighthouse was a small, weathered structure on the coast, a testament to the "
    "human capacity for beauty and the human capacity for darkness. The lighthouse was a "
    "small, weathered structure on the coast, a testament to the human capacity for "
    "beauty and the human capacity for darkness.\n\n"
)


def test_a_looping_paragraph_is_stopped_long_before_the_cap() -> None:
    text = STORY + LOOP * 60  # ~4,000 pieces: what max_tokens would have allowed
    stop = first_loop(text)
    assert stop is not None
    assert stop < 900
    assert stop > len(pieces(STORY)) + 500  # not before the loop has repeated a while


def test_a_single_token_loop_after_prose_is_stopped() -> None:
    assert first_loop(STORY + "\n" * 3000) is not None


def test_a_long_block_must_repeat_three_times() -> None:
    block = " ".join(f"sentence{n} goes here." for n in range(90)) + "\n"  # ~360 pieces
    assert first_loop(STORY + block * 2) is None
    assert first_loop(STORY + block * 4) is not None


def test_the_guard_keeps_saying_stop() -> None:
    guard = RepetitionGuard()
    assert any(guard.feed(p) for p in pieces(LOOP * 40))
    assert guard.feed("anything") is True
    assert guard.period is not None


# --- no false positives -----------------------------------------------------------

SIMILAR_LINES = "class Point:\n    def __init__(self, {args}):\n{body}".format(
    args=", ".join(f"x{i}" for i in range(300)),
    body="".join(f"        self.x{i} = x{i}\n" for i in range(300)),
)
TESTS = "".join(
    f"def test_add_{i}():\n    assert add({i}, {i + 1}) == {2 * i + 1}\n\n\n" for i in range(150)
)
ZEROS_16X16 = "grid = [\n" + "".join("    [" + ", ".join(["0"] * 16) + "],\n" for _ in range(16))
ZEROS_24X24 = "grid = [\n" + "".join("    [" + ", ".join(["0"] * 24) + "],\n" for _ in range(24))
TABLE = "| name | value |\n|---|---|\n" + "| - | - |\n" * 80
SEPARATORS = "\n".join(["# " + "-" * 76, "#", "# " + "=" * 76] * 100)
HTML = "<ul>\n" + "".join(
    f'  <li class="item"><a href="/p/{n}">Page {n}</a></li>\n' for n in range(200)
)
ENUM = "".join(f"    CASE_{n} = {n}\n" for n in range(400))


@pytest.mark.parametrize(
    "text",
    [SIMILAR_LINES, TESTS, ZEROS_16X16, ZEROS_24X24, TABLE, SEPARATORS, HTML, ENUM],
    ids=["similar-lines", "tests", "zeros-16", "zeros-24", "table", "separators", "html", "enum"],
)
def test_repetitive_but_legitimate_output_is_never_stopped(text: str) -> None:
    assert len(pieces(text)) > 400  # long enough to matter
    assert first_loop(text) is None


def test_followed_periods_stay_bounded() -> None:
    # O(1) a piece: however long and repetitive the answer, only a few candidate periods
    # are followed at once.
    guard = RepetitionGuard()
    for piece in pieces(SIMILAR_LINES + TESTS + HTML):
        guard.feed(piece)
        assert len(guard._runs) <= MAX_CANDIDATES
