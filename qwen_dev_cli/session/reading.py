"""Reading a session file a line at a time.

A session can hold a huge message (an answer of tens of mebibytes, recorded whole).
Reading the file whole, decoding it and splitting it into lines held it three times
before a line was parsed; listing the sessions (``--continue`` does, to find the
latest) read every file whole to count its messages. Here a line is read and parsed
on its own; a long one a block at a time, its long strings decoded in slices onto one
string (:func:`parsed_lines`), so a huge message is held once. A listing reads only the
start of each line, counting the rest as it passes (:func:`count_and_first`).
"""

from __future__ import annotations

import codecs
import json
import re
import secrets
from collections.abc import Callable, Iterator
from typing import IO, Any, TypeVar

from ..json_strings import map_strings

T = TypeVar("T")

#: Bytes read at a time.
BLOCK = 1 << 20


#: A line read, as ``(status, value)``: ``"empty"`` (nothing, as after the file's last
#: line break), ``"blank"`` (only white space), ``"bad"`` (not JSON) or ``"ok"`` (its
#: value).
Line = tuple[str, Any]

#: A string in a long line is decoded in slices once it is longer than this.
LONG_STRING = 1 << 16
#: An unescaped double quote: one after an even run of backslashes.
_CLOSING = re.compile(r'(?<!\\)(?:\\\\)*"')


def parsed_lines(handle: IO[bytes]) -> Iterator[Line]:
    """Each line of ``handle`` parsed as JSON, as ``json.loads`` parses the line the
    file's text split at ``\\n`` gives (decoded as UTF-8, bad bytes replaced): the last
    line is what follows the last line break, ``("empty", None)`` when the file ends
    with one.

    A line of up to :data:`BLOCK` bytes is decoded and parsed whole. A longer one is
    read a block at a time and never held whole: its long strings are decoded a slice
    at a time onto one string that grows in place, the rest of the line parsed with a
    stand-in for each (:func:`_parse_long`). A huge message is then held once."""
    while True:
        part = handle.readline(BLOCK)
        ended = part.endswith(b"\n")
        if ended or len(part) < BLOCK:
            text = (part[:-1] if ended else part).decode("utf-8", errors="replace")
            del part
            yield _parse(text)
            text = ""  # not held while the next line is read
        else:
            line, ended = _parse_long(part, handle)
            del part
            yield line
            line = ("empty", None)
        if not ended:
            return


def _parse(text: str) -> Line:
    if not text:
        return ("empty", None)
    if not text.strip():
        return ("blank", None)
    try:
        return ("ok", json.loads(text))
    except ValueError:
        return ("bad", None)


