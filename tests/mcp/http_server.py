"""A streamable-HTTP MCP server built with the SDK's FastMCP, on a loopback port of its
own, in a thread of the test process (:func:`serving`), or as a process of its own:
``python -m tests.mcp.http_server PORT [stateful]`` (its ``die`` tool ends that process
mid-call; stateful: it keeps sessions, which a new process does not know).

Given :class:`Faults`, it offers more tools (counters with and without the read-only
hint, a slow tool reporting progress) and misbehaves on demand before FastMCP sees a
``tools/call``: answers 500, or sends a body without end."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from mcp.server.fastmcp import Context, FastMCP
from mcp.types import ToolAnnotations

#: What the fault wrapper may send instead of FastMCP's answer to a ``tools/call``.
ENDLESS_JSON = "endless json"  # application/json, no length, bytes without end
ENDLESS_EVENT = "endless event"  # text/event-stream, one event without end
HUGE_LENGTH = "huge length"  # Content-Length: 1 GB, then bytes without end
STATUS_500 = "500"
DRIP = "drip"  # an event stream sending a byte every 0.1 s, never ending its event
DRIP_JSON = "drip json"  # a JSON body the same way
GZIP = "gzip"  # a small gzip body that would inflate to 64 MiB
DEEP_JSON = "deep json"  # an answer nested 5,000 deep (JSON, 10 KB)
NOT_RPC = "not rpc"  # JSON, but no JSON-RPC answer: its result a number
DEEP_EVENT = "deep event"  # the deep answer as an event of an event stream
CROWD_JSON = "crowd json"  # a content list of 100,000 empty objects (200 KB)
CROWD_EVENT = "crowd event"  # the same as an event
#: The crowd as an event of 4 million ``data`` lines, ``{},`` each (36 MB in all).
CROWD_LINES = "crowd lines"
#: A valid answer as an event of 4 million ``data`` lines, all but the first blank.
MANY_LINES = "many lines"


@dataclass
class Faults:
    """Shared with the server's thread: what its next ``tools/call`` requests get."""

    #: Faults for the next tools/call requests, in order (one each).
    next: list[str] = field(default_factory=list)
    #: The tools/call requests that reached the wrapper.
    calls: int = 0
    #: Bytes of a body without end handed to the server before the client left.
    sent: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    #: A fault for the DELETE that ends a session (a stateful server's).
    delete: str | None = None
    #: More tools to list (``t0``, ``t1``...), each with a schema of a few values.
    more_tools: int = 0


def build(faults: Faults | None = None, *, stateful: bool = False) -> FastMCP:
    server = FastMCP("web", stateless_http=faults is not None and not stateful)

    @server.tool()
    def shout(text: str) -> str:
        """The text in capitals."""
        return text.upper()

    @server.tool()
    def whoami(ctx: Context) -> str:  # type: ignore[type-arg]  # FastMCP resolves it by name
        """The Authorization header the client sent."""
        request = ctx.request_context.request
        return "none" if request is None else request.headers.get("authorization", "none")

    if faults is None:
        return server

    def count(name: str) -> str:
        faults.counts[name] = faults.counts.get(name, 0) + 1
        return str(faults.counts[name])

    @server.tool(annotations=ToolAnnotations(readOnlyHint=True))
    def look() -> str:
        """Read-only: how many times it ran."""
        return count("look")

    @server.tool(annotations=ToolAnnotations(readOnlyHint=False, idempotentHint=True))
    def put() -> str:
        """Idempotent: how many times it ran."""
        return count("put")

    @server.tool()
    def append() -> str:
        """Neither read-only nor idempotent: how many times it ran."""
        return count("append")

    @server.tool()
    async def slow(steps: int, pause: float, ctx: Context) -> str:  # type: ignore[type-arg]  # FastMCP resolves it by name
        """Reports progress ``steps`` times, ``pause`` seconds apart."""
        for step in range(steps):
            await asyncio.sleep(pause)
            await ctx.report_progress(step + 1, steps)
        return f"done after {steps} steps"

    @server.tool()
    def big(size: int) -> str:
        """A result of ``size`` characters."""
        return "x" * size

    @server.tool()
    def die() -> str:
        """Ends this server's process in the middle of the call."""
        os._exit(3)

    def numbered(x: str = "", y: int = 0) -> str:
        return x * y

    for index in range(faults.more_tools):
        server.add_tool(numbered, name=f"t{index}", description="A numbered tool.")
    return server


