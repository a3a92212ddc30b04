"""Servers no one here wrote, from npm (pinned, installed by `scripts/bootstrap --dev`
into .mcp-servers/): `@modelcontextprotocol/server-everything` and
`@modelcontextprotocol/server-filesystem`, driven by a scripted model through real
`qwen-dev ask` processes; the next request to the model carries each result."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from faultserver import FaultServer, Outcome

from .test_cli_mcp import ask, call, offered, tool_results

SERVERS = Path(__file__).parents[2] / ".mcp-servers" / "node_modules"
EVERYTHING = SERVERS / "@modelcontextprotocol" / "server-everything" / "dist" / "index.js"
FILESYSTEM = SERVERS / ".bin" / "mcp-server-filesystem"

if not EVERYTHING.exists() and os.environ.get("CI"):
    raise RuntimeError("the npm MCP servers are missing: run scripts/bootstrap --dev")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not EVERYTHING.exists(), reason="npm MCP servers not installed: scripts/bootstrap --dev"
    ),
]


def everything() -> str:
    return f'[mcp.servers.everything]\ncommand = "node"\nargs = ["{EVERYTHING}", "stdio"]\n'


def filesystem(root: Path) -> str:
    return f'[mcp.servers.files]\ncommand = "{FILESYSTEM}"\nargs = {json.dumps([str(root)])}\n'


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    (root / "notes.txt").write_text("the filesystem server read this\n", encoding="utf-8")
    return root


async def test_everything_echo_sum_and_an_image(workspace: Path) -> None:
    async with FaultServer() as srv:
        srv.script(
            Outcome.ok(tool_calls=[call("mcp__everything__echo", message="hello npm")]),
            # Called `add` in older releases of the server; `get-sum` in the pinned one.
            Outcome.ok(tool_calls=[call("mcp__everything__get-sum", a=19, b=23)]),
            Outcome.ok(tool_calls=[call("mcp__everything__get-tiny-image")]),
            Outcome.ok("done"),
        )
        _, payload, _ = await ask(workspace, srv, everything(), "--approval", "yolo")
        assert "mcp__everything__echo" in offered(srv)
        echo, total, image = tool_results(srv)
        assert "hello npm" in echo
        assert "42" in total
        assert "[image: image/png" in image
        assert len(image) < 2_000  # described, not its base64
        assert [c["status"] for c in payload["tool_calls"]] == ["ok", "ok", "ok"]


async def test_everything_sees_no_secret_of_the_user(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAMBANOVA_API_KEY", "sk-should-not-leak")
    async with FaultServer() as srv:
        srv.script(Outcome.ok(tool_calls=[call("mcp__everything__get-env")]), Outcome.ok("ok"))
        await ask(workspace, srv, everything(), "--approval", "yolo")
        told = tool_results(srv)[0]
        assert "PATH" in told
        assert "sk-should-not-leak" not in told
        assert "SAMBANOVA_API_KEY" not in told


async def test_filesystem_read_file(workspace: Path) -> None:
    async with FaultServer() as srv:
        target = str(workspace / "notes.txt")
        srv.script(
            Outcome.ok(tool_calls=[call("mcp__files__read_file", path=target)]),
            Outcome.ok("done"),
        )
        _, payload, _ = await ask(workspace, srv, filesystem(workspace), "--approval", "yolo")
        assert tool_results(srv) == ["the filesystem server read this\n"]
        assert payload["tool_calls"][0]["status"] == "ok"
