"""JSON lines written a piece at a time.

A session records each message as one JSON line, and ``ask --json`` prints one object:
``json.dumps`` of an answer of 64 MiB is a second copy of it, the line break added a
third, and the bytes the file takes a fourth. Written in pieces, the answer is held
once, whatever its length.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import IO, Any

#: Characters written at a time, and the longest string encoded whole.
_PIECE = 1 << 16


def write_json_line(handle: IO[str], value: Any, *, ensure_ascii: bool = False) -> None:
    """Write ``json.dumps(value, ensure_ascii=...)`` and a line break to ``handle``, a
    piece at a time, raising what ``json.dumps`` would."""
    written = False
    try:
        for batch in json_line(value, ensure_ascii=ensure_ascii):
            handle.write(batch)
            written = True
    except (TypeError, ValueError, RecursionError):
        # What JSON cannot encode: a line of one batch was never begun; a longer one is
        # ended, so the next starts clean (a reader skips the damage).
        if written:
            handle.write("\n")
        raise


def json_line(value: Any, *, ensure_ascii: bool = False) -> Iterator[str]:
    """``json.dumps(value, ensure_ascii=...) + "\\n"`` in batches of about 64 KiB: one,
    the whole line, for all but long values."""
    batch: list[str] = []
    size = 0
    for piece in json_pieces(value, ensure_ascii=ensure_ascii):
        batch.append(piece)
        size += len(piece)
        if size >= _PIECE:
            yield "".join(batch)
            batch, size = [], 0
    batch.append("\n")
    yield "".join(batch)


def json_pieces(value: Any, *, ensure_ascii: bool = False) -> Iterator[str]:
    """``json.dumps(value, ensure_ascii=...)``, in pieces: a long string is encoded a
    slice at a time (JSON escapes each character on its own, so the slices' encodings
    join into the whole's). Dicts with text keys, lists and tuples are taken apart;
    anything else is ``json.dumps``'s, whole."""
    if type(value) is str:
        if len(value) <= _PIECE:
            yield json.dumps(value, ensure_ascii=ensure_ascii)
            return
        yield '"'
        for start in range(0, len(value), _PIECE):
            yield json.dumps(value[start : start + _PIECE], ensure_ascii=ensure_ascii)[1:-1]
        yield '"'
    elif type(value) is dict and all(type(key) is str for key in value):
        yield "{"
        for number, (key, item) in enumerate(value.items()):
            yield f"{', ' if number else ''}{json.dumps(key, ensure_ascii=ensure_ascii)}: "
            yield from json_pieces(item, ensure_ascii=ensure_ascii)
        yield "}"
    elif type(value) is list or type(value) is tuple:
        yield "["
        for number, item in enumerate(value):
            if number:
                yield ", "
            yield from json_pieces(item, ensure_ascii=ensure_ascii)
        yield "]"
    else:
        yield json.dumps(value, ensure_ascii=ensure_ascii)