def _parse_long(part: bytes, handle: IO[bytes]) -> tuple[Line, bool]:
    """The line that begins with ``part`` (a block without its line break), read to
    its end; and whether a line break ended it."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    skeleton: list[str] = []  # the line, each long string replaced by a stand-in
    longs: list[str] = []
    stand_in = f"\x00qwen-dev-long-string-{secrets.token_hex(8)}-"
    in_string = False
    pending = ""  # the open string's text not decoded yet
    decoded: str | None = None  # a long string decoded so far (grows in place)
    bad = False
    while True:
        ended = part.endswith(b"\n")
        text = decoder.decode(part[:-1] if ended else part, final=ended or not part)
        at = 0
        while not bad and at < len(text):
            if not in_string:
                quote = text.find('"', at)
                if quote < 0:
                    skeleton.append(text[at:])
                    break
                skeleton.append(text[at:quote])
                in_string, at = True, quote + 1
                continue
            if at == 0 and pending and _odd_backslashes(pending):
                pending += text[0]  # the escaped character, cut from its backslash
                text, at = text[1:], 0
                continue
            quote = _closing(text, at)
            closing = quote >= 0
            if not closing:
                pending += text[at:]
                at = len(text)
            else:
                pending += text[at:quote]
                at = quote + 1
            if decoded is None and len(pending) <= LONG_STRING:
                if closing:  # a short string: as it is
                    skeleton.append(f'"{pending}"')
                    in_string, pending = False, ""
                continue
            try:
                piece, pending = _decode_prefix(pending, whole=closing)
            except ValueError:
                bad = True
                break
            if decoded is None:
                decoded = piece
            else:
                decoded += piece  # one reference: resized in place, not copied
            del piece
            if closing:
                in_string = False
                skeleton.append(json.dumps(stand_in + str(len(longs))))
                longs.append(decoded)
                decoded = None
        if ended or not part:
            break
        part = handle.readline(BLOCK)
    if bad or in_string:
        return ("bad", None), ended
    rest = "".join(skeleton)
    if not longs and not rest.strip():
        return ("blank", None), ended
    try:
        value = json.loads(rest)
    except ValueError:
        return ("bad", None), ended
    return ("ok", _put_back(value, stand_in, longs)), ended


def count_and_first(
    handle: IO[bytes],
    pattern: bytes,
    wanted: tuple[bytes, ...],
    read: Callable[[bytes], T | None],
    head: int = 1 << 16,
) -> tuple[int, T | None]:
    """How many times ``pattern`` occurs in the rest of ``handle``, and ``read`` of the
    first line whose first ``head`` bytes hold every one of ``wanted`` that it reads
    (does not return ``None`` for): only such lines are held whole."""
    count = 0
    carry = b""  # the end of what was read, for a pattern cut between two reads
    keep = len(pattern) - 1
    found: T | None = None
    at_start = True
    while part := handle.readline(head if found is None and at_start else BLOCK):
        if found is None and at_start and all(w in part for w in wanted):
            if not part.endswith(b"\n"):
                part += handle.readline()
            found = read(part)
        # Within ``keep`` bytes of the boundary no whole pattern fits on either side.
        count += part.count(pattern) + (carry + part[:keep]).count(pattern)
        carry = (carry + part[-keep:])[-keep:] if keep else b""
        at_start = part.endswith(b"\n")
    return count, found


def _closing(text: str, at: int) -> int:
    """Where the string whose text goes on at ``at`` closes in ``text`` (its first
    unescaped quote), -1 if it does not. Quotes are found by ``str.find`` and their
    backslashes counted; a text of many escaped quotes goes to :data:`_CLOSING`."""
    quote = text.find('"', at)
    for _ in range(64):
        if quote <= at or text[quote - 1] != "\\":
            return quote
        window = text[max(at, quote - 64) : quote]
        run = len(window) - len(window.rstrip("\\"))
        if run == 64:
            break
        if run % 2 == 0:
            return quote
        quote = text.find('"', quote + 1)
    match = _CLOSING.search(text, at)
    return -1 if match is None else match.end() - 1


def _odd_backslashes(text: str) -> bool:
    """Whether ``text`` ends with an odd run of backslashes (an escape not finished)."""
    run = len(text) - len(text.rstrip("\\"))
    return run % 2 == 1


def _decode_prefix(text: str, *, whole: bool) -> tuple[str, str]:
    """The JSON string body ``text`` decoded (``whole``), or as much of it as ends
    where an escape ends, not between the two escapes of a surrogate pair; and what is
    left. ValueError if it is not valid JSON string text."""
    if whole:
        return json.loads(f'"{text}"'), ""
    for back in range(8):  # an escape is at most six characters
        cut = len(text) - back
        try:
            piece: str = json.loads(f'"{text[:cut]}"')
        except ValueError:
            continue
        if piece and "\ud800" <= piece[-1] <= "\udbff":
            # A high surrogate escape ends it: its low half may come next.
            cut -= 6
            piece = piece[:-1]
        return piece, text[cut:]
    raise ValueError("not JSON string text")


def _put_back(value: Any, stand_in: str, longs: list[str]) -> Any:
    """``value`` with each stand-in replaced by its long string."""

    def real(item: str) -> str:
        return longs[int(item[len(stand_in) :])] if item.startswith(stand_in) else item

    return map_strings(value, real)
