"""Text held back until its message is complete, without holding a huge one in memory.

``ask`` into a pipe writes each model message once it is complete, and the session
recorder keeps the message being streamed in case the turn is interrupted: each would
otherwise hold its own copy of an answer that may reach the 64 MiB a response is
allowed. A :class:`TextSpool` keeps the first mebibyte in memory and the rest in an
unnamed temporary file (deleted when closed, readable by this user only), read back in
pieces.
"""

from __future__ import annotations

import codecs
import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from typing import IO

#: Characters kept in memory before the text moves to a temporary file.
MEMORY_LIMIT = 1 << 20
_READ = 1 << 16
#: A lone surrogate a server sent comes back as it went in.
_ERRORS = "surrogatepass"


class TextSpool:
    """Appended text, given back whole or in pieces.

    Args:
        memory_limit: characters kept in memory; past it, a temporary file holds the
            text. Where no file can be made or written (a full disk), memory holds it.
    """

    def __init__(self, memory_limit: int = MEMORY_LIMIT) -> None:
        self.memory_limit = memory_limit
        self._parts: list[str] = []
        self._size = 0
        self._file: IO[bytes] | None = None
        self._written = 0  # bytes of whole appends in the file
        self._memory_only = False

    def append(self, text: str) -> None:
        if not text:
            return
        self._size += len(text)
        if self._file is not None:
            try:
                self._write(text)
                return
            except OSError:
                self._to_memory()
        self._parts.append(text)
        if self._size > self.memory_limit and not self._memory_only:
            self._spill()

    def __bool__(self) -> bool:
        return self._size > 0

    def pieces(self) -> Iterator[str]:
        """The text, in order, a piece at a time."""
        if self._file is None:
            yield from self._parts
            return
        fd = self._file.fileno()
        decoder = codecs.getincrementaldecoder("utf-8")(_ERRORS)
        for offset in range(0, self._written, _READ):
            data = os.pread(fd, min(_READ, self._written - offset), offset)
            if piece := decoder.decode(data):
                yield piece

    def text(self) -> str:
        return "".join(self.pieces())

    def clear(self) -> None:
        self._parts = []
        self._size = 0
        self._close()

    def _spill(self) -> None:
        try:
            self._file = tempfile.TemporaryFile(buffering=0)  # noqa: SIM115 - closed by clear()
            for part in self._parts:
                self._write(part)
        except OSError:
            self._close()
            self._memory_only = True
            return
        self._parts = []

    def _write(self, text: str) -> None:
        """Append ``text`` to the file; on failure, the file's text ends with the
        previous append (``_written`` counts whole appends only)."""
        assert self._file is not None
        fd = self._file.fileno()
        data = memoryview(text.encode("utf-8", _ERRORS))
        at = self._written
        while data:
            done = os.pwrite(fd, data, at)
            if done <= 0:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            at += done
            data = data[done:]
        self._written = at

    def _to_memory(self) -> None:
        """The file takes no more: its text back into memory, and memory from now on."""
        self._parts = [*self.pieces()]
        self._close()
        self._memory_only = True

    def _close(self) -> None:
        if self._file is not None:
            file, self._file = self._file, None
            with contextlib.suppress(OSError):
                file.close()
        self._written = 0
