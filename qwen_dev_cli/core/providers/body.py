"""A request's JSON body, encoded a piece at a time.

A conversation can hold a huge message (an answer of tens of mebibytes, sent back whole
to a model with a window that large): ``json.dumps(body).encode()`` would hold it twice
more, as text and as bytes. :class:`JsonBody` sends the very bytes ``json.dumps(body)``
would give (``ensure_ascii``, the default separators) as a stream of pieces, with its
``Content-Length`` counted first, so the server sees the same request and the body is
never whole in memory. Long strings are encoded in slices: with ``ensure_ascii`` every
code point is escaped on its own (an astral one as its ``\\uXXXX\\uXXXX`` pair), so
the slices' escapes are the whole string's.

The stream can be sent again (each iteration encodes anew): a transport that replays a
request gets the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

#: A string is encoded in slices of this many characters (each at most six times that
#: in bytes, escaped).
SLICE_CHARS = 1 << 16
#: Pieces are sent in blocks of about this many bytes.
BLOCK_BYTES = 1 << 16
#: Bodies whose strings hold fewer characters than this are encoded at once, as before:
#: the C encoder is faster, and their copies are small.
STREAM_AT = 1 << 20

_dumps = json.JSONEncoder().encode  # json.dumps with its defaults


def encode(body: Mapping[str, Any]) -> bytes | JsonBody:
    """What to send for ``body``: its bytes when it is small, else a :class:`JsonBody`."""
    if _text_chars(body.get("messages")) < STREAM_AT:
        return _dumps(body).encode()
    return JsonBody(body)


class JsonBody:
    """``json.dumps(body).encode()``, as an async stream of byte blocks (iterable again
    and again) whose total is :attr:`length`."""

    def __init__(self, body: Mapping[str, Any]) -> None:
        self._body = body
        self.length = sum(len(piece) for piece in _pieces(body))  # ASCII: chars are bytes

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._blocks()

    async def _blocks(self) -> AsyncIterator[bytes]:
        for block in blocks(self._body):
            yield block

    @property
    def headers(self) -> dict[str, str]:
        return {"content-length": str(self.length)}


def blocks(body: Any) -> Iterator[bytes]:
    """The bytes of ``json.dumps(body)``, in blocks of about :data:`BLOCK_BYTES`."""
    pending: list[str] = []
    size = 0
    for piece in _pieces(body):
        pending.append(piece)
        size += len(piece)
        if size >= BLOCK_BYTES:
            yield "".join(pending).encode("ascii")
            pending, size = [], 0
    if pending:
        yield "".join(pending).encode("ascii")


def _pieces(value: Any) -> Iterator[str]:
    """``json.dumps(value)`` in pieces: containers walked here, long strings in slices,
    anything else (numbers, booleans, ``None``, short strings) by ``json`` itself."""
    if isinstance(value, str):
        if len(value) <= SLICE_CHARS:
            yield _dumps(value)
            return
        yield '"'
        for start in range(0, len(value), SLICE_CHARS):
            yield _dumps(value[start : start + SLICE_CHARS])[1:-1]
        yield '"'
    elif isinstance(value, dict):
        if not all(isinstance(key, str) for key in value):
            yield _dumps(value)  # keys json converts itself (numbers, None): small maps
            return
        if not value:
            yield "{}"
            return
        first = True
        for key, item in value.items():
            yield ("{" if first else ", ") + _dumps(key) + ": "
            first = False
            yield from _pieces(item)
        yield "}"
    elif isinstance(value, (list, tuple)):
        if not value:
            yield "[]"
            return
        for index, item in enumerate(value):
            yield "[" if index == 0 else ", "
            yield from _pieces(item)
        yield "]"
    else:
        yield _dumps(value)


def _text_chars(value: Any, depth: int = 0) -> int:
    """How many characters the strings in ``value`` hold (its messages' content, parts
    and calls, a few levels deep): enough to tell a huge conversation from the usual."""
    if isinstance(value, str):
        return len(value)
    if depth > 4:
        return 0
    if isinstance(value, dict):
        return sum(_text_chars(item, depth + 1) for item in value.values())
    if isinstance(value, (list, tuple)):
        return sum(_text_chars(item, depth + 1) for item in value)
    return 0
