"""A stdio server that stops by itself, idle or not, is started again once; the second
time it is failed, with the end of its stderr. A reconnect starts it afresh."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from qwen_dev_cli.config.mcp_servers import McpServerSettings
from qwen_dev_cli.mcp.server import McpServer

SERVER = str(Path(__file__).with_name("stdio_server.py"))


async def until(condition: object, seconds: float = 20.0) -> None:
    assert callable(condition)
    for _ in range(int(seconds / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("not within the time")


def state(server: McpServer) -> str:
    """Read afresh (mypy would keep an earlier comparison's narrowing)."""
    return server.state


async def pid_of(server: McpServer) -> int:
    return int((await server.call("pid", {})).text)


async def test_an_idle_server_killed_is_restarted_once_then_failed(tmp_path: Path) -> None:
    server = McpServer(
        McpServerSettings("t", command=sys.executable, args=(SERVER,)),
        tmp_path / "t.log",
        os.environ,
    )
    server.start()
    try:
        await server.wait_ready()
        first = await pid_of(server)
        os.kill(first, signal.SIGKILL)
        await until(lambda: server.restarts == 1)
        await server.wait_ready()
        assert state(server) == "ready"
        second = await pid_of(server)
        assert second != first
        os.kill(second, signal.SIGKILL)
        await until(lambda: server.state == "failed")
        assert server.error is not None
        assert server.error.startswith("it stopped again")
        assert "its last stderr: " in server.error
        # /mcp reconnect: a fresh start, with its restart to spend again.
        await server.restart()
        await server.wait_ready()
        assert state(server) == "ready"
        assert server.restarts == 0
        assert await pid_of(server) not in (first, second)
    finally:
        await server.stop()


async def test_a_server_stopped_before_it_started_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    server = McpServer(
        McpServerSettings("t", command="/bin/sh", args=("-c", f"touch {marker}; cat")),
        tmp_path / "t.log",
        os.environ,
    )
    server.start()
    await server.stop()  # before its task got past the SDK's import
    await server.wait_ready()
    assert server.state == "stopped"
    assert not marker.exists()
