"""Playing one :class:`~faultserver.plans.Outcome` as the answer to one chat request,
faults included: an error status, a reset before any byte, a hang, a slow first
byte, a stream cut, garbled or ended by an error event, a UTF-8 character split
across reads.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from .completions import ChatRequest, CompletionBuilder, SseEncoder
from .http11 import (
    HttpConnection,
    HttpRequest,
    JsonDict,
    dumps,
    error_body,
    error_type_for,
    reason_phrase,
    response_head,
    send_json,
)
from .plans import Outcome

SPLIT_PAUSE = 0.005  # seconds between the two halves of a split UTF-8 character


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
        message = (
            o.message or f"fault server: injected {o.status_code} {reason_phrase(o.status_code)}"
        )
        code = o.code if o.code is not None else o.status_code
        body = error_body(message, o.error_type or error_type_for(o.status_code), code)
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
        body = dumps(self.builder.completion())
        headers = {"content-type": "application/json", "content-length": str(len(body))}
        await self.conn.send_raw(
            response_head(200, {**headers, **self.headers}) + body[: len(body) // 2]
        )
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
