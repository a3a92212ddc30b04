"""JSON lines written a piece at a time: exactly ``json.dumps``'s text, without a whole
copy of a long string."""

from __future__ import annotations

import io
import json
import random
from typing import Any

import pytest

from qwen_dev_cli.session import jsonl
from qwen_dev_cli.session.jsonl import json_pieces, write_json_line

CHARS = ["a", '"', "\\", "\n", "\x00", "\x1f", "é", "✿", "\ud83d", "\ude00", "😀", "\u2028", " "]


def value(rng: random.Random, depth: int = 0) -> Any:
    roll = rng.random()
    if depth > 3 or roll < 0.3:
        return "".join(rng.choice(CHARS) for _ in range(rng.randint(0, 40)))
    if roll < 0.4:
        return rng.choice([1, -2.5, float("nan"), float("inf"), True, False, None, 10**30])
    if roll < 0.6:
        return [value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    if roll < 0.65:
        return tuple(value(rng, depth + 1) for _ in range(rng.randint(0, 3)))
    if roll < 0.7:  # keys json.dumps turns into text
        return {rng.choice([1, None, 2.5, True, "k"]): value(rng, depth + 1) for _ in range(3)}
    return {
        "".join(rng.choice(CHARS) for _ in range(3)): value(rng, depth + 1)
        for _ in range(rng.randint(0, 4))
    }


@pytest.mark.parametrize("ensure_ascii", [False, True])
def test_the_pieces_join_into_json_dumps(
    monkeypatch: pytest.MonkeyPatch, ensure_ascii: bool
) -> None:
    monkeypatch.setattr(jsonl, "_PIECE", 7)  # every string of more than 7 is sliced
    rng = random.Random(3)
    for _ in range(3000):
        item = value(rng)
        joined = "".join(json_pieces(item, ensure_ascii=ensure_ascii))
        assert joined == json.dumps(item, ensure_ascii=ensure_ascii)


def test_a_long_string_is_written_in_pieces() -> None:
    content = "x" * (1 << 20)
    message = {"type": "message", "message": {"role": "assistant", "content": content}}
    pieces = list(json_pieces(message))
    assert max(len(piece) for piece in pieces) <= (1 << 16) + 2
    out = io.StringIO()
    write_json_line(out, message)
    assert out.getvalue() == json.dumps(message, ensure_ascii=False) + "\n"


def test_what_json_cannot_encode_fails_as_json_dumps_does() -> None:
    out = io.StringIO()
    with pytest.raises(TypeError):
        write_json_line(out, {"a": object()})
    assert out.getvalue() == ""  # nothing begun
    with pytest.raises(TypeError):
        write_json_line(out, {"long": "x" * (1 << 17), "a": object()})
    assert out.getvalue().endswith("\n")  # the damaged line is ended: the next starts clean
