"""A hostile OpenAI-compatible server on loopback: it answers every request in one of a
few abusive ways, for the client's bounds to stop.

    async with HostileServer("endless") as srv:   # srv.base_url
        ...

Modes: ``endless`` (tokens for ever, as fast as the socket takes them), ``long_line``
(one SSE line that never ends), ``tool_flood`` (tool-call arguments for ever),
``gzip_bomb`` (a small gzip body that inflates to 1 GiB), ``huge_error`` (a 400 whose
body is 300 MB), ``echo_key`` (a 401 that quotes the request's Authorization header),
``deep_json`` (a stream event nested 100,000 levels), ``trickle`` (a token every 50 ms
for ever), ``redirect`` (307 to another address).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import zlib
from collections.abc import Mapping
from types import TracebackType

MODES = (
    "endless",
    "long_line",
    "tool_flood",
    "gzip_bomb",
    "huge_error",
    "echo_key",
    "deep_json",
    "trickle",
    "redirect",
)


def _chunk(delta: Mapping[str, object]) -> bytes:
    body = {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta}]}
    return b"data: " + json.dumps(body).encode() + b"\n\n"


def _gzip_bomb(inflated: int = 1 << 30) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: gzip framing
    block = bytes(1 << 20)
    parts = [packer.compress(block) for _ in range(inflated >> 20)]
    parts.append(packer.flush())
    return b"".join(parts)


class HostileServer:
    def __init__(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}")
        self.mode = mode
        self.port = 0
        self.requests = 0
        self._server: asyncio.Server | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def __aenter__(self) -> HostileServer:
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
            await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            headers = dict(
                line.split(": ", 1) for line in head.decode().split("\r\n")[1:] if ": " in line
            )
            length = int(headers.get("content-length", headers.get("Content-Length", "0")))
            await reader.readexactly(length)
            self.requests += 1
            auth = headers.get("authorization", headers.get("Authorization", ""))
            await getattr(self, "_" + self.mode)(writer, auth)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    @staticmethod
    async def _head(
        writer: asyncio.StreamWriter, status: str, extra: str = "", length: int | None = None
    ) -> None:
        size = "" if length is None else f"content-length: {length}\r\n"
        writer.write(f"HTTP/1.1 {status}\r\n{extra}{size}connection: close\r\n\r\n".encode())
        await writer.drain()

    async def _stream_head(self, writer: asyncio.StreamWriter) -> None:
        await self._head(writer, "200 OK", "content-type: text/event-stream\r\n")

    async def _endless(self, writer: asyncio.StreamWriter, auth: str) -> None:
        await self._stream_head(writer)
        event = _chunk({"content": "spam " * 200})
        while True:
            writer.write(event * 16)
            await writer.drain()

    async def _long_line(self, writer: asyncio.StreamWriter, auth: str) -> None:
        await self._stream_head(writer)
        writer.write(b'data: {"choices": [{"delta": {"content": "')
        block = b"a" * 65536
        while True:
            writer.write(block)
            await writer.drain()

    async def _tool_flood(self, writer: asyncio.StreamWriter, auth: str) -> None:
        await self._stream_head(writer)
        start = {"tool_calls": [{"index": 0, "id": "c", "function": {"name": "read_file"}}]}
        writer.write(_chunk(start))
        more = _chunk({"tool_calls": [{"index": 0, "function": {"arguments": "x" * 8192}}]})
        while True:
            writer.write(more * 8)
            await writer.drain()

    async def _gzip_bomb(self, writer: asyncio.StreamWriter, auth: str) -> None:
        body = await asyncio.to_thread(_gzip_bomb)
        extra = "content-type: application/json\r\ncontent-encoding: gzip\r\n"
        await self._head(writer, "200 OK", extra, len(body))
        writer.write(body)
        await writer.drain()

    async def _huge_error(self, writer: asyncio.StreamWriter, auth: str) -> None:
        total = 300 * 1024 * 1024
        await self._head(writer, "400 Bad Request", "content-type: text/plain\r\n", total)
        block = b"error! " * 9362
        sent = 0
        while sent < total:
            writer.write(block)
            sent += len(block)
            await writer.drain()

    async def _echo_key(self, writer: asyncio.StreamWriter, auth: str) -> None:
        body = json.dumps({"error": {"message": f"invalid credentials: {auth}"}}).encode()
        await self._head(
            writer, "401 Unauthorized", "content-type: application/json\r\n", len(body)
        )
        writer.write(body)
        await writer.drain()

    async def _deep_json(self, writer: asyncio.StreamWriter, auth: str) -> None:
        await self._stream_head(writer)
        writer.write(b"data: " + b"[" * 100_000 + b"]" * 100_000 + b"\n\n")
        await writer.drain()
        await asyncio.sleep(30)

    async def _trickle(self, writer: asyncio.StreamWriter, auth: str) -> None:
        await self._stream_head(writer)
        while True:
            writer.write(_chunk({"content": "."}))
            await writer.drain()
            await asyncio.sleep(0.05)

    async def _redirect(self, writer: asyncio.StreamWriter, auth: str) -> None:
        await self._head(
            writer, "307 Temporary Redirect", "location: http://evil.invalid/v1\r\n", 0
        )
