"""A hostile Redis on loopback: it speaks enough of the protocol for ``RedisStore``, and
answers every script run with the same refusal, for the client's bounds to stop.

    async with HostileRedis(wait="NaN") as srv:    # srv.url, srv.admits
        ...

``wait`` is the JSON number put in each ``admit``'s refusal: ``"NaN"`` (the attack that
made a busy loop), ``"0.5"`` (a Redis answering "budget" for ever), ``"1e9"``. A
``view`` answers an idle account. Nothing else of Redis is there: the real server is
:mod:`tests.redis_server`.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType

_IDLE_VIEW = '["CLOSED",0,0,null,null,0,0,null,0,0]'


class HostileRedis:
    """Answers ``EVALSHA`` ``admit`` with ``["r","budget",<wait>,...]`` for ever.

    Args:
        wait: the refusal's wait, as JSON text.
        reason: the refusal's reason.
    """

    def __init__(self, wait: str, reason: str = "budget") -> None:
        self.wait = wait
        self.reason = reason
        #: ``admit`` operations answered so far.
        self.admits = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def __aenter__(self) -> HostileRedis:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._server is not None
        self._server.close()
        with contextlib.suppress(Exception):
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                command = await _read_command(reader)
                if command is None:
                    return
                writer.write(self._answer(command))
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()

    def _answer(self, command: list[bytes]) -> bytes:
        name = command[0].upper()
        if name in (b"EVALSHA", b"EVAL"):
            # EVALSHA sha numkeys key op ...
            op = command[4] if len(command) > 4 else b""
            if op == b"admit":
                self.admits += 1
                reply = f'["r","{self.reason}",{self.wait},"budget spent",[],0]'
            else:
                reply = _IDLE_VIEW
            return _bulk(reply.encode())
        if name == b"SCRIPT":
            return _bulk(b"0" * 40)
        if name == b"HELLO":
            return b"-ERR unknown command 'HELLO'\r\n"
        return b"+OK\r\n"


async def _read_command(reader: asyncio.StreamReader) -> list[bytes] | None:
    line = await reader.readline()
    if not line:
        return None
    if not line.startswith(b"*"):  # an inline command
        return line.strip().split()
    parts = []
    for _ in range(int(line[1:])):
        size = int((await reader.readline())[1:])
        parts.append((await reader.readexactly(size + 2))[:-2])
    return parts


def _bulk(data: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(data), data)
