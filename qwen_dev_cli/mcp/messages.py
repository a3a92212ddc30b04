"""Why a server's message cannot be read, said the same for every transport.

A message is bounded in bytes (:data:`~.breaker.MAX_MESSAGE`), but what it costs once
read is not: JSON made of many small values becomes that many Python objects, and an
answer that fails the SDK's checks one error per value and per variant it tried. 600 KB
of ``{}`` in a tool result took 3.3 GB and 29 s (3.9 million validation errors). So a
message holding more than :data:`MAX_VALUES` values is not read at all (:func:`crowded`):
just under it, 9,900 ``{}`` (128,700 errors) took 100 MB more; a valid answer of
20,000 values, 2 MB. A tool's text is one value however long.

Imported with the SDK (by :mod:`.stdio` and :mod:`.http`), never at start-up.
"""

from __future__ import annotations

import re
from typing import Final

from mcp.types import JSONRPCMessage
from pydantic import ValidationError

from ..safe_text import printable

#: JSON values one message may hold (counted by its commas, braces and brackets
#: outside strings): up to about 7 KB each once read, should every one fail.
MAX_VALUES: Final = 20_000
#: The same in the answer to ``tools/list`` (its failures cost less: about 1 KB a
#: value), for a server listing hundreds of tools in one page.
MAX_LIST_VALUES: Final = 100_000
#: The methods whose answers may hold :data:`MAX_LIST_VALUES`.
LISTS: Final = frozenset({"tools/list"})

#: A stretch of a message that holds no value of its own: its strings (escapes and all,
#: or an unterminated one to the end of the message) and whatever lies between them but
#: a comma, a brace or a bracket; or one of those (group 1). A search never starts again
#: inside what it has read: a pattern that could fail there (an unterminated string, or
#: one ending in a lone backslash) was tried from every escaped quote to the end,
#: quadratic (16 KB of ``\\"`` took 4 s). Possessive, so the engine keeps nothing per
#: escape or per string: replacing every string by ``""`` (one match each, a list of
#: them, and a frame per escape) took 4 GB and 7 s for 64 MiB of ``"",``.
_TOKEN: Final = re.compile(rb'(?:"(?:[^"\\]++|\\.?)*+(?:"|\Z)|[^"\[{,]++)++|([\[{,])', re.DOTALL)


def crowded(body: bytes | bytearray, limit: int = MAX_VALUES) -> str | None:
    """Why ``body`` must not be read for the values it holds, more than ``limit``
    (``None``: it may be). Counted in C: the bytes first (most messages stop there),
    then, for one with many, once more outside its strings (text may hold any number
    of commas), up to one past ``limit``."""
    if not many(body, limit):
        return None
    if _values_outside_strings(body, limit) <= limit:
        return None
    return f"its answer held over {limit:,} JSON values and was not read"


def many(body: bytes | bytearray, limit: int = MAX_VALUES) -> bool:
    """Whether ``body`` may hold more than ``limit`` values (most messages: no, at once)."""
    return _values(body) > limit


def _values(body: bytes | bytearray) -> int:
    return body.count(b",") + body.count(b"{") + body.count(b"[")


def _values_outside_strings(body: bytes | bytearray, limit: int) -> int:
    """:func:`_values` of ``body`` outside its strings, counted up to ``limit + 1``: the
    stretches between (:data:`_TOKEN`) are matched whole, so the matches are at most
    about twice the values counted, and nothing is copied."""
    count = 0
    for token in _TOKEN.finditer(body):
        if token.start(1) != -1:
            count += 1
            if count > limit:
                break
    return count


def unreadable(body: bytes | bytearray | str) -> str | None:
    """Why the SDK could not read ``body`` as a message, read as it reads it (``None``:
    it can)."""
    try:
        JSONRPCMessage.model_validate_json(body)
    except ValidationError as exc:
        return why(exc, body)
    return None


def why(exc: ValidationError, body: bytes | bytearray | str) -> str:
    """What ``exc`` (pydantic on reading ``body``) means, in a few words: not JSON, JSON
    but no JSON-RPC message, or nested deeper than it reads."""
    errors = exc.errors(include_url=False, include_input=False)
    said = str(errors[0]["msg"]) if errors else ""
    if "recursion limit" in said:
        return "its answer was nested too deep to read"
    start = body[:60]
    head = printable(start if isinstance(start, str) else bytes(start).decode("utf-8", "replace"))
    if errors and errors[0]["type"] == "json_invalid":
        return f"its answer was not JSON: {head!r}"
    return f"its answer was not a JSON-RPC message: {head!r}"
