"""HTTP/1.1 over asyncio streams, just enough for an OpenAI-compatible server that
misbehaves on purpose: requests with a Content-Length body, keep-alive, responses with
a length or chunked, raw bytes, and an abort with a TCP RST. JSON error bodies in
OpenAI's shape (:func:`error_body`).
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import json
import socket
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

JsonDict = dict[str, Any]

HEADER_LIMIT = 1 << 20
MAX_BODY = 64 << 20


@dataclass
class HttpRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    keep_alive: bool


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def reason_phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return {529: "Site Overloaded"}.get(status, "Unknown")


class HttpConnection:
    """One accepted TCP connection: parses requests, writes responses, can RST."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, number: int):
        self.number = number
        self._reader = reader
        self._writer = writer

    async def read_request(self) -> HttpRequest | None:
        """The next request, or None when the peer closed the connection."""
        try:
            head = await self._reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None
        except asyncio.LimitOverrunError as exc:
            raise HttpError(431, "request head too large") from exc
        method, path, version, headers = _parse_head(head)
        if "transfer-encoding" in headers:
            raise HttpError(501, "only Content-Length request bodies are supported")
        length = _content_length(headers)
        body = await self._reader.readexactly(length) if length else b""
        connection = headers.get("connection", "").lower()
        if version == "HTTP/1.0":
            keep_alive = "keep-alive" in connection
        else:
            keep_alive = "close" not in connection
        return HttpRequest(method, path, headers, body, keep_alive)

    async def send(
        self, status: int, headers: Mapping[str, str], body: bytes, *, close: bool
    ) -> None:
        all_headers = {**headers, "content-length": str(len(body))}
        if close:
            all_headers["connection"] = "close"
        self._writer.write(response_head(status, all_headers) + body)
        await self._writer.drain()

    async def start_chunked(self, status: int, headers: Mapping[str, str], *, close: bool) -> None:
        all_headers = {**headers, "transfer-encoding": "chunked"}
        if close:
            all_headers["connection"] = "close"
        self._writer.write(response_head(status, all_headers))
        await self._writer.drain()

    async def send_chunk(self, data: bytes) -> None:
        self._writer.write(b"%x\r\n%b\r\n" % (len(data), data))
        await self._writer.drain()

    async def end_chunked(self) -> None:
        self._writer.write(b"0\r\n\r\n")
        await self._writer.drain()

    async def send_raw(self, data: bytes) -> None:
        self._writer.write(data)
        await self._writer.drain()

    def reset(self) -> None:
        """Abort with a TCP RST: SO_LINGER (1, 0), then close without flushing."""
        sock = self._writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self._writer.transport.abort()

    async def wait_for_peer_close(self) -> None:
        while await self._reader.read(65536):
            pass

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(Exception):
            await self._writer.wait_closed()


def _parse_head(head: bytes) -> tuple[str, str, str, dict[str, str]]:
    lines = head[:-4].decode("latin-1").split("\r\n")
    while lines and not lines[0]:
        lines.pop(0)  # tolerate stray CRLFs between requests
    try:
        method, target, version = lines[0].split(" ", 2)
    except (IndexError, ValueError) as exc:
        raise HttpError(400, "malformed request line") from exc
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        key, value = name.strip().lower(), value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return method, target.split("?", 1)[0], version, headers


def _content_length(headers: Mapping[str, str]) -> int:
    try:
        length = int(headers.get("content-length", "0"))
    except ValueError as exc:
        raise HttpError(400, "bad content-length") from exc
    if not 0 <= length <= MAX_BODY:
        raise HttpError(413, "request body too large")
    return length


def response_head(status: int, headers: Mapping[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} {reason_phrase(status)}"]
    lines.extend(f"{name}: {value}" for name, value in headers.items())
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def dumps(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def error_body(message: str, error_type: str, code: str | int | None = None) -> JsonDict:
    return {"error": {"message": message, "type": error_type, "param": None, "code": code}}


_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    529: "overloaded_error",
}


def error_type_for(status: int) -> str:
    return _ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")


async def send_json(
    conn: HttpConnection,
    req: HttpRequest,
    status: int,
    payload: Any,
    headers: Mapping[str, str] | None = None,
) -> bool:
    """Send a JSON response; returns whether the connection stays open."""
    all_headers = {"content-type": "application/json", **(headers or {})}
    await conn.send(status, all_headers, dumps(payload), close=not req.keep_alive)
    return req.keep_alive