def with_faults(app: Any, faults: Faults) -> Any:
    """``app`` behind a wrapper that answers ``tools/call`` with the next fault."""

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "DELETE" and faults.delete:
            while (await receive()).get("more_body"):  # (its body read: what comes next
                pass  # is the client leaving)
            await _endless(faults.delete, receive, send, faults)
            return
        if scope["type"] != "http" or scope["method"] != "POST":
            await app(scope, receive, send)
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        try:
            method = json.loads(body).get("method")
        except ValueError:
            method = None
        fault = None
        if method == "tools/call":
            faults.calls += 1
            fault = faults.next.pop(0) if faults.next else None
        if fault is None:
            replayed = False

            async def replay() -> Any:
                nonlocal replayed
                if replayed:
                    return await receive()
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}

            await app(scope, replay, send)
        elif fault == GZIP:
            import gzip

            body = gzip.compress(b" " * (64 << 20), compresslevel=1)
            headers = [(b"content-type", b"application/json"), (b"content-encoding", b"gzip")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
        elif fault == MANY_LINES:
            text = b'{"content": [{"type": "text", "text": "many"}]}}'
            head = b'{"jsonrpc": "2.0", "id": %d, "result": ' % json.loads(body)["id"]
            lines = b"event: message\ndata: " + head + text + b"\ndata:" * 4_000_000
            headers = [(b"content-type", b"text/event-stream")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": lines + b"\n\n"})
        elif fault == CROWD_LINES:
            head = b'{"jsonrpc": "2.0", "id": %d, "result": {"content": [' % json.loads(body)["id"]
            lines = b"event: message\ndata: " + head + b"\ndata:{}," * 4_000_000
            headers = [(b"content-type", b"text/event-stream")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": lines + b"\ndata:{}]}}\n\n"})
        elif fault in (DEEP_JSON, NOT_RPC, DEEP_EVENT, CROWD_JSON, CROWD_EVENT):
            depth = 5_000
            result = b'{"content": [{"type": "text", "text": "deep"}], "deep": '
            result += b"[" * depth + b"]" * depth + b"}"
            if fault == NOT_RPC:
                result = b"5"
            elif fault in (CROWD_JSON, CROWD_EVENT):
                result = b'{"content": [' + b",".join([b"{}"] * 100_000) + b"]}"
            body = b'{"jsonrpc": "2.0", "id": %d, "result": ' % json.loads(body)["id"]
            body += result + b"}"
            headers = [(b"content-type", b"application/json")]
            if fault in (DEEP_EVENT, CROWD_EVENT):
                body = b"event: message\ndata: " + body + b"\n\n"
                headers = [(b"content-type", b"text/event-stream")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
        elif fault == STATUS_500:
            await send({"type": "http.response.start", "status": 500, "headers": []})
            await send({"type": "http.response.body", "body": b"broken"})
        else:
            await _endless(fault, receive, send, faults)

    return wrapped


async def _endless(fault: str, receive: Any, send: Any, faults: Faults) -> None:
    """A body without end, until the client goes away (or 1 GB)."""
    headers = [(b"content-type", b"application/json")]
    first = b'{"jsonrpc": "2.0", "id": 1, "result": {"content": [{"type": "text", "text": "'
    if fault == ENDLESS_EVENT:
        headers = [(b"content-type", b"text/event-stream")]
        first = b"event: message\ndata: " + first
    elif fault == HUGE_LENGTH:
        headers.append((b"content-length", str(1 << 30).encode()))
    elif fault == DRIP:
        headers = [(b"content-type", b"text/event-stream")]
        first = b"event: message\ndata: " + first
    gone = asyncio.ensure_future(receive())  # http.disconnect, once the client leaves
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    drip = fault in (DRIP, DRIP_JSON)
    chunk = b"x" if drip else b"x" * 65536
    await send({"type": "http.response.body", "body": first, "more_body": True})
    while not gone.done() and faults.sent < 1 << 30:
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
        faults.sent += len(chunk)
        await asyncio.sleep(0.1 if drip else 0)
    gone.cancel()


def app_of(faults: Faults | None, *, stateful: bool = False, sse: bool = False) -> Any:
    server = build(faults, stateful=stateful)
    # (sse: the old protocol, its answers on the GET event stream.)
    app = server.sse_app() if sse else server.streamable_http_app()
    return app if faults is None else with_faults(app, faults)


@contextmanager
def serving(
    faults: Faults | None = None, *, sse: bool = False, stateful: bool = False
) -> Iterator[str]:
    """The server's URL while the block runs (``sse``: the old protocol's server;
    ``stateful``: with faults, it keeps sessions all the same)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    app = app_of(faults, sse=sse, stateful=stateful)
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not server.started:
            threading.Event().wait(0.02)
        yield f"http://127.0.0.1:{port}/{'sse' if sse else 'mcp'}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


if __name__ == "__main__":
    listening = socket.socket()
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listening.bind(("127.0.0.1", int(sys.argv[1])))
    stateful = sys.argv[2:] == ["stateful"]
    config = uvicorn.Config(app_of(Faults(), stateful=stateful), log_level="warning", lifespan="on")
    uvicorn.Server(config).run(sockets=[listening])
