"""HTTP servers that answer 401, 500 or garbage, or are not there: each fails once, with
a one-line reason, nothing printed over the terminal, and the other servers go on."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from qwen_dev_cli.config.mcp_servers import McpServerSettings
from qwen_dev_cli.mcp import McpServers

from .http_server import serving

pytestmark = pytest.mark.slow  # real HTTP servers on loopback, a startup timeout


class Hostile(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        code = {"/401": 401, "/500": 500}.get(self.path, 200)
        body = b"garbage{{{"
        kind = "application/json"
        if self.path == "/events":  # garbage in an event: the SDK logs it, answers nothing
            body, kind = b"event: message\ndata: garbage{{{\n\n", "text/event-stream"
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def hostile() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), Hostile)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_bad_http_servers_fail_once_and_a_good_one_still_serves(
    hostile: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    told: list[str] = []
    with serving() as good:
        settings = [
            McpServerSettings("u401", url=f"{hostile}/401", startup_timeout=2),
            McpServerSettings("u500", url=f"{hostile}/500", startup_timeout=2),
            McpServerSettings("garbage", url=f"{hostile}/mcp", startup_timeout=2),
            McpServerSettings("events", url=f"{hostile}/events", startup_timeout=2),
            McpServerSettings("sse", url=f"{hostile}/401", transport="sse", startup_timeout=2),
            McpServerSettings("gone", url=f"http://127.0.0.1:{closed_port()}/mcp"),
            McpServerSettings("web", url=good),
        ]
        servers = McpServers(settings, tmp_path / "logs", os.environ, told.append)
        sources = servers.sources()
        servers.start()
        try:
            await servers.wait_ready()
            await servers.wait_ready()  # a second wait says nothing again
            web = sources[-1].tools()
            result = await servers.servers[-1].call("shout", {"text": "still here"})
        finally:
            await servers.aclose()
    failed = {line.split()[2]: line for line in told}
    assert set(failed) == {"u401", "u500", "garbage", "events", "sse", "gone"}
    assert all("\n" not in line for line in told)
    assert "401 Unauthorized" in failed["u401"]
    assert "500 Internal Server Error" in failed["u500"]
    assert "its answer was not JSON: 'garbage{{{'" in failed["garbage"]  # at once
    assert "did not start within 2 s" in failed["events"]
    assert "connection" in failed["gone"].lower()
    assert [tool.name for tool in web] == ["mcp__web__shout", "mcp__web__whoami"]
    assert result.text == "STILL HERE"
    assert capfd.readouterr().err == ""
    assert "garbage" in (tmp_path / "logs" / "sdk.log").read_text()
