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
from .test_cli_mcp import SERVER
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


def spawn_with_servers(
    tmp_path: Path, srv: FaultServerProcess, servers: str, *args: str
) -> Terminal:
    config = write_config(tmp_path, srv)
    if servers:
        with config.open("a", encoding="utf-8") as out:
            out.write("\n" + servers)
    workspace = tmp_path / "ws"
    workspace.mkdir(exist_ok=True)
    child = pexpect.spawn(
        sys.executable,
        ["-m", "qwen_dev_cli", "--config", str(config), *args],
        cwd=str(workspace),
        env={**os.environ, "TERM": "xterm-256color"},
        dimensions=(40, 160),
        encoding="utf-8",
        timeout=30,
    )
    return Terminal(child)


def test_the_prompt_does_not_wait_for_a_slow_server_and_the_first_request_does(
    srv: FaultServerProcess, tmp_path: Path
) -> None:
    terminal = spawn_with_servers(
        tmp_path, srv, server_table("slow", "slow", "6") + server_table("quick")
    )
    # The prompt is up while the slow server still starts: the bar says so.
    terminal.expect("lab CLOSED")
    # (The quick one may be ready already; prompt-toolkit redraws only what changed.)
    terminal.expect(r"mcp [01]/2")
    srv.script(Outcome.ok("Both are here."))
    terminal.sendline("which tools?")
    terminal.expect(r"waiting for MCP servers? (quick, )?slow")
    terminal.expect_exact("Both are here.")
    terminal.expect(PROMPT)
    offered = [t["function"]["name"] for t in srv.requests()[-1]["json"]["tools"]]
    assert "mcp__slow__echo" in offered
    assert "mcp__quick__echo" in offered
    assert terminal.leave() == 0


def test_a_server_that_fails_stays_on_the_bar_and_is_said_at_the_first_message(
    srv: FaultServerProcess, tmp_path: Path
) -> None:
    broken = '[mcp.servers.broken]\ncommand = "/nonexistent/mcp-server"\n'
    terminal = spawn_with_servers(tmp_path, srv, broken + server_table("t"))
    terminal.expect("lab CLOSED")
    terminal.expect(r"mcp [01]/2")
    srv.script(Outcome.ok("Still here."))
    terminal.sendline("hello")
    terminal.expect_exact("MCP server broken failed: command not found")
    terminal.expect_exact("Still here.")
    terminal.expect(PROMPT)
    offered = [t["function"]["name"] for t in srv.requests()[-1]["json"]["tools"]]
    assert "mcp__t__echo" in offered
    assert terminal.leave() == 0


#: Between a table's cells: spaces, and the styles of the cells.
_GAP = r"(?:\s|\x1b\[[0-9;]*m)+"


def cells(*patterns: str) -> str:
    """A table row's cells, in order."""
    return _GAP.join(patterns)


def test_slash_mcp_lists_servers_tools_lists_every_tool_and_reconnect_restarts_one(
    srv: FaultServerProcess, tmp_path: Path
) -> None:
    broken = '[mcp.servers.broken]\ncommand = "/nonexistent/mcp-server"\n'
    terminal = spawn_with_servers(tmp_path, srv, broken + server_table("t"), "--approval", "yolo")
    terminal.expect("lab CLOSED")
    srv.script(Outcome.ok(tool_calls=[tool_call("mcp__t__pid")]), Outcome.ok("First pid."))
    terminal.sendline("your pid?")
    terminal.expect_exact("First pid.")
    terminal.expect(PROMPT)
    terminal.sendline("/mcp")
    terminal.expect(cells("broken", "stdio", "failed", "0", "no", "command not found"))
    terminal.expect(cells("t", "stdio", "ready", r"\d+", "no"))
    terminal.sendline("/tools")
    terminal.expect(cells("run_command", "built-in"))
    terminal.expect(cells("mcp__t__echo", "MCP server t"))
    terminal.expect(r"\d+ tools the model may call")
    terminal.sendline("/mcp reconnect t")
    terminal.expect(r"MCP server t is ready: \d+ tools")
    terminal.sendline("/mcp reconnect nosuch")
    terminal.expect_exact("no running MCP server 'nosuch'")
    srv.script(Outcome.ok(tool_calls=[tool_call("mcp__t__pid")]), Outcome.ok("Second pid."))
    terminal.sendline("your pid now?")
    terminal.expect_exact("Second pid.")
    terminal.expect(PROMPT)
    pids = [m["content"] for m in srv.requests()[-1]["json"]["messages"] if m["role"] == "tool"]
    assert len(pids) == 2
    assert all(pid.isdigit() for pid in pids)
    assert pids[0] != pids[1]  # a new process
    assert terminal.leave() == 0


def test_a_project_mcp_json_is_asked_about_once_per_exact_file(
    srv: FaultServerProcess, tmp_path: Path
) -> None:
    from .test_project_mcp import project_file

    workspace = tmp_path / "ws"
    workspace.mkdir()
    path = project_file(workspace)
    # Asked, with the command it would run; yes starts it and the model gets its tools.
    terminal = spawn_with_servers(tmp_path, srv, "")
    terminal.expect_exact("would start these MCP servers, outside the sandbox")
    terminal.expect_exact(str(SERVER))
    terminal.expect_exact("Start them?")
    terminal.send("y")
    terminal.expect("lab CLOSED")
    srv.script(Outcome.ok("first"))
    terminal.sendline("hi")
    terminal.expect_exact("first")
    terminal.expect(PROMPT)
    assert "mcp__proj__echo" in offered_now(srv)
    assert terminal.leave() == 0
    # The same file again: not asked, started.
    terminal = spawn_with_servers(tmp_path, srv, "")
    terminal.expect("lab CLOSED")
    srv.script(Outcome.ok("second"))
    terminal.sendline("hi")
    terminal.expect_exact("second")
    terminal.expect(PROMPT)
    assert "mcp__proj__echo" in offered_now(srv)
    assert terminal.leave() == 0
    # A changed file is asked about again; no starts nothing.
    path.write_text(path.read_text().replace("}}}", ', "env": {"A": "1"}}}}'))
    terminal = spawn_with_servers(tmp_path, srv, "")
    terminal.expect_exact("Start them?")
    terminal.send("n")
    terminal.expect("lab CLOSED")
    srv.script(Outcome.ok("third"))
    terminal.sendline("hi")
    terminal.expect_exact("third")
    terminal.expect(PROMPT)
    assert not [name for name in offered_now(srv) if name.startswith("mcp__")]
    assert terminal.leave() == 0


def offered_now(srv: FaultServerProcess) -> list[str]:
    return [t["function"]["name"] for t in srv.requests()[-1]["json"].get("tools", [])]
