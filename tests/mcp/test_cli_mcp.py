"""MCP servers through real `qwen-dev ask` processes: a scripted model on loopback calls
the tools of a real stdio server (FastMCP, tests/mcp/stdio_server.py), and the next
request to the model carries each result. Faults end in a notice, never the session."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from faultserver import FaultServer, Outcome

from ..test_cli_ask import qwen_dev, write_config

pytestmark = pytest.mark.slow  # Every test runs a real `qwen-dev` process and a server.

SERVER = Path(__file__).with_name("stdio_server.py")
NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def call(name: str, **arguments: object) -> dict[str, str]:
    return {"name": name, "arguments": json.dumps(arguments)}


def server(name: str, *args: str, extra: str = "") -> str:
    argv = json.dumps([str(SERVER), *args])
    return f'[mcp.servers.{name}]\ncommand = "{sys.executable}"\nargs = {argv}\n{extra}\n'


def tool_results(srv: FaultServer, index: int = -1) -> list[str]:
    sent = srv.requests[index].json
    assert sent is not None
    return [m["content"] for m in sent["messages"] if m["role"] == "tool"]


def offered(srv: FaultServer, index: int = 0) -> list[str]:
    sent = srv.requests[index].json
    assert sent is not None
    return [t["function"]["name"] for t in sent.get("tools", [])]


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    return root


async def ask(
    workspace: Path, srv: FaultServer, servers: str, *args: str
) -> tuple[int, dict[str, Any], str]:
    config = write_config(workspace.parent / "c.toml", srv, extra=servers)
    run = await qwen_dev("ask", "--json", "--config", str(config), *args, "go", cwd=workspace)
    assert run.code == 0, run.err
    return run.code, run.json(), run.err


async def test_the_model_calls_echo_and_add_and_sees_each_result(workspace: Path) -> None:
    async with FaultServer() as srv:
        srv.script(
            Outcome.ok(tool_calls=[call("mcp__t__echo", message="hi there")]),
            Outcome.ok(tool_calls=[call("mcp__t__add", a=2, b=40)]),
            Outcome.ok("done"),
        )
        _, payload, _ = await ask(workspace, srv, server("t"), "--approval", "yolo")
        assert "mcp__t__echo" in offered(srv)
        assert tool_results(srv, 1) == ["echo: hi there"]
        assert tool_results(srv, 2) == ["echo: hi there", "42"]
        assert [c["status"] for c in payload["tool_calls"]] == ["ok", "ok"]


async def test_without_a_terminal_an_untrusted_server_is_denied_naming_it(
    workspace: Path,
) -> None:
    async with FaultServer() as srv:
        srv.script(Outcome.ok(tool_calls=[call("mcp__t__echo", message="x")]), Outcome.ok("ok"))
        _, payload, err = await ask(workspace, srv, server("t"), "--approval", "auto-edit")
        assert payload["tool_calls"][0]["status"] == "denied"
        told = tool_results(srv)[0]
        assert "MCP server t" in told
        assert "outside the sandbox" in told
        assert "mcp__t__echo" in err
        assert "MCP server t" in err


async def test_a_trusted_server_runs_in_ask_mode(workspace: Path) -> None:
    async with FaultServer() as srv:
        srv.script(Outcome.ok(tool_calls=[call("mcp__t__echo", message="x")]), Outcome.ok("ok"))
        _, payload, _ = await ask(workspace, srv, server("t", extra="trust = true"))
        assert payload["tool_calls"][0]["status"] == "ok"
        assert tool_results(srv) == ["echo: x"]


async def test_an_error_result_reaches_the_model_as_an_error(workspace: Path) -> None:
    async with FaultServer() as srv:
        srv.script(Outcome.ok(tool_calls=[call("mcp__t__fail")]), Outcome.ok("ok"))
        _, payload, _ = await ask(workspace, srv, server("t"), "--approval", "yolo")
        assert payload["tool_calls"][0]["status"] == "error"
        assert "broke on purpose" in tool_results(srv)[0]
        assert tool_results(srv)[0].startswith("Error:")


async def test_the_server_gets_no_provider_key_nor_other_variables(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAMBANOVA_API_KEY", "sk-secret")
    monkeypatch.setenv("SOMETHING_ELSE", "1")
    monkeypatch.setenv("FOR_THE_SERVER", "yes")
    async with FaultServer() as srv:
        srv.script(Outcome.ok(tool_calls=[call("mcp__t__environment")]), Outcome.ok("ok"))
        extra = 'env = { GIVEN = "${FOR_THE_SERVER}", DEFAULTED = "${UNSET_ONE:-d}" }'
        await ask(workspace, srv, server("t", extra=extra), "--approval", "yolo")
        names = set(tool_results(srv)[0].split())
        assert {"GIVEN", "DEFAULTED", "PATH"} <= names
        assert not names & {"SAMBANOVA_API_KEY", "SOMETHING_ELSE", "FOR_THE_SERVER"}
        assert names <= {"GIVEN", "DEFAULTED", "PATH", "HOME", "LANG", "TERM"}


async def test_a_command_that_does_not_exist_is_said_once_and_the_session_goes_on(
    workspace: Path,
) -> None:
    broken = '[mcp.servers.gone]\ncommand = "qwen-dev-no-such-command"\n'
    async with FaultServer() as srv:
        srv.script(Outcome.ok(tool_calls=[call("mcp__t__echo", message="x")]), Outcome.ok("ok"))
        _, payload, err = await ask(workspace, srv, broken + server("t"), "--approval", "yolo")
        assert err.count("MCP server gone failed") == 1
        assert "qwen-dev-no-such-command" in err
        assert payload["tool_calls"][0]["status"] == "ok"


async def test_a_server_hanging_at_initialize_times_out_once(workspace: Path) -> None:
    async with FaultServer() as srv:
        srv.script(Outcome.ok("fine"))
        hang = server("stuck", "hang", extra="startup_timeout = 1")
        _, payload, err = await ask(workspace, srv, hang)
        assert err.count("MCP server stuck failed: did not start within 1 s") == 1
        assert payload["text"] == "fine"


async def test_a_server_dying_is_restarted_once_then_failed_with_its_stderr(
    workspace: Path,
) -> None:
    async with FaultServer() as srv:
        srv.script(
            Outcome.ok(tool_calls=[call("mcp__t__die")]),
            Outcome.ok(tool_calls=[call("mcp__t__echo", message="again")]),
            Outcome.ok(tool_calls=[call("mcp__t__die")]),
            Outcome.ok(tool_calls=[call("mcp__t__echo", message="once more")]),
            Outcome.ok("carried on"),
        )
        _, payload, err = await ask(workspace, srv, server("t"), "--approval", "yolo")
        died, after, died_again, gone = tool_results(srv)
        assert died.startswith("Error: t die failed")
        assert "it stopped" in died
        assert "it is being restarted" in died
        # Restarted: the next call waits for the new process and is answered.
        assert after == "echo: again"
        assert "it is not restarted again" in died_again
        assert "its last stderr: " in died_again
        # Failed for good: the next call is told at once, never hangs.
        assert gone.startswith("Error: MCP server t is not available (failed)")
        assert "it stopped again" in gone
        assert "its last stderr: " in gone
        assert payload["text"] == "carried on"
    assert err.count("MCP server t") <= 1


async def test_a_50_mb_result_is_refused_unread_and_the_server_goes_on(
    workspace: Path,
) -> None:
    size = 50 * 1024 * 1024  # sent twice by FastMCP (content, structured): 100 MB
    async with FaultServer() as srv:
        srv.script(
            Outcome.ok(tool_calls=[call("mcp__t__big", size=size)]),
            Outcome.ok(tool_calls=[call("mcp__t__echo", message="after")]),
            Outcome.ok("ok"),
        )
        _, payload, _ = await ask(workspace, srv, server("t"), "--approval", "yolo")
        refused, after = tool_results(srv)
        assert len(refused) < 1_000
        assert "over 67,108,864 bytes and was not read" in refused
        assert after == "echo: after"
        assert [c["status"] for c in payload["tool_calls"]] == ["error", "ok"]


async def test_a_20_mb_result_is_cut_and_said(workspace: Path) -> None:
    async with FaultServer() as srv:
        srv.script(Outcome.ok(tool_calls=[call("mcp__t__big", size=20_000_000)]), Outcome.ok("ok"))
        _, payload, _ = await ask(workspace, srv, server("t"), "--approval", "yolo")
        result = tool_results(srv)[0]
        assert len(result) < 100_000
        assert "result cut" in result
        assert payload["tool_calls"][0]["status"] == "ok"


async def test_odd_and_long_names_become_valid_distinct_names(workspace: Path) -> None:
    async with FaultServer() as srv:
        srv.script(Outcome.ok("ok"))
        await ask(workspace, srv, server("t"))
        names = [n for n in offered(srv) if n.startswith("mcp__")]
        assert all(NAME.match(n) for n in names), names
        assert "mcp__t__odd_name_with_dots_" in names
        assert any(n.startswith("mcp__t__LLLL") and len(n) == 64 for n in names)
        assert len(names) == len(set(names))


async def test_two_servers_with_the_same_tool_names_both_keep_theirs(workspace: Path) -> None:
    async with FaultServer() as srv:
        srv.script(
            Outcome.ok(
                tool_calls=[
                    call("mcp__t__echo", message="a"),
                    call("mcp__twin__echo", message="b"),
                ]
            ),
            Outcome.ok("ok"),
        )
        servers = server("t") + server("twin", "twin")
        await ask(workspace, srv, servers, "--approval", "yolo")
        assert tool_results(srv) == ["echo: a", "twin echo: b"]


async def test_a_streamable_http_server_with_a_header_from_the_environment(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from .http_server import serving

    monkeypatch.setenv("WEB_TOKEN", "t0ken")
    with serving() as url:
        table = (
            f'[mcp.servers.web]\nurl = "{url}"\n'
            'headers = { Authorization = "Bearer ${WEB_TOKEN}" }\ntrust = true\n'
        )
        async with FaultServer() as srv:
            srv.script(
                Outcome.ok(tool_calls=[call("mcp__web__shout", text="quiet")]),
                Outcome.ok(tool_calls=[call("mcp__web__whoami")]),
                Outcome.ok("ok"),
            )
            await ask(workspace, srv, table)
            assert tool_results(srv) == ["QUIET", "Bearer t0ken"]


async def test_the_server_process_ends_with_the_session(workspace: Path) -> None:
    async with FaultServer() as srv:
        srv.script(Outcome.ok(tool_calls=[call("mcp__t__pid")]), Outcome.ok("ok"))
        await ask(workspace, srv, server("t"), "--approval", "yolo")
        pid = int(tool_results(srv)[0])
    assert _ended(pid)


def _ended(pid: int) -> bool:
    """Gone, or a zombie waiting for whoever adopted it to reap it."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True
    return "zombie" in status.split("State:")[1].split("\n")[0]
