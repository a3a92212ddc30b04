"""The approval dialog of an untrusted MCP server's tool, in a real terminal: it names
the server, says the call leaves the sandbox, and runs the tool only on yes."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest

from faultserver import FaultServerProcess, Outcome

from ..ui.test_repl_pty import PROMPT, Terminal, tool_call, write_config
from .test_cli_mcp import server as server_table

pytestmark = pytest.mark.slow


@pytest.fixture
def srv() -> Iterator[FaultServerProcess]:
    with FaultServerProcess() as running:
        yield running


def test_the_dialog_names_the_server_and_yes_runs_the_tool(
    srv: FaultServerProcess, tmp_path: Path
) -> None:
    config = write_config(tmp_path, srv)
    with config.open("a", encoding="utf-8") as out:
        out.write("\n" + server_table("t"))
    workspace = tmp_path / "ws"
    workspace.mkdir()
    child = pexpect.spawn(
        sys.executable,
        ["-m", "qwen_dev_cli", "--config", str(config)],
        cwd=str(workspace),
        env={**os.environ, "TERM": "xterm-256color"},
        dimensions=(40, 160),
        encoding="utf-8",
        timeout=30,
    )
    terminal = Terminal(child)
    terminal.expect("lab CLOSED")
    srv.script(
        Outcome.ok(tool_calls=[tool_call("mcp__t__echo", message="from the terminal")]),
        Outcome.ok("It said it back."),
    )
    terminal.sendline("echo something")
    terminal.expect_exact("MCP server t, outside the sandbox")
    terminal.expect_exact("Call it?")
    terminal.send("y")
    terminal.expect_exact("It said it back.")
    terminal.expect(PROMPT)
    told = [m for m in srv.requests()[-1]["json"]["messages"] if m["role"] == "tool"]
    assert told[-1]["content"] == "echo: from the terminal"
    assert terminal.leave() == 0
