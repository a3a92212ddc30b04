"""Reading a session file a line at a time (``session/reading.py``) gives what reading
it whole gave: the file's text (UTF-8, bad bytes replaced) split at ``\\n``, each line
``json.loads``-ed. Long lines are parsed a block at a time with their long strings
decoded in slices; the blocks and slices are made tiny here so that every boundary (in
an escape, between a surrogate pair's halves, in a UTF-8 sequence, in a run of
backslashes) is crossed."""

from __future__ import annotations

import io
import json
import random
from typing import Any

import pytest

from qwen_dev_cli.session import reading
from qwen_dev_cli.session.reading import count_and_first, parsed_lines

ALPHABET = ['"', "\\", "\n", "\t", "é", "中", "😀", "\ud83d", "\ude00", "\u2028", "a", " ", "/"]


def _string(rng: random.Random) -> str:
    return "".join(rng.choices(ALPHABET, k=rng.choice([0, 1, 5, 40, 300])))


def _value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(7 if depth < 3 else 4)
    if kind == 0:
        return _string(rng)
    if kind == 1:
        return rng.choice([0, -7, 2.5, 10**20, True, False, None])
    if kind == 2:
        return _string(rng) * rng.randrange(1, 4)
    if kind == 3:
        return "x" * rng.randrange(0, 200)
    if kind in (4, 5):
        return {_string(rng): _value(rng, depth + 1) for _ in range(rng.randrange(0, 4))}
    return [_value(rng, depth + 1) for _ in range(rng.randrange(0, 4))]


def _line(rng: random.Random) -> bytes:
    kind = rng.randrange(10)
    if kind == 0:
        return b""
    if kind == 1:
        return rng.choice([b"   ", b"\t", "\u2028".encode(), b" \x1c "])
    value = {"type": "message", "message": {"role": "user", "content": _value(rng)}}
    text = json.dumps(value, ensure_ascii=rng.random() < 0.5)
    data = text.encode("utf-8", errors="surrogatepass")
    damage = rng.randrange(8)
    if damage == 0:  # torn
        data = data[: rng.randrange(len(data) + 1)]
    elif damage == 1:  # a bad byte, a control character or a stray backslash
        at = rng.randrange(len(data) + 1)
        data = data[:at] + rng.choice([b"\xff", b"\xe4\xb8", b"\x01", b"\\", b'"']) + data[at:]
    return data


def _reference(data: bytes) -> list[tuple[str, Any]]:
    """How session files were read before: whole, decoded, split, parsed."""
    out: list[tuple[str, Any]] = []
    for line in data.decode("utf-8", errors="replace").split("\n"):
        if not line:
            out.append(("empty", None))
        elif not line.strip():
            out.append(("blank", None))
        else:
            try:
                out.append(("ok", json.loads(line)))
            except ValueError:
                out.append(("bad", None))
    return out


def _same(got: list[tuple[str, Any]], expected: list[tuple[str, Any]]) -> None:
    assert [status for status, _ in got] == [status for status, _ in expected]
    for (_, value), (_, want) in zip(got, expected, strict=True):
        # json.dumps: equal, and in the same order (keys included)
        assert json.dumps(value) == json.dumps(want)


@pytest.mark.parametrize("seed", range(300))
def test_lines_read_in_tiny_blocks_parse_as_the_whole_file(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(seed)
    monkeypatch.setattr(reading, "BLOCK", rng.choice([1, 2, 3, 7, 16, 64]))
    monkeypatch.setattr(reading, "LONG_STRING", rng.choice([0, 1, 4, 16]))
    data = b"\n".join(_line(rng) for _ in range(rng.randrange(1, 6)))
    if rng.random() < 0.5:
        data += b"\n"
    _same(list(parsed_lines(io.BytesIO(data))), _reference(data))


@pytest.mark.parametrize(
    "text",
    [
        '"\\ud83d\\ude00"',  # a surrogate pair's escapes
        '"\\ud83d\\ud83d\\ude00\\ud83d"',
        '"\\\\\\"\\\\"',  # runs of backslashes before a quote
        '{"\\ud83d": "\\ude00", "k": ["\\\\", "\\"", "\\u00e9"]}',
        '"' + "\\n" * 50 + '"',
        '"a\\u12"',  # a bad escape
        '"abc',  # an open string
        '"tab\there"',  # a raw control character
    ],
)
@pytest.mark.parametrize("block", [1, 2, 3, 5, 8])
def test_every_cut_of_an_escape(text: str, block: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reading, "BLOCK", block)
    monkeypatch.setattr(reading, "LONG_STRING", 0)
    data = text.encode()
    _same(list(parsed_lines(io.BytesIO(data))), _reference(data))


def test_a_huge_string_is_read_in_the_real_blocks() -> None:
    content = ('é 😀 \\ " \n' * 50_000) + "x" * (3 * reading.BLOCK)
    event = {"type": "message", "message": {"role": "assistant", "content": content}}
    data = b'{"type": "header"}\n' + json.dumps(event, ensure_ascii=False).encode() + b"\n"
    got = list(parsed_lines(io.BytesIO(data)))
    assert got == [("ok", {"type": "header"}), ("ok", event), ("empty", None)]


@pytest.mark.parametrize("seed", range(100))
def test_count_and_first(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(seed)
    monkeypatch.setattr(reading, "BLOCK", rng.choice([1, 3, 8, 64]))
    pattern = b"ab"
    data = bytes(rng.choice(b"ab\n.") for _ in range(rng.randrange(0, 300)))
    lines = data.split(b"\n")
    head = rng.choice([1, 2, 5, 100])

    def read(line: bytes) -> bytes | None:
        return line if line.startswith(b"b") else None

    count, found = count_and_first(io.BytesIO(data), pattern, (b"a",), read, head=head)
    assert count == data.count(pattern)
    candidates = [line + b"\n" for line in lines[:-1]] + [lines[-1]]
    wanted = [c for c in candidates if b"a" in c[:head] and read(c) is not None]
    assert found == (wanted[0] if wanted else None)


@pytest.mark.parametrize("block", [4096, 1 << 20])
def test_many_escaped_quotes_and_long_backslash_runs(
    block: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reading, "BLOCK", block)
    content = ('"' * 300 + "\\" * 71 + '"' + "\\" * 64 + "x") * 40
    event = {"type": "message", "message": {"role": "assistant", "content": content}}
    data = json.dumps(event).encode() * 2  # the second copy glued on: not JSON
    data = json.dumps(event).encode() + b"\n" + data + b"\n"
    _same(list(parsed_lines(io.BytesIO(data))), _reference(data))
    assert next(parsed_lines(io.BytesIO(data))) == ("ok", event)
