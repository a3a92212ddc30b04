"""The HTTP under a streamable-HTTP or SSE server: bounded, retried, and broken off.

Each server's ``httpx`` client gets a :class:`GuardedTransport`, beneath the SDK (which
still does everything of the protocol). It does three things the SDK does not:

- **Bounds.** A server's answer is read at most :data:`MAX_MESSAGE` bytes per
  message: a JSON body past it (or announcing more) is not read; an event of an event
  stream past it is skipped to its end (or, in the answer to a request, the stream is
  closed). The request it answered gets an error saying so, so a 1 GB body or an
  endless event takes no memory and the session goes on. A compressed answer is refused
  (the client asks for ``identity``): a small gzip body could inflate without bound
  above this layer. A message holding too many values to read
  (:func:`~.messages.crowded`: a small one could take gigabytes) is not read, and one
  the SDK cannot read (up to 4 MiB: not JSON, not a JSON-RPC message, nested too deep;
  the SDK would log it and leave the call waiting for its timeout) is its request's
  error too. A body
  no one needs (the old protocol's POST, a notification's, the DELETE ending a session;
  the SDK reads some of them whole, one at a time, and drops them) ends after
  :data:`_DRAINED` bytes or the call's timeout, and the DELETE, on the way out, has
  :data:`CLOSE_WAIT` seconds in all: an endless one held every later message, or the exit.
- **Retries before sending.** A connection that could not be made (refused, connect
  timeout) is tried again, :data:`CONNECT_RETRIES` times: nothing was sent, so nothing
  can happen twice. Anything after the request left is not retried here; whether a
  tool call may be sent again is :meth:`~.server.McpServer.call`'s question (its
  annotations).
- **A circuit breaker** (:class:`~.breaker.Breaker`): failures in a row (no
  connection, a connection lost, a 5xx) open it, and for a while every request fails at
  once without touching the network; then one is let through to try.

A failed JSON-RPC request (an ``id`` and a ``method``) is answered here with a JSON-RPC
error, not an exception: the SDK's streamable-HTTP client lets an HTTP error of one
request end the whole connection, and one 500 must not cost the session. Errors the
call may retry carry :data:`TRANSIENT`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from typing import TYPE_CHECKING, Any, Final

import anyio
import httpx

from .breaker import Breaker
from .messages import LISTS

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

#: Connection attempts after the first one that failed before anything was sent.
CONNECT_RETRIES: Final = 2
#: Seconds before each of those attempts.
RETRY_DELAYS: Final = (0.25, 0.75)
#: The JSON-RPC error code of a failure a read-only or idempotent call may retry.
TRANSIENT: Final = -32098
#: The code of a failure no retry mends (too large, refused by the breaker, a 4xx).
REFUSED: Final = -32097
#: Seconds the DELETE that ends a session may take, its answer's body included.
CLOSE_WAIT: Final = 5.0

log = logging.getLogger(__name__)

#: A JSON answer up to this size is checked to be JSON before the SDK gets it.
_CHECKED: Final = 4 << 20
#: Bytes kept of a message too long to read: enough to find the id it answers.
_HEAD: Final = 4096
_ID: Final = re.compile(rb'"id"\s*:\s*(-?\d+|"(?:[^"\\]|\\.)*")')
_METHOD: Final = re.compile(rb'"method"\s*:')
_BOUNDARY: Final = re.compile(rb"\r\n\r\n|\n\n|\r\r")
_LINE: Final = re.compile(rb"\r\n|\r|\n")
#: Bytes kept of an event being skipped: the longest boundary but its last byte.
_KEEP: Final = 3
#: The lines one event may have. The SDK's event parser keeps each of its lines as an
#: object of its own before joining them (some 140 bytes a line: 64 MiB of short lines
#: took 1.2 GB); the SDKs' servers send a message in one line.
MAX_EVENT_LINES: Final = 100_000
#: Bytes of an event's lines split at once, looking for its fields.
_LINES_AT_ONCE: Final = 1 << 16
#: Bytes read of a body no one needs before it is cut.
_DRAINED: Final = 1 << 20


class GuardedTransport(httpx.AsyncBaseTransport):
    """An ``httpx`` transport for one server's connection (a new one per connection,
    the breaker shared).

    Args:
        breaker: the server's breaker.
        max_message: the longest message read, in bytes.
        answers_in_body: whether a request's answer comes in its POST's response
            (streamable HTTP), so a failure can be answered there; the old SSE
            protocol answers on its GET stream and ignores a POST's body, so there a
            failure is raised, as the SDK expects.
        idle, total: seconds the answer to a request may go without a whole message
            (a JSON body: arrive), and last in all: the SDK stops waiting for an answer
            at the call's timeout but goes on reading its stream, so a server dripping
            a byte a second would otherwise hold a connection for the whole session.
    """

    def __init__(
        self,
        breaker: Breaker,
        max_message: int,
        *,
        answers_in_body: bool,
        idle: float = 120.0,
        total: float = 1200.0,
    ) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self.breaker = breaker
        self.max_message = max_message
        self.answers_in_body = answers_in_body
        self.idle = idle
        self.total = total
        #: The ids of requests whose answers may hold more values (tools/list).
        self.lists: set[object] = set()

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method != "DELETE":
            return await self._handle(request, time.monotonic() + self.idle)
        # The session's end, on the way out: it must not hold the exit.
        deadline = time.monotonic() + CLOSE_WAIT
        with anyio.move_on_after(CLOSE_WAIT):
            return await self._handle(request, deadline)
        raise httpx.ReadTimeout(f"no answer within {CLOSE_WAIT:g} s", request=request)

    async def _handle(self, request: httpx.Request, deadline: float) -> httpx.Response:
        """``request`` sent (``deadline``: when a body no one needs is cut)."""
        request_id, method = _request_of(request)
        if method in LISTS and isinstance(request_id, str | int):
            self.lists.add(request_id)

        def fail(message: str, code: int) -> httpx.Response:
            if request_id is None or not self.answers_in_body:  # the SDK handles errors
                raise httpx.ConnectError(message, request=request)
            return _error_response(request, request_id, code, message)

        refusal = self.breaker.refusal()
        if refusal is not None:
            return fail(refusal, REFUSED)
        for attempt in range(CONNECT_RETRIES + 1):
            try:
                response = await self._inner.handle_async_request(request)
                break
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:  # nothing was sent
                self.breaker.failure()
                if attempt == CONNECT_RETRIES or self.breaker.refusal() is not None:
                    return fail(f"could not connect ({attempt + 1} tries): {exc}", TRANSIENT)
                await asyncio.sleep(RETRY_DELAYS[min(attempt, len(RETRY_DELAYS) - 1)])
            except httpx.TransportError as exc:
                self.breaker.failure()
                return fail(f"the connection was lost: {exc or type(exc).__name__}", TRANSIENT)
        status = response.status_code
        if status >= 500:
            self.breaker.failure()
        else:
            self.breaker.success()
        encoding = response.headers.get("content-encoding", "identity").lower()
        if encoding not in ("identity", ""):
            await response.aclose()
            said = f"its answer came compressed ({encoding[:40]}) though asked not to be"
            return fail(said, REFUSED)
        if request.method == "GET":  # the long-lived event stream
            return _bounded(response, None, self.max_message, self.breaker, None, self.lists)
        if request_id is None or not self.answers_in_body or status == 404:
            # A body no one needs (404 to a request: the SDK's "session terminated").
            limit = min(self.max_message, _DRAINED)
            # httpx types Response.stream as sync or async; under an AsyncClient's
            # transport it is always the async one, which is what _Drained reads.
            response.stream = _Drained(response.stream, limit, deadline, request)  # type: ignore[arg-type]
            return response
        if status >= 400:
            await response.aclose()
            code = TRANSIENT if status >= 500 or status == 429 else REFUSED
            return fail(f"HTTP {status} {response.reason_phrase}".strip(), code)
        kind = response.headers.get("content-type", "").lower()
        if kind.startswith("application/json"):
            return await self._read_json(request, response, request_id, method)
        return _bounded(response, request_id, self.max_message, self.breaker, self, self.lists)

    async def _read_json(
        self, request: httpx.Request, response: httpx.Response, request_id: object, method: object
    ) -> httpx.Response:
        """The whole body, read here up to the bound (the SDK would read it all)."""
        too_long = f"its answer was over {self.max_message:,} bytes and was not read"
        length = response.headers.get("content-length", "")
        if length.isdigit() and int(length) > self.max_message:
            await response.aclose()
            return _error_response(request, request_id, REFUSED, too_long)
        body = bytearray()
        chunks = aiter(response.stream)  # type: ignore[arg-type]  # an async stream here
        try:
            with anyio.move_on_after(self.idle) as late:
                async for chunk in chunks:
                    body += chunk
                    if len(body) > self.max_message:
                        return _error_response(request, request_id, REFUSED, too_long)
            if late.cancelled_caught:
                said = f"its answer did not arrive within {self.idle:g} s"
                return _error_response(request, request_id, REFUSED, said)
        except httpx.TransportError as exc:
            self.breaker.failure()
            message = f"the connection was lost mid-answer: {exc or type(exc).__name__}"
            return _error_response(request, request_id, TRANSIENT, message)
        finally:
            await response.aclose()
        from .messages import MAX_LIST_VALUES, MAX_VALUES, crowded

        if isinstance(request_id, str | int):
            self.lists.discard(request_id)
        limit = MAX_LIST_VALUES if method in LISTS else MAX_VALUES
        unreadable = crowded(body, limit)
        if unreadable is None and len(body) <= _CHECKED:
            unreadable = _unreadable(body)
        if unreadable is not None:
            # The SDK would log it and answer nothing: the call would wait its timeout.
            return _error_response(request, request_id, REFUSED, unreadable)
        headers = [
            (k, v) for k, v in response.headers.multi_items() if k.lower() != "content-length"
        ]
        return httpx.Response(
            response.status_code, headers=headers, content=bytes(body), request=request
        )


def _unreadable(body: bytearray) -> str | None:
    """Why the SDK could not read ``body`` (``None``: it can): JSON that is no JSON-RPC
    message, or nested deeper than it reads, would leave the call waiting its timeout
    (and ``json.loads``, which checked it before, raised RecursionError from the
    transport: the connection was lost)."""
    from .messages import unreadable

    return unreadable(body)


def _request_of(request: httpx.Request) -> tuple[object, object]:
    """The JSON-RPC id and method of a request POSTed (``None`` for a notification, a
    response, a GET)."""
    if request.method != "POST":
        return None, None
    try:
        message = json.loads(request.content)
    except (httpx.RequestNotRead, ValueError):
        return None, None
    if isinstance(message, dict) and "method" in message and "id" in message:
        return message["id"], message["method"]
    return None, None


def _error(request_id: object, code: int, message: str) -> bytes:
    error = {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}
    return json.dumps(error).encode()


def _error_response(
    request: httpx.Request, request_id: object, code: int, message: str
) -> httpx.Response:
    return httpx.Response(
        200,
        headers={"content-type": "application/json"},
        content=_error(request_id, code, message),
        request=request,
    )


def _bounded(
    response: httpx.Response,
    request_id: object,
    limit: int,
    breaker: Breaker,
    timing: GuardedTransport | None,
    lists: set[object],
) -> httpx.Response:
    """``response`` with its body read through :class:`_Events` (``timing``: the
    transport whose ``idle`` and ``total`` bound the answer to a request)."""
    idle, total = (None, None) if timing is None else (timing.idle, timing.total)
    # httpx types Response.stream as sync or async; under an AsyncClient's transport it
    # is always the async one, which is what _Events reads.
    events = _Events(response.stream, request_id, limit, breaker, idle, total, lists)  # type: ignore[arg-type]
    response.stream = events
    return response


class _Events(httpx.AsyncByteStream):
    """A body passed on one server-sent event at a time, each at most ``limit`` bytes.

    An event past it: in the answer to a request (``request_id``), the request gets an
    error and the stream ends; elsewhere (the long-lived GET stream) it is skipped to
    its end and the request it answered, if its head names one, gets the error.
    A connection lost in the answer to a request is that request's error too, and so is
    an answer that goes ``idle`` seconds without a whole event or lasts ``total``.
    """

    def __init__(
        self,
        inner: httpx.AsyncByteStream,
        request_id: object,
        limit: int,
        breaker: Breaker,
        idle: float | None = None,
        total: float | None = None,
        lists: set[object] | None = None,
    ) -> None:
        self._inner = inner
        self._request_id = request_id
        self._lists = lists
        self._limit = limit
        self._breaker = breaker
        self._idle = idle
        self._total = total
        self._heard = 0.0

    async def _chunks(self) -> AsyncIterator[bytes | None]:
        """The inner stream's chunks; ``None`` once the answer is over its time
        (:meth:`heard` marks a whole event)."""
        chunks: AsyncIterator[bytes | None] = aiter(self._inner)
        if self._idle is None or self._total is None:
            async for piece in chunks:
                yield piece
            return
        began = self._heard = time.monotonic()
        while True:
            left = min(self._heard + self._idle, began + self._total) - time.monotonic()
            chunk: bytes | None = None
            with anyio.move_on_after(max(left, 0.0)) as late:
                chunk = await anext(chunks, None)
            if late.cancelled_caught:
                yield None
                return
            if chunk is None:
                return
            yield chunk

    def heard(self) -> None:
        self._heard = time.monotonic()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        too_long = f"its answer was over {self._limit:,} bytes and was not read"
        pending = bytearray()
        scanned = 0  # where the search for the end of the event goes on
        head: bytes | None = None  # the start of an event being skipped
        try:
            async for chunk in self._chunks():
                if chunk is None:  # (only for a request's answer)
                    said = (
                        f"no whole message in its answer for {self._idle:g} s"
                        f" (or the answer took over {self._total:g} s)"
                    )
                    yield _event(self._request_id, REFUSED, said)
                    return
                pending += chunk
                while True:
                    found = _BOUNDARY.search(pending, max(0, scanned - 3))
                    if found is None:
                        scanned = len(pending)
                        break
                    event, pending = bytes(pending[: found.end()]), pending[found.end() :]
                    scanned = 0
                    if head is None:
                        self.heard()
                        checked = _checked(event, self._request_id, self._lists)
                        if checked:
                            yield checked
                    else:
                        answered = _answered(head)
                        head = None
                        if answered is not None:
                            yield _event(answered, REFUSED, too_long)
                if head is not None:
                    # Skipping: what was read goes, but for the bytes that may begin the
                    # event's end (a boundary split between two chunks).
                    del pending[:-_KEEP]
                    scanned = 0
                elif len(pending) > self._limit:
                    if self._request_id is not None:
                        yield _event(self._request_id, REFUSED, too_long)
                        return
                    head = bytes(pending[:_HEAD])
                    del pending[:-_KEEP]
                    scanned = 0
        except httpx.TransportError as exc:
            if self._request_id is None:
                raise
            self._breaker.failure()
            message = f"the connection was lost mid-answer: {exc or type(exc).__name__}"
            yield _event(self._request_id, TRANSIENT, message)
            return
        if pending and head is None:
            yield bytes(pending)

    async def aclose(self) -> None:
        await self._inner.aclose()


class _Drained(httpx.AsyncByteStream):
    """A body the SDK reads only to drop it: it ends (the connection is closed) after
    ``limit`` bytes or at ``deadline``, and the log says so."""

    def __init__(
        self, inner: httpx.AsyncByteStream, limit: int, deadline: float, request: httpx.Request
    ) -> None:
        self._inner = inner
        self._limit = limit
        self._deadline = deadline
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        chunks: AsyncIterator[bytes] = aiter(self._inner)
        read = 0
        while True:
            chunk: bytes | None = None
            with anyio.move_on_after(max(self._deadline - time.monotonic(), 0.0)) as late:
                chunk = await anext(chunks, None)
            if late.cancelled_caught or chunk is None or read + len(chunk) > self._limit:
                if late.cancelled_caught or chunk is not None:
                    why = "took too long" if late.cancelled_caught else "was too long"
                    log.warning(
                        "MCP server at %s: the body of its answer to a %s %s; cut",
                        self._request.url.host,
                        self._request.method,
                        why,
                    )
                return
            read += len(chunk)
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


def _checked(event: bytes, request_id: object, lists: set[object] | None = None) -> bytes:
    """``event``; or in its place the error of the request it answered (named near its
    start), when its message holds too many values to read (:func:`~.messages.crowded`;
    an answer to a request in ``lists`` may hold more; one naming no request: taken for
    the answer to ``request_id``, if any), or when the SDK could not read it (up to
    :data:`_CHECKED` bytes; the SDK would log it and leave the call waiting its
    timeout), or when it has over :data:`MAX_EVENT_LINES` lines; or nothing, for too
    many values or lines in a message that answers nothing."""
    from .messages import MAX_LIST_VALUES, MAX_VALUES, crowded, many, unreadable

    if max(event.count(b"\n"), event.count(b"\r")) > MAX_EVENT_LINES:
        return _too_many_lines(event, request_id)
    crowd = many(event)
    if not crowd and len(event) > _CHECKED:
        return event
    kind, data = _fields(event)
    if kind not in (b"", b"message") or not data.strip():
        return event
    head = data[:_HEAD]
    asks = _METHOD.search(head) is not None  # the server's request or notification
    answered = None if asks else _answered(head)
    if crowd:
        # Not read, whatever it is; one naming no request is taken for the answer this
        # stream carries (if it carries one).
        target = request_id if answered is None and not asks else answered
        wide = isinstance(target, str | int) and lists is not None and target in lists
        if wide and lists is not None:
            lists.discard(target)
        problem = crowded(data, MAX_LIST_VALUES if wide else MAX_VALUES)
        if problem is not None:
            if target is None:
                log.warning("MCP server: a message answering no request not read: %s", problem)
                return b""
            return _event(target, REFUSED, problem)
    if asks or answered is None or len(event) > _CHECKED:
        return event  # (unreadable, the SDK logs it: it may be a broken notification)
    # (As text, as the SSE parser hands it to the SDK: bytes not UTF-8 replaced.)
    problem = unreadable(data.decode("utf-8", "replace"))
    return event if problem is None else _event(answered, REFUSED, problem)


def _too_many_lines(event: bytes, request_id: object) -> bytes:
    """In place of an event of over :data:`MAX_EVENT_LINES` lines, the error of the
    request it answers (named near its start, else the stream's), or nothing."""
    _, data = _fields(event)
    head = data[:_HEAD]
    asks = _METHOD.search(head) is not None
    answered = None if asks else _answered(head)
    target = request_id if answered is None and not asks else answered
    problem = f"its answer came in over {MAX_EVENT_LINES:,} lines and was not read"
    if target is None:
        log.warning("MCP server: a message answering no request not read: %s", problem)
        return b""
    return _event(target, REFUSED, problem)


def _fields(event: bytes) -> tuple[bytes, bytes]:
    """An event's type and its data (its ``data`` lines joined), as the SSE parser
    reads them. Its lines are taken a block at a time (cut after a ``\\n``, so no
    ``\\r\\n`` is cut in two): an event of millions of short lines, listed whole,
    took some 150 bytes a line (4 million: 600 MB)."""
    kind = b""
    data = bytearray()
    first = True
    start = 0
    while True:
        cut = event.find(b"\n", start + _LINES_AT_ONCE)
        end = len(event) if cut == -1 else cut + 1
        for line in _LINE.split(event[start:end]):
            name, _, value = line.partition(b":")
            if name == b"event":
                kind = value.removeprefix(b" ")
            elif name == b"data":
                if not first:
                    data += b"\n"
                data += value.removeprefix(b" ")
                first = False
        if end == len(event):
            return kind, bytes(data)
        start = end


def _answered(head: bytes) -> object:
    found = _ID.search(head)
    if found is None:
        return None
    try:
        value: Any = json.loads(found.group(1))
    except ValueError:
        return None
    return value


def _event(request_id: object, code: int, message: str) -> bytes:
    return b"event: message\ndata: " + _error(request_id, code, message) + b"\n\n"
