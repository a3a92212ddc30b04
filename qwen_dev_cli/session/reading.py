"""Reading a session file a line at a time.

A session can hold a huge message (an answer of tens of mebibytes, recorded whole).
Reading the file whole, decoding it and splitting it into lines held it three times
before a line was parsed; listing the sessions (``--continue`` does, to find the
latest) read every file whole to count its messages. Here a line is read, decoded and
parsed on its own, its bytes let go before it is parsed, and a listing reads only the
start of each line, counting the rest as it passes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import IO, TypeVar

T = TypeVar("T")

#: Bytes read at a time.
BLOCK = 1 << 20


def lines(handle: IO[bytes]) -> Iterator[str]:
    """Each line of ``handle`` (split at ``\\n`` as ``str.split`` would: the last is
    what follows the last line break, ``""`` when the file ends with one), decoded as
    UTF-8 with bad bytes replaced. A line is held once as bytes while read and once as
    text, never both with what the caller makes of it."""
    while True:
        buffer = bytearray()
        while True:
            part = handle.readline(BLOCK)
            buffer += part
            if not part or part.endswith(b"\n"):
                break
        ended = buffer.endswith(b"\n")
        if ended:
            del buffer[-1]
        text = buffer.decode("utf-8", errors="replace")
        del buffer
        yield text
        text = ""  # not held while the next line is read
        if not ended:
            return


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
