"""An incremental Server-Sent Events decoder (WHATWG event-stream rules).

Bytes go in as the network delivers them; complete events come out. UTF-8 sequences
and CRLF pairs split across chunks are reassembled, comments (keep-alives) are
dropped, ``data:`` with or without the space is accepted, and invalid UTF-8 is
replaced rather than raised. Feeding arbitrary bytes never raises.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
#: An event's ``data`` lines are joined this many at a time as they come: an event of
#: millions of short lines (a hostile server's, within the body's cap) would otherwise
#: be held as millions of strings, some 50 bytes each however short (64 MiB of
#: ``data:xy`` lines: about 500 MB).
PACK_LINES = 1024


@dataclass(slots=True)
class SSEEvent:
    """One dispatched event: its ``data`` lines joined with newlines. (Not frozen: one is
    made per token, and a frozen dataclass costs three times as much to build.)"""

    data: str
    event: str | None = None
    id: str | None = None


class SSEDecoder:
    """Turns a byte stream into :class:`SSEEvent` objects. One instance per stream."""

    def __init__(self) -> None:
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._tail_parts: list[str] = []
        self._tail_chars = 0
        self._data: list[str] = []
        #: Earlier data lines of the event, joined :data:`PACK_LINES` at a time.
        self._packed: list[str] = []
        self._event: str | None = None
        self._id: str | None = None
        # The last chunk ended in CR: that ended its line, and a LF next is its pair.
        self._after_cr = False
        self._at_start = True

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Decode ``chunk`` and return the events it completed (often none or one)."""
        piece = self._utf8.decode(chunk)
        if self._at_start and piece:
            self._at_start = False
            if piece[0] == "\ufeff":  # a byte-order mark is not part of the first line
                piece = piece[1:]
        if self._after_cr and piece:
            self._after_cr = False
            if piece[0] == "\n":
                piece = piece[1:]
        if "\n" not in piece and "\r" not in piece:
            # Part of a long line: collect it without re-scanning what came before.
            self._tail_parts.append(piece)
            self._tail_chars += len(piece)
            return []
        self._tail_parts.append(piece)
        text = "".join(self._tail_parts)
        # str.split is several times faster than the regex; CR is rare on the wire.
        lines = _LINE_BREAK.split(text) if "\r" in text else text.split("\n")
        tail = lines.pop()
        self._tail_parts = [tail]
        self._tail_chars = len(tail)
        # Ending the line now, not when the next chunk shows whether a LF follows, keeps
        # an event of a CR-only stream from waiting for the next one.
        self._after_cr = piece.endswith("\r")
        events: list[SSEEvent] = []
        for line in lines:
            # The common lines, inline: this loop runs for every token of every stream.
            if not line:
                event = self._dispatch()
                if event is not None:
                    events.append(event)
            elif line.startswith("data:"):
                self._data.append(line[6:] if line.startswith("data: ") else line[5:])
                if len(self._data) >= PACK_LINES:
                    self._pack()
            else:
                self._line(line)
        return events

    @property
    def pending_chars(self) -> int:
        """Characters of a line still waiting for its end (a limit's business)."""
        return self._tail_chars

    def flush(self) -> list[SSEEvent]:
        """End of stream: return an event left without its closing blank line, if any.

        The standard drops it; we keep it, since servers that omit the final blank line
        exist and a truncated payload is caught by the JSON layer above."""
        text = "".join(self._tail_parts) + self._utf8.decode(b"", final=True)
        self._tail_parts = []
        self._tail_chars = 0
        self._after_cr = False
        events: list[SSEEvent] = []
        for line in _LINE_BREAK.split(text):
            event = self._line(line)
            if event is not None:
                events.append(event)
        event = self._line("")
        if event is not None:
            events.append(event)
        return events

    def _line(self, line: str) -> SSEEvent | None:
        if not line:
            return self._dispatch()
        if line[0] == ":":
            return None
        name, sep, value = line.partition(":")
        if sep and value[:1] == " ":
            value = value[1:]
        if name == "data":
            self._data.append(value)
            if len(self._data) >= PACK_LINES:
                self._pack()
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._id = value
        return None

    def _pack(self) -> None:
        self._packed.append("\n".join(self._data))
        self._data = []

    def _dispatch(self) -> SSEEvent | None:
        if self._packed:  # "\n".join of groups joined by "\n" is that of all the lines
            self._data = [*self._packed, *self._data]
            self._packed = []
        if not self._data:
            self._event = None
            return None
        event = SSEEvent("\n".join(self._data), self._event, self._id)
        self._data = []
        self._event = None
        return event
