"""The in-process fault server: routes (``/v1/chat/completions``, ``/v1/models``,
``/_control/*``), the script and chaos that pick each request's outcome, API key and
rate limits, context-window refusals, and the log of every request received.

Tests synchronise on the server's state, not on sleeps: :meth:`FaultServer.received`
returns once N requests have arrived, and :meth:`FaultServer.hold` keeps chat requests
in flight (received, unanswered) until :meth:`FaultServer.release`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from types import TracebackType
from typing import Any

from .accounting import RateWindow, Throttle
from .completions import ChatRequest, CompletionBuilder, ServedCall
from .control import ControlApi
from .http11 import (
    HEADER_LIMIT,
    HttpConnection,
    HttpError,
    HttpRequest,
    JsonDict,
    dumps,
    error_body,
    error_type_for,
    send_json,
)
from .plans import OK, ChaosMix, Outcome
from .responder import ChatResponder

DEFAULT_TEXT = "Hello from the fault server — all systems nominal."


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
        self._arrived = asyncio.Event()  # set at each recorded request
        self._answering = asyncio.Event()  # clear while held
        self._answering.set()
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

    async def received(self, count: int) -> list[RecordedRequest]:
        """The first ``count`` requests (control ones aside), once they have arrived;
        at once if they have. Requests held by :meth:`hold` count: they have arrived."""
        while len(self.requests) < count:
            self._arrived.clear()
            await self._arrived.wait()
        return self.requests[:count]

    def hold(self) -> None:
        """Chat requests arriving from now on are recorded, then wait unanswered (their
        outcome not chosen yet) until :meth:`release`; :meth:`stop` drops them."""
        self._answering.clear()

    def release(self) -> None:
        """Answer the held chat requests, and answer at once again."""
        self._answering.set()

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
                body = dumps(error_body(str(exc), "invalid_request_error"))
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
        self._arrived.set()
        route = self._routes.get((req.method, req.path))
        if route is None:
            record.outcome = "not_found"
            message = f"no route for {req.method} {req.path}"
            return await send_json(conn, req, 404, error_body(message, "not_found_error"))
        if not self._authorized(req):
            record.outcome = "unauthorized"
            payload = error_body(
                "Incorrect API key provided.", error_type_for(401), "invalid_api_key"
            )
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
        await self._answering.wait()
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
            finish_override=outcome.finish_reason,
        )

    def _tool_call(self, spec: Mapping[str, Any]) -> ServedCall:
        self._call_ids += 1
        arguments = spec.get("arguments", "{}")
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments)
        return ServedCall(f"call_{self._call_ids}", str(spec["name"]), arguments)


def _loads_or_none(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None
