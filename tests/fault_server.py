"""A fault-injecting OpenAI-compatible HTTP server for tests and benchmarks.

Speaks real HTTP/1.1 over real loopback sockets (stdlib asyncio only), so the client
under test exercises its whole stack: connection pool, keep-alive, chunked SSE, timeouts.

Each ``POST /v1/chat/completions`` consumes the next scripted :class:`Outcome` (FIFO),
else a random one drawn from the :class:`ChaosMix`, else the server's ``default``.

In-process use::

    async with FaultServer(text="hi there") as srv:
        srv.script(Outcome.rate_limited(retry_after="1"), Outcome.ok())
        ...  # point a client at srv.base_url
        assert [r.outcome for r in srv.requests] == ["status", "ok"]

Separate process (benchmarks)::

    python -m tests.fault_server --port 0 --rpm 600 --chaos '{"p429": 0.1}' --seed 1
    # prints "READY <port>", serves until SIGTERM/SIGINT

or ``with FaultServerProcess(rpm=600) as proc: ...`` and control it over HTTP via
``/_control/script``, ``/_control/reset``, ``/_control/requests``, ``/_control/config``
and ``/_control/stats`` (or the helper methods of :class:`FaultServerProcess`).

Token accounting is deterministic: prompt_tokens = characters of all message contents // 4
(at least 1); completion_tokens = whitespace-separated words of the answer text plus
len(arguments) // 4 per tool call (at least 1). Against ``tpm`` each request is charged
prompt_tokens + its ``max_tokens``/``max_completion_tokens`` (0 when absent).

With ``context_window`` set, a request whose prompt_tokens plus its ``max_tokens`` (0 when
absent) exceed it is refused as a real server does: 400 ``context_length_exceeded``,
"This model's maximum context length is N tokens..." (recorded as that outcome; the
script is not consumed).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import http
import json
import math
import os
import random
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from types import TracebackType
from typing import IO, Any, ClassVar, NamedTuple

__all__ = [
    "DEFAULT_TEXT",
    "KINDS",
    "ChaosMix",
    "FaultServer",
    "FaultServerProcess",
    "Outcome",
    "RecordedRequest",
    "count_completion_tokens",
    "count_prompt_tokens",
]

JsonDict = dict[str, Any]

DEFAULT_TEXT = "Hello from the fault server — all systems nominal."
KINDS = frozenset(
    {"ok", "status", "reset", "hang", "slow_first_byte", "stream_cut", "garbage", "stream_error"}
)
GARBAGE_THEN = frozenset({"continue", "close", "reset"})
WINDOW_SECONDS = 60.0
HEADER_LIMIT = 1 << 20
MAX_BODY = 64 << 20
SPLIT_PAUSE = 0.005  # seconds between the two halves of a split UTF-8 character
REPO_ROOT = Path(__file__).resolve().parent.parent
_WORD = re.compile(r"\s*\S+")


# --------------------------------------------------------------------------- outcomes


@dataclass(frozen=True)
class Outcome:
    """What the server does with one chat request. Build with the classmethods or directly.

    JSON form: ``{"kind": "status", "status": 503, "headers": {"retry-after": "2"}}``
    (``status`` is the JSON name of ``status_code``, ``type`` of ``error_type``).
    """

    kind: str = "ok"
    text: str | None = None  # answer text; None = the server's text (or no content with tools)
    delay: float = 0.0  # seconds before the first byte (ok, slow_first_byte)
    tool_calls: list[dict[str, Any]] | None = None  # [{"name": ..., "arguments": "<json>"}]
    headers: dict[str, str] | None = None  # extra response headers
    usage: dict[str, int] | None = None  # merged over the computed usage
    chunk_size: int | None = None  # stream: content delta size in chars (None = per word)
    split_utf8: bool = False  # stream: split a multi-byte character across two writes
    keepalive: bool = False  # stream: ": keep-alive" comments between events
    crlf: bool = False  # stream: \r\n line endings
    no_space: bool = False  # stream: "data:{...}" without the space
    omit_done: bool = False  # stream: no "data: [DONE]"
    chunk_delay: float = 0.0  # stream: seconds between events
    status_code: int = 500  # status
    message: str | None = None  # status / stream_error: error message
    code: str | int | None = None  # status / stream_error: error code
    error_type: str | None = None  # status / stream_error: error type
    after: int = 0  # stream_cut / garbage / stream_error: deltas sent before the fault
    then: str = "close"  # garbage: "continue" | "close" | "reset" after the bad event

    _ALIASES: ClassVar[dict[str, str]] = {"status": "status_code", "type": "error_type"}

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown outcome kind {self.kind!r}; expected one of {sorted(KINDS)}")
        if self.then not in GARBAGE_THEN:
            raise ValueError(f"then must be one of {sorted(GARBAGE_THEN)}, not {self.then!r}")

    # -- JSON

    @classmethod
    def from_json(cls, data: Outcome | str | Mapping[str, Any]) -> Outcome:
        """Accept an Outcome, a bare kind name, or a JSON dict."""
        if isinstance(data, Outcome):
            return data
        if isinstance(data, str):
            return cls(kind=data)
        known = {f.name for f in dataclasses.fields(cls)}
        kwargs: JsonDict = {}
        for key, value in data.items():
            name = cls._ALIASES.get(key, key)
            if name not in known:
                raise ValueError(f"unknown outcome option {key!r}")
            kwargs[name] = value
        return cls(**kwargs)

    def to_json(self) -> JsonDict:
        reverse = {v: k for k, v in self._ALIASES.items()}
        out: JsonDict = {"kind": self.kind}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name != "kind" and value != f.default:
                out[reverse.get(f.name, f.name)] = value
        return out

    # -- convenience constructors

    @classmethod
    def ok(
        cls,
        text: str | None = None,
        *,
        delay: float = 0.0,
        tool_calls: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        usage: dict[str, int] | None = None,
        chunk_size: int | None = None,
        split_utf8: bool = False,
        keepalive: bool = False,
        crlf: bool = False,
        no_space: bool = False,
        omit_done: bool = False,
        chunk_delay: float = 0.0,
    ) -> Outcome:
        return cls(
            "ok",
            text=text,
            delay=delay,
            tool_calls=tool_calls,
            headers=headers,
            usage=usage,
            chunk_size=chunk_size,
            split_utf8=split_utf8,
            keepalive=keepalive,
            crlf=crlf,
            no_space=no_space,
            omit_done=omit_done,
            chunk_delay=chunk_delay,
        )

    @classmethod
    def status(
        cls,
        status: int,
        *,
        message: str | None = None,
        code: str | int | None = None,
        error_type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Outcome:
        return cls(
            "status",
            status_code=status,
            message=message,
            code=code,
            error_type=error_type,
            headers=headers,
        )

    @classmethod
    def rate_limited(
        cls,
        retry_after: str | None = "1",
        *,
        retry_after_ms: str | None = None,
        headers: dict[str, str] | None = None,
        message: str | None = None,
    ) -> Outcome:
        merged = dict(headers or {})
        if retry_after is not None:
            merged["retry-after"] = retry_after
        if retry_after_ms is not None:
            merged["retry-after-ms"] = retry_after_ms
        return cls.status(429, message=message, code="rate_limit_exceeded", headers=merged)

    @classmethod
    def context_length_exceeded(cls) -> Outcome:
        return cls.status(
            400,
            message="This model's maximum context length is 8192 tokens.",
            code="context_length_exceeded",
        )

    @classmethod
    def reset(cls) -> Outcome:
        return cls("reset")

    @classmethod
    def hang(cls) -> Outcome:
        return cls("hang")

    @classmethod
    def slow_first_byte(cls, delay: float, text: str | None = None) -> Outcome:
        return cls("slow_first_byte", delay=delay, text=text)

    @classmethod
    def stream_cut(
        cls,
        after: int = 1,
        *,
        text: str | None = None,
        chunk_size: int | None = None,
        chunk_delay: float = 0.0,
    ) -> Outcome:
        return cls(
            "stream_cut", after=after, text=text, chunk_size=chunk_size, chunk_delay=chunk_delay
        )

    @classmethod
    def garbage(
        cls,
        after: int = 0,
        *,
        then: str = "close",
        text: str | None = None,
        chunk_size: int | None = None,
    ) -> Outcome:
        return cls("garbage", after=after, then=then, text=text, chunk_size=chunk_size)

    @classmethod
    def stream_error(
        cls,
        after: int = 0,
        *,
        message: str | None = None,
        text: str | None = None,
        chunk_size: int | None = None,
    ) -> Outcome:
        return cls("stream_error", after=after, message=message, text=text, chunk_size=chunk_size)


OK = Outcome()


@dataclass(frozen=True)
class ChaosMix:
    """Random outcomes by probability; the unlisted probability mass is a plain ``ok``."""

    p429: float = 0.0
    p503: float = 0.0
    preset: float = 0.0  # connection reset
    p500: float = 0.0
    p529: float = 0.0
    retry_after: str = "1"  # retry-after header of the drawn 429s
    seed: int | None = None

    def __post_init__(self) -> None:
        probabilities = self._probabilities()
        if any(not 0.0 <= p <= 1.0 for p in probabilities) or sum(probabilities) > 1.0 + 1e-9:
            raise ValueError(f"chaos probabilities must be in [0, 1] and sum to <= 1: {self}")

    def _probabilities(self) -> tuple[float, ...]:
        return (self.p429, self.p503, self.preset, self.p500, self.p529)

    def draw(self, rng: random.Random) -> Outcome:
        roll = rng.random()
        for probability, make in zip(self._probabilities(), self._makers(), strict=True):
            if roll < probability:
                return make()
            roll -= probability
        return OK

    def _makers(self) -> tuple[Callable[[], Outcome], ...]:
        return (
            lambda: Outcome.rate_limited(self.retry_after),
            lambda: Outcome.status(503),
            Outcome.reset,
            lambda: Outcome.status(500),
            lambda: Outcome.status(529),
        )

    @classmethod
    def from_json(cls, data: Mapping[str, Any], seed: int | None = None) -> ChaosMix:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown chaos options {sorted(unknown)}")
        mix = cls(**data)
        return mix if seed is None else dataclasses.replace(mix, seed=seed)

    def to_json(self) -> JsonDict:
        return dataclasses.asdict(self)


@dataclass
class RecordedRequest:
    """One request the server received (control requests are not recorded)."""

    method: str
    path: str
    headers: dict[str, str]  # lowercased names
    json: Any  # parsed body, or None
    time: float  # server clock at arrival
    outcome: str  # outcome kind, or rate_limited / unauthorized / bad_request / models / ...
    stream: bool
    connection: int  # 1-based number of the TCP connection it arrived on

    def to_json(self) -> JsonDict:
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------- token counting


def count_prompt_tokens(messages: Any) -> int:
    """Characters of all message contents // 4, at least 1."""
    chars = 0
    if isinstance(messages, list):
        for message in messages:
            if isinstance(message, dict):
                chars += _content_chars(message.get("content"))
    return max(1, chars // 4)


def _content_chars(content: Any) -> int:
    if isinstance(content, str):
        return len(content)
    if isinstance(content, list):
        texts = (part.get("text") for part in content if isinstance(part, dict))
        return sum(len(text) for text in texts if isinstance(text, str))
    return 0


def count_completion_tokens(text: str | None, arguments: Sequence[str] = ()) -> int:
    """Whitespace-separated words of the text plus len(arguments) // 4 per call, at least 1."""
    words = len(text.split()) if text else 0
    return max(1, words + sum(len(args) // 4 for args in arguments))


# --------------------------------------------------------------------------- rate limits


class Throttle(NamedTuple):
    limit: str  # "requests" or "tokens"
    wait: float  # seconds until the request would fit


class RateWindow:
    """Sliding 60 s window enforcing requests-per-minute and tokens-per-minute budgets."""

    def __init__(self, rpm: int | None, tpm: int | None, clock: Callable[[], float]) -> None:
        self.rpm = rpm
        self.tpm = tpm
        self._clock = clock
        self._events: deque[tuple[float, int]] = deque()
        self._tokens = 0

    @property
    def enabled(self) -> bool:
        return self.rpm is not None or self.tpm is not None

    def clear(self) -> None:
        self._events.clear()
        self._tokens = 0

    def admit(self, tokens: int) -> Throttle | None:
        """Record the request and return None, or return why and how long to wait."""
        if not self.enabled:
            return None
        now = self._clock()
        self._prune(now)
        if self.rpm is not None and len(self._events) >= self.rpm:
            wait = self._events[0][0] + WINDOW_SECONDS - now if self._events else WINDOW_SECONDS
            return Throttle("requests", wait)
        if self.tpm is not None and self._tokens + tokens > self.tpm:
            return Throttle("tokens", self._wait_for_tokens(now, tokens))
        self._events.append((now, tokens))
        self._tokens += tokens
        return None

    def _prune(self, now: float) -> None:
        while self._events and self._events[0][0] <= now - WINDOW_SECONDS:
            self._tokens -= self._events.popleft()[1]

    def _wait_for_tokens(self, now: float, tokens: int) -> float:
        assert self.tpm is not None
        excess = self._tokens + tokens - self.tpm
        if tokens > self.tpm:
            return WINDOW_SECONDS
        for stamp, spent in self._events:
            excess -= spent
            if excess <= 0:
                return stamp + WINDOW_SECONDS - now
        return WINDOW_SECONDS

    def headers(self) -> dict[str, str]:
        out: dict[str, str] = {}
        if self.rpm is not None:
            out["x-ratelimit-limit-requests"] = str(self.rpm)
            out["x-ratelimit-remaining-requests"] = str(max(0, self.rpm - len(self._events)))
        if self.tpm is not None:
            out["x-ratelimit-limit-tokens"] = str(self.tpm)
            out["x-ratelimit-remaining-tokens"] = str(max(0, self.tpm - self._tokens))
        return out


# --------------------------------------------------------------------------- HTTP/1.1 wire


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


def _reason(status: int) -> str:
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
        self._writer.write(_head(status, all_headers) + body)
        await self._writer.drain()

    async def start_chunked(self, status: int, headers: Mapping[str, str], *, close: bool) -> None:
        all_headers = {**headers, "transfer-encoding": "chunked"}
        if close:
            all_headers["connection"] = "close"
        self._writer.write(_head(status, all_headers))
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


def _head(status: int, headers: Mapping[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} {_reason(status)}"]
    lines.extend(f"{name}: {value}" for name, value in headers.items())
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _dumps(payload: Any) -> bytes:
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


def _error_type(status: int) -> str:
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
    await conn.send(status, all_headers, _dumps(payload), close=not req.keep_alive)
    return req.keep_alive


# --------------------------------------------------------------------------- OpenAI payloads


@dataclass
class ChatRequest:
    """The parts of a chat request body the server cares about."""

    stream: bool
    include_usage: bool
    prompt_tokens: int
    budget_tokens: int  # charged against tpm

    @classmethod
    def from_body(cls, body: JsonDict) -> ChatRequest:
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        prompt = count_prompt_tokens(body.get("messages"))
        limit = body.get("max_completion_tokens", body.get("max_tokens"))
        extra = limit if isinstance(limit, int) and limit > 0 else 0
        return cls(body.get("stream") is True, include_usage, prompt, prompt + extra)


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: str


class CompletionBuilder:
    """Builds the exact OpenAI chat.completion and chat.completion.chunk payloads."""

    def __init__(
        self,
        *,
        completion_id: str,
        model: str,
        content: str | None,
        tool_calls: list[ToolCall],
        prompt_tokens: int,
        usage_override: Mapping[str, int] | None,
    ) -> None:
        self.completion_id = completion_id
        self.model = model
        self.created = int(time.time())
        self.content = content
        self.tool_calls = tool_calls
        self.prompt_tokens = prompt_tokens
        self.usage_override = usage_override

    @property
    def finish_reason(self) -> str:
        return "tool_calls" if self.tool_calls else "stop"

    def usage(self) -> JsonDict:
        completion = count_completion_tokens(self.content, [t.arguments for t in self.tool_calls])
        usage: JsonDict = {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": self.prompt_tokens + completion,
        }
        usage.update(self.usage_override or {})
        return usage

    def completion(self) -> JsonDict:
        message: JsonDict = {"role": "assistant", "content": self.content}
        if self.tool_calls:
            message["tool_calls"] = [
                {
                    "id": t.id,
                    "type": "function",
                    "function": {"name": t.name, "arguments": t.arguments},
                }
                for t in self.tool_calls
            ]
        return {
            "id": self.completion_id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "message": message, "finish_reason": self.finish_reason}],
            "usage": self.usage(),
        }

    def chunks(self, chunk_size: int | None, include_usage: bool) -> tuple[list[JsonDict], int]:
        """All stream chunks (role, deltas, finish, usage?) and how many deltas there are."""
        role: JsonDict = {"role": "assistant", "content": "" if self.content is not None else None}
        deltas: list[JsonDict] = [{"content": p} for p in split_text(self.content, chunk_size)]
        deltas.extend(self._tool_deltas())
        chunks = [self._chunk(role), *(self._chunk(d) for d in deltas)]
        chunks.append(self._chunk({}, self.finish_reason))
        if include_usage:
            for chunk in chunks:
                chunk["usage"] = None
            chunks.append({**self._chunk({}), "choices": [], "usage": self.usage()})
        return chunks, len(deltas)

    def _tool_deltas(self) -> list[JsonDict]:
        deltas: list[JsonDict] = []
        for index, call in enumerate(self.tool_calls):
            function = {"name": call.name, "arguments": ""}
            first = {"index": index, "id": call.id, "type": "function", "function": function}
            deltas.append({"tool_calls": [first]})
            for piece in split_in_parts(call.arguments, 3):
                deltas.append({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
        return deltas

    def _chunk(self, delta: JsonDict, finish_reason: str | None = None) -> JsonDict:
        return {
            "id": self.completion_id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        }


def split_text(text: str | None, chunk_size: int | None) -> list[str]:
    """Word-ish pieces ("Hello", " world") or fixed-size pieces; joined they give the text."""
    if not text:
        return []
    if chunk_size:
        return [text[i : i + chunk_size] for i in range(0, len(text), chunk_size)]
    pieces: list[str] = _WORD.findall(text)
    rest = text[sum(len(p) for p in pieces) :]
    return [*pieces, rest] if rest else pieces


def split_in_parts(text: str, parts: int) -> list[str]:
    size = max(1, math.ceil(len(text) / parts))
    return [text[i : i + size] for i in range(0, len(text), size)]


class SseEncoder:
    """Formats server-sent events with the outcome's line-ending and spacing quirks."""

    def __init__(self, *, crlf: bool = False, no_space: bool = False) -> None:
        self._end = b"\r\n\r\n" if crlf else b"\n\n"
        self._prefix = b"data:" if no_space else b"data: "

    def data(self, payload: bytes) -> bytes:
        return self._prefix + payload + self._end

    def json(self, payload: Any) -> bytes:
        return self.data(_dumps(payload))

    def comment(self, text: str) -> bytes:
        return b": " + text.encode() + self._end

    def done(self) -> bytes:
        return self.data(b"[DONE]")


# --------------------------------------------------------------------------- playing outcomes


class ChatResponder:
    """Plays one Outcome as the answer to one chat request on one connection."""

    def __init__(
        self,
        conn: HttpConnection,
        req: HttpRequest,
        chat: ChatRequest,
        outcome: Outcome,
        builder: CompletionBuilder,
        headers: Mapping[str, str],
    ) -> None:
        self.conn = conn
        self.req = req
        self.chat = chat
        self.outcome = outcome
        self.builder = builder
        extra = {k.lower(): v for k, v in (outcome.headers or {}).items()}
        self.headers = {**headers, **extra}
        self.sse = SseEncoder(crlf=outcome.crlf, no_space=outcome.no_space)

    async def play(self) -> bool:
        """Answer; returns whether the connection stays open for the next request."""
        kind = self.outcome.kind
        if kind == "reset":
            self.conn.reset()
            return False
        if kind == "hang":
            await self.conn.wait_for_peer_close()
            return False
        if kind == "status":
            return await self._error_status()
        if self.outcome.delay > 0:
            await asyncio.sleep(self.outcome.delay)
        if self.chat.stream:
            return await self._stream()
        return await self._plain()

    async def _error_status(self) -> bool:
        o = self.outcome
        message = o.message or f"fault server: injected {o.status_code} {_reason(o.status_code)}"
        code = o.code if o.code is not None else o.status_code
        body = error_body(message, o.error_type or _error_type(o.status_code), code)
        return await send_json(self.conn, self.req, o.status_code, body, self.headers)

    async def _plain(self) -> bool:
        kind = self.outcome.kind
        if kind == "garbage":
            headers = {"content-type": "application/json", **self.headers}
            await self.conn.send(200, headers, b"{not json!!", close=not self.req.keep_alive)
            return self.req.keep_alive
        if kind == "stream_error":
            return await send_json(self.conn, self.req, 200, self._stream_error_body())
        if kind == "stream_cut":
            await self._partial_body_then_reset()
            return False
        return await send_json(self.conn, self.req, 200, self.builder.completion(), self.headers)

    async def _partial_body_then_reset(self) -> None:
        body = _dumps(self.builder.completion())
        headers = {"content-type": "application/json", "content-length": str(len(body))}
        await self.conn.send_raw(_head(200, {**headers, **self.headers}) + body[: len(body) // 2])
        await asyncio.sleep(SPLIT_PAUSE)
        self.conn.reset()

    def _stream_error_body(self) -> JsonDict:
        message = self.outcome.message or "fault server: injected error mid-stream"
        return error_body(message, self.outcome.error_type or "server_error", 500)

    async def _stream(self) -> bool:
        chunks, n_deltas = self.builder.chunks(self.outcome.chunk_size, self.chat.include_usage)
        events = [self.sse.json(chunk) for chunk in chunks]
        if not self.outcome.omit_done:
            events.append(self.sse.done())
        faulty = self.outcome.kind in ("stream_cut", "garbage", "stream_error")
        fault_at = 1 + min(self.outcome.after, n_deltas) if faulty else -1
        headers = {"content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache"}
        closes = self.outcome.kind == "garbage" and self.outcome.then != "continue"
        close = closes or not self.req.keep_alive
        await self.conn.start_chunked(200, {**headers, **self.headers}, close=close)
        split_pending = self.outcome.split_utf8
        for index, event in enumerate(events):
            if index == fault_at:
                verdict = await self._stream_fault()
                if verdict is not None:
                    return verdict
            if index > 0:
                await self._between_events()
            if split_pending and _first_multibyte(event) >= 0:
                split_pending = False
                await self._send_split(event)
            else:
                await self.conn.send_chunk(event)
        await self.conn.end_chunked()
        return self.req.keep_alive

    async def _stream_fault(self) -> bool | None:
        """Inject the fault; None means carry on streaming, else the keep-alive verdict."""
        kind = self.outcome.kind
        if kind == "stream_cut":
            await asyncio.sleep(SPLIT_PAUSE)  # let the sent deltas reach the client first
            self.conn.reset()
            return False
        if kind == "stream_error":
            await self.conn.send_chunk(self.sse.json(self._stream_error_body()))
            await self.conn.end_chunked()
            return self.req.keep_alive
        await self.conn.send_chunk(self.sse.data(b"{not json!!"))
        if self.outcome.then == "continue":
            return None
        if self.outcome.then == "reset":
            await asyncio.sleep(SPLIT_PAUSE)
            self.conn.reset()
            return False
        await self.conn.end_chunked()
        return False

    async def _between_events(self) -> None:
        if self.outcome.chunk_delay > 0:
            await asyncio.sleep(self.outcome.chunk_delay)
        if self.outcome.keepalive:
            await self.conn.send_chunk(self.sse.comment("keep-alive"))

    async def _send_split(self, event: bytes) -> None:
        """Send the event as two HTTP chunks that cut a multi-byte UTF-8 character in half."""
        cut = _first_multibyte(event) + 1
        await self.conn.send_chunk(event[:cut])
        await asyncio.sleep(SPLIT_PAUSE)
        await self.conn.send_chunk(event[cut:])


def _first_multibyte(data: bytes) -> int:
    """Index of the first lead byte of a multi-byte UTF-8 character, or -1."""
    for index, byte in enumerate(data):
        if byte >= 0xC0:
            return index
    return -1


# --------------------------------------------------------------------------- the server


class _Unset(Enum):
    UNSET = 0


UNSET = _Unset.UNSET
Route = Callable[[HttpConnection, HttpRequest, RecordedRequest], Awaitable[bool]]


class FaultServer:
    """The in-process fault server. ``async with FaultServer() as srv: srv.base_url``."""

    def __init__(
        self,
        *,
        text: str = DEFAULT_TEXT,
        model: str = "fault-model",
        rpm: int | None = None,
        tpm: int | None = None,
        default: Outcome | str | Mapping[str, Any] = OK,
        chaos: ChaosMix | None = None,
        require_api_key: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.monotonic,
        context_window: int | None = None,
    ) -> None:
        self.text = text
        self.context_window = context_window
        self.model = model
        self.default = Outcome.from_json(default)
        self.chaos = chaos
        self.require_api_key = require_api_key
        self.host = host
        self.port = port
        self.requests: list[RecordedRequest] = []
        self.connections_total = 0
        self._clock = clock
        self._limits = RateWindow(rpm, tpm, clock)
        self._rng = random.Random(chaos.seed if chaos else None)
        self._script: deque[Outcome] = deque()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stopping = False
        self._completions = 0
        self._call_ids = 0
        self._control = ControlApi(self)
        self._routes: dict[tuple[str, str], Route] = {
            ("POST", "/v1/chat/completions"): self._chat,
            ("GET", "/v1/models"): self._models,
        }

    # -- lifecycle

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def control_url(self) -> str:
        return f"http://{self.host}:{self.port}/_control"

    @property
    def open_connections(self) -> int:
        return len(self._tasks)

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("FaultServer already started")
        self._stopping = False
        self._server = await asyncio.start_server(
            self._on_connect, self.host, self.port, limit=HEADER_LIMIT
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Close the listener and every connection (hanging ones too); idempotent."""
        if self._server is None:
            return
        self._stopping = True
        self._server.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    async def __aenter__(self) -> FaultServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- control

    def script(self, *outcomes: Outcome | str | Mapping[str, Any]) -> None:
        """Append outcomes to the FIFO script."""
        self._script.extend(Outcome.from_json(o) for o in outcomes)

    @property
    def scripted(self) -> list[Outcome]:
        """Outcomes still waiting in the script."""
        return list(self._script)

    def reset(self) -> None:
        """Clear the script, the request log and the rate windows; reseed chaos."""
        self._script.clear()
        self.requests.clear()
        self._limits.clear()
        self._rng = random.Random(self.chaos.seed if self.chaos else None)

    def configure(
        self,
        *,
        default: Outcome | str | Mapping[str, Any] | _Unset = UNSET,
        chaos: ChaosMix | _Unset | None = UNSET,
        rpm: int | _Unset | None = UNSET,
        tpm: int | _Unset | None = UNSET,
        text: str | _Unset = UNSET,
        context_window: int | _Unset | None = UNSET,
    ) -> None:
        """Change settings of a running server; arguments left out keep their value."""
        if not isinstance(context_window, _Unset):
            self.context_window = context_window
        if not isinstance(default, _Unset):
            self.default = Outcome.from_json(default)
        if not isinstance(chaos, _Unset):
            self.chaos = chaos
            self._rng = random.Random(chaos.seed if chaos else None)
        if not isinstance(rpm, _Unset):
            self._limits.rpm = rpm
        if not isinstance(tpm, _Unset):
            self._limits.tpm = tpm
        if not isinstance(text, _Unset):
            self.text = text

    def config_json(self) -> JsonDict:
        return {
            "default": self.default.to_json(),
            "chaos": self.chaos.to_json() if self.chaos else None,
            "rpm": self._limits.rpm,
            "tpm": self._limits.tpm,
            "text": self.text,
            "model": self.model,
            "context_window": self.context_window,
        }

    def stats_json(self) -> JsonDict:
        return {
            "connections": self.connections_total,
            "open_connections": self.open_connections,
            "requests": len(self.requests),
            "scripted": len(self._script),
        }

    # -- connections

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if self._stopping or task is None:
            writer.close()
            return
        self._tasks.add(task)
        self.connections_total += 1
        conn = HttpConnection(reader, writer, self.connections_total)
        try:
            await self._serve(conn)
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            pass  # the client went away; nothing to answer
        except asyncio.CancelledError:
            # stop() cancelled this leaf task. End normally: Python 3.11's stream protocol
            # calls task.exception() on it, which would log a spurious CancelledError.
            pass
        finally:
            self._tasks.discard(task)
            await conn.close()

    async def _serve(self, conn: HttpConnection) -> None:
        keep_alive = True
        while keep_alive:
            try:
                req = await conn.read_request()
            except HttpError as exc:
                body = _dumps(error_body(str(exc), "invalid_request_error"))
                await conn.send(exc.status, {"content-type": "application/json"}, body, close=True)
                return
            if req is None:
                return
            keep_alive = await self._dispatch(conn, req)

    async def _dispatch(self, conn: HttpConnection, req: HttpRequest) -> bool:
        if req.path.startswith("/_control/"):
            return await self._control.handle(conn, req)
        body = _loads_or_none(req.body)
        stream = isinstance(body, dict) and body.get("stream") is True
        record = RecordedRequest(
            req.method, req.path, req.headers, body, self._clock(), "", stream, conn.number
        )
        self.requests.append(record)
        route = self._routes.get((req.method, req.path))
        if route is None:
            record.outcome = "not_found"
            message = f"no route for {req.method} {req.path}"
            return await send_json(conn, req, 404, error_body(message, "not_found_error"))
        if not self._authorized(req):
            record.outcome = "unauthorized"
            payload = error_body("Incorrect API key provided.", _error_type(401), "invalid_api_key")
            return await send_json(conn, req, 401, payload)
        return await route(conn, req, record)

    def _authorized(self, req: HttpRequest) -> bool:
        if self.require_api_key is None:
            return True
        return req.headers.get("authorization") == f"Bearer {self.require_api_key}"

    # -- endpoints

    async def _models(
        self, conn: HttpConnection, req: HttpRequest, record: RecordedRequest
    ) -> bool:
        record.outcome = "models"
        model = {"id": self.model, "object": "model", "created": 0, "owned_by": "fault-server"}
        return await send_json(conn, req, 200, {"object": "list", "data": [model]})

    async def _chat(self, conn: HttpConnection, req: HttpRequest, record: RecordedRequest) -> bool:
        body = record.json
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            record.outcome = "bad_request"
            payload = error_body("'messages' must be a list", "invalid_request_error")
            return await send_json(conn, req, 400, payload)
        chat = ChatRequest.from_body(body)
        throttle = self._limits.admit(chat.budget_tokens)
        if throttle is not None:
            record.outcome = "rate_limited"
            return await self._throttled(conn, req, throttle)
        if self.context_window is not None and chat.budget_tokens > self.context_window:
            record.outcome = "context_length_exceeded"
            return await self._too_long(conn, req, chat)
        outcome = self._next_outcome()
        record.outcome = outcome.kind
        builder = self._builder(outcome, chat)
        headers = {"x-request-id": builder.completion_id, **self._limits.headers()}
        return await ChatResponder(conn, req, chat, outcome, builder, headers).play()

    async def _too_long(self, conn: HttpConnection, req: HttpRequest, chat: ChatRequest) -> bool:
        completion = chat.budget_tokens - chat.prompt_tokens
        message = (
            f"This model's maximum context length is {self.context_window} tokens. However, "
            f"you requested {chat.budget_tokens} tokens ({chat.prompt_tokens} in the messages, "
            f"{completion} in the completion). Please reduce the length of the messages or "
            "completion."
        )
        payload = error_body(message, "invalid_request_error", "context_length_exceeded")
        return await send_json(conn, req, 400, payload)

    async def _throttled(self, conn: HttpConnection, req: HttpRequest, throttle: Throttle) -> bool:
        seconds = max(1, math.ceil(throttle.wait))
        limit = self._limits.rpm if throttle.limit == "requests" else self._limits.tpm
        message = (
            f"Rate limit reached for {throttle.limit} per min: Limit {limit}. "
            f"Please try again in {seconds}s."
        )
        headers = {"retry-after": str(seconds), **self._limits.headers()}
        payload = error_body(message, throttle.limit, "rate_limit_exceeded")
        return await send_json(conn, req, 429, payload, headers)

    def _next_outcome(self) -> Outcome:
        if self._script:
            return self._script.popleft()
        if self.chaos is not None:
            return self.chaos.draw(self._rng)
        return self.default

    def _builder(self, outcome: Outcome, chat: ChatRequest) -> CompletionBuilder:
        content = outcome.text
        if content is None and not outcome.tool_calls:
            content = self.text
        if outcome.split_utf8 and content is not None and content.isascii():
            content += " ✓"  # split_utf8 needs a multi-byte character to split
        self._completions += 1
        return CompletionBuilder(
            completion_id=f"chatcmpl-fault-{self._completions}",
            model=self.model,
            content=content,
            tool_calls=[self._tool_call(spec) for spec in outcome.tool_calls or []],
            prompt_tokens=chat.prompt_tokens,
            usage_override=outcome.usage,
        )

    def _tool_call(self, spec: Mapping[str, Any]) -> ToolCall:
        self._call_ids += 1
        arguments = spec.get("arguments", "{}")
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments)
        return ToolCall(f"call_{self._call_ids}", str(spec["name"]), arguments)


def _loads_or_none(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


class ControlApi:
    """``/_control/*``: drive a server that runs in another process."""

    def __init__(self, server: FaultServer) -> None:
        self._server = server
        self._handlers: dict[tuple[str, str], Callable[[Any], Any]] = {
            ("POST", "/_control/script"): self._script,
            ("POST", "/_control/reset"): self._reset,
            ("GET", "/_control/requests"): self._requests,
            ("POST", "/_control/config"): self._config,
            ("GET", "/_control/config"): lambda _body: server.config_json(),
            ("GET", "/_control/stats"): lambda _body: server.stats_json(),
        }

    async def handle(self, conn: HttpConnection, req: HttpRequest) -> bool:
        handler = self._handlers.get((req.method, req.path))
        if handler is None:
            message = f"no control route {req.method} {req.path}"
            return await send_json(conn, req, 404, error_body(message, "not_found_error"))
        try:
            result = handler(json.loads(req.body) if req.body else None)
        except (ValueError, TypeError, KeyError) as exc:
            payload = error_body(f"bad control request: {exc}", "invalid_request_error")
            return await send_json(conn, req, 400, payload)
        return await send_json(conn, req, 200, result)

    def _script(self, body: Any) -> JsonDict:
        items = body if isinstance(body, list) else [body]
        self._server.script(*items)
        return {"scripted": len(self._server.scripted)}

    def _reset(self, _body: Any) -> JsonDict:
        self._server.reset()
        return {"reset": True}

    def _requests(self, _body: Any) -> list[JsonDict]:
        return [r.to_json() for r in self._server.requests]

    def _config(self, body: Any) -> JsonDict:
        if not isinstance(body, dict):
            raise TypeError("config body must be a JSON object")
        changes: JsonDict = {}
        for key in ("default", "rpm", "tpm", "text", "context_window"):
            if key in body:
                changes[key] = body[key]
        if "chaos" in body:
            changes["chaos"] = ChaosMix.from_json(body["chaos"]) if body["chaos"] else None
        self._server.configure(**changes)
        return self._server.config_json()


# --------------------------------------------------------------------------- subprocess mode


class FaultServerProcess:
    """Runs ``python -m tests.fault_server`` in a child process (for benchmarks).

    ``with FaultServerProcess(rpm=600) as proc:`` or ``async with ...``; exposes ``port``,
    ``base_url`` and control helpers that talk to ``/_control/*`` over HTTP.
    """

    def __init__(
        self,
        *,
        text: str | None = None,
        model: str | None = None,
        rpm: int | None = None,
        tpm: int | None = None,
        default: Outcome | None = None,
        chaos: ChaosMix | None = None,
        require_api_key: str | None = None,
        startup_timeout: float = 15.0,
    ) -> None:
        self._args = _cli_args(text, model, rpm, tpm, default, chaos, require_api_key)
        self._startup_timeout = startup_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def control_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/_control"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self) -> None:
        if self._proc is not None:
            raise RuntimeError("FaultServerProcess already started")
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        command = [sys.executable, "-m", "tests.fault_server", "--port", "0", *self._args]
        self._proc = subprocess.Popen(
            command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=self._stderr
        )
        try:
            self.port = self._wait_ready(self._proc)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, proc: subprocess.Popen[bytes]) -> int:
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        deadline = time.monotonic() + self._startup_timeout
        buffer = b""
        while b"\n" not in buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"fault server not READY after {self._startup_timeout}s")
            readable, _, _ = select.select([fd], [], [], remaining)
            if readable:
                data = os.read(fd, 4096)
                if not data:
                    raise RuntimeError(f"fault server exited early: {self._stderr_text()}")
                buffer += data
        word, _, port = buffer.split(b"\n", 1)[0].decode().partition(" ")
        if word != "READY":
            raise RuntimeError(f"unexpected fault server output {buffer!r}")
        return int(port)

    def _stderr_text(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 5 s; idempotent."""
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def __enter__(self) -> FaultServerProcess:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> FaultServerProcess:
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)

    # -- control over HTTP (blocking; fine from async tests since the server is elsewhere)

    def script(self, *outcomes: Outcome | str | Mapping[str, Any]) -> None:
        self._control("POST", "script", [Outcome.from_json(o).to_json() for o in outcomes])

    def reset(self) -> None:
        self._control("POST", "reset")

    def requests(self) -> list[JsonDict]:
        result: list[JsonDict] = self._control("GET", "requests")
        return result

    def stats(self) -> JsonDict:
        result: JsonDict = self._control("GET", "stats")
        return result

    def configure(self, **changes: Any) -> JsonDict:
        """Keys: default (Outcome or dict), chaos (ChaosMix, dict or None), rpm, tpm, text."""
        if isinstance(changes.get("default"), Outcome):
            changes["default"] = changes["default"].to_json()
        if isinstance(changes.get("chaos"), ChaosMix):
            changes["chaos"] = changes["chaos"].to_json()
        result: JsonDict = self._control("POST", "config", changes)
        return result

    def _control(self, method: str, name: str, payload: Any = None) -> Any:
        import httpx  # only the helper needs it; keeps the server process lean

        response = httpx.request(method, f"{self.control_url}/{name}", json=payload, timeout=10)
        response.raise_for_status()
        return response.json()


def _cli_args(
    text: str | None,
    model: str | None,
    rpm: int | None,
    tpm: int | None,
    default: Outcome | None,
    chaos: ChaosMix | None,
    require_api_key: str | None,
) -> list[str]:
    args: list[str] = []
    options: dict[str, str | int | None] = {
        "--text": text,
        "--model": model,
        "--rpm": rpm,
        "--tpm": tpm,
        "--require-api-key": require_api_key,
        "--default": json.dumps(default.to_json()) if default else None,
        "--chaos": json.dumps(chaos.to_json()) if chaos else None,
    }
    for flag, value in options.items():
        if value is not None:
            args += [flag, str(value)]
    return args


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--rpm", type=int)
    parser.add_argument("--tpm", type=int)
    parser.add_argument("--chaos", help='JSON, e.g. {"p429": 0.1, "p503": 0.05, "preset": 0.01}')
    parser.add_argument("--seed", type=int)
    parser.add_argument("--text", default=DEFAULT_TEXT)
    parser.add_argument("--model", default="fault-model")
    parser.add_argument("--default", help='JSON outcome, e.g. {"kind": "status", "status": 503}')
    parser.add_argument("--require-api-key")
    parser.add_argument("--context-window", type=int)
    return parser.parse_args(argv)


async def _serve_until_signalled(args: argparse.Namespace) -> None:
    chaos = ChaosMix.from_json(json.loads(args.chaos), seed=args.seed) if args.chaos else None
    server = FaultServer(
        text=args.text,
        model=args.model,
        rpm=args.rpm,
        tpm=args.tpm,
        default=json.loads(args.default) if args.default else OK,
        chaos=chaos,
        require_api_key=args.require_api_key,
        host=args.host,
        port=args.port,
        context_window=args.context_window,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await server.start()
    try:
        print(f"READY {server.port}", flush=True)
        await stop.wait()
    finally:
        await server.stop()


def main(argv: Sequence[str] | None = None) -> int:
    asyncio.run(_serve_until_signalled(_parse_args(argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
