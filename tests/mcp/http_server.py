"""A streamable-HTTP MCP server built with the SDK's FastMCP, on a loopback port of its
own, in a thread of the test process."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from mcp.server.fastmcp import Context, FastMCP


def build() -> FastMCP:
    server = FastMCP("web")

    @server.tool()
    def shout(text: str) -> str:
        """The text in capitals."""
        return text.upper()

    @server.tool()
    def whoami(ctx: Context) -> str:  # type: ignore[type-arg]  # FastMCP resolves it by name
        """The Authorization header the client sent."""
        request = ctx.request_context.request
        return "none" if request is None else request.headers.get("authorization", "none")

    return server


@contextmanager
def serving() -> Iterator[str]:
    """The server's URL while the block runs."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(build().streamable_http_app(), log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not server.started:
            threading.Event().wait(0.02)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
