"""Headless turns in saved sessions (`-p --session-id/--continue/--resume`) and the tool
rules (`--allowedTools`, `--disallowedTools`), issue 20: real `qwen-dev` processes
against the fault server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from faultserver import FaultServer, Outcome

from .test_cli_ask import qwen_dev, write_config
from .test_cli_stream_json import call, events, of

pytestmark = pytest.mark.slow  # Every test runs a real `qwen-dev` process.

SID = "0b7c9d2e-5f41-4a3b-8c6d-1e2f3a4b5c6d"


@pytest.fixture
async def server() -> AsyncIterator[FaultServer]:
    async with FaultServer() as srv:
        yield srv


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    return root


def said(srv: FaultServer, index: int = -1) -> list[str]:
    """The user and assistant texts the model was sent in request ``index``."""
    body = srv.requests[index].json
    assert isinstance(body, dict)
    messages: list[dict[str, Any]] = body["messages"]
    return [m["content"] for m in messages if m["role"] in ("user", "assistant")]


async def test_a_headless_turn_goes_on_in_a_saved_session(
    server: FaultServer, workspace: Path
) -> None:
    config = str(write_config(workspace.parent / "c.toml", server))
    server.script(Outcome.ok("Blue."), Outcome.ok("Green."), Outcome.ok("Red."))
    stream = ("--output-format", "stream-json", "--config", config)
    first = await qwen_dev("-p", "pick a colour", "--session-id", SID, *stream, cwd=workspace)
    assert first.code == 0, first.err
    assert {e["session_id"] for e in events(first.out)} == {SID}

    second = await qwen_dev("-p", "another", f"--resume={SID[:8]}", *stream, cwd=workspace)
    assert second.code == 0, second.err
    found = events(second.out)
    assert found[0]["subtype"] == "init"
    assert {e["session_id"] for e in found} == {SID}
    assert said(server) == ["pick a colour", "Blue.", "another"]

    third = await qwen_dev("ask", "--continue", "--json", "--config", config, "last", cwd=workspace)
    assert third.code == 0, third.err
    assert third.json()["session_id"] == SID
    assert said(server) == ["pick a colour", "Blue.", "another", "Green.", "last"]

    listed = await qwen_dev("sessions", "list", "--json")
    assert [s["id"] for s in json.loads(listed.out)] == [SID]


async def test_continue_with_no_earlier_session_starts_one(
    server: FaultServer, workspace: Path
) -> None:
    config = write_config(workspace.parent / "c.toml", server)
    run = await qwen_dev("-p", "hi", "--continue", "--config", str(config), cwd=workspace)
    assert run.code == 0, run.err
    assert "no earlier session in this folder; starting a new one" in run.err
    assert said(server) == ["hi"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--resume", "nope"), "no session 'nope'"),
        (("--session-id", "../../etc/x"), "not a usable session id"),
        (("--session-id", SID, "--continue"), "--session-id names a new session"),
        (("--continue", "--resume", SID), "not both"),
    ],
)
async def test_bad_session_flags_exit_2(
    server: FaultServer, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    config = write_config(tmp_path / "c.toml", server)
    run = await qwen_dev("-p", "hi", *args, "--config", str(config))
    assert run.code == 2, run.err
    assert message in run.err
    assert not server.requests


async def test_a_taken_session_id_is_one_error_event(server: FaultServer, tmp_path: Path) -> None:
    config = str(write_config(tmp_path / "c.toml", server))
    assert (await qwen_dev("-p", "hi", "--session-id", SID, "--config", config)).code == 0
    again = await qwen_dev(
        "-p", "hi", "--session-id", SID, "--output-format", "stream-json", "--config", config
    )
    assert again.code == 2
    (result,) = events(again.out)
    assert (result["type"], result["is_error"]) == ("result", True)
    assert result["error"]["type"] == "session_error"
    assert "exists already" in result["errors"][0]


async def test_allowed_tools_run_unasked_and_disallowed_ones_are_not_offered(
    server: FaultServer, workspace: Path
) -> None:
    config = write_config(workspace.parent / "c.toml", server)
    server.script(
        Outcome.ok(None, tool_calls=[call("run_command", command="echo allowed")]),
        Outcome.ok(None, tool_calls=[call("run_command", command="touch not-allowed")]),
        Outcome.ok(None, tool_calls=[call("run_command", command="rm -f anything")]),
        Outcome.ok(None, tool_calls=[call("write_file", path="x.py", content="1\n")]),
        Outcome.ok("Done."),
    )
    run = await qwen_dev(
        "-p", "go", "--allowedTools", "Bash(echo:*),Bash(rm:*)", "--allowedTools=Write",
        "--disallowedTools", "Grep LS Bash(rm:*)", "--output-format", "stream-json",
        "--config", str(config), cwd=workspace,
    )  # fmt: skip
    assert run.code == 0, run.err
    found = events(run.out)
    init = found[0]
    assert "grep" not in init["tools"]
    assert "list_dir" not in init["tools"]
    assert {"run_command", "write_file", "read_file"} <= set(init["tools"])
    body = server.requests[0].json
    assert isinstance(body, dict)
    assert {tool["function"]["name"] for tool in body["tools"]} == set(init["tools"])
    results = [e["message"]["content"][0] for e in of(found, "user")]
    assert [e["status"] for e in of(found, "user")] == ["ok", "denied", "error", "ok"]
    assert "allowed" in results[0]["content"]
    assert "--disallowedTools Bash(rm:*)" in results[2]["content"]
    assert (workspace / "x.py").read_text() == "1\n"
    assert not (workspace / "not-allowed").exists()
    denied = found[-1]["permission_denials"]
    assert [d["tool_input"] for d in denied] == [{"command": "touch not-allowed"}]


async def test_unknown_tools_in_rules_are_told_and_ignored(
    server: FaultServer, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "c.toml", server)
    run = await qwen_dev(
        "-p", "hi", "--allowedTools", "WebFetch", "--disallowedTools", "Bash(ls", "--config",
        str(config),
    )  # fmt: skip
    assert run.code == 2
    assert "--disallowedTools" in run.err
    run = await qwen_dev("-p", "hi", "--allowedTools", "WebFetch", "--config", str(config))
    assert run.code == 0, run.err
    assert "there is no tool 'WebFetch' here; ignored" in run.err


async def test_the_shared_budget_is_told_as_rate_limit_events(
    server: FaultServer, workspace: Path
) -> None:
    config = write_config(workspace.parent / "c.toml", server, provider_extra="rpm = 10")
    reading = Outcome.ok(None, tool_calls=[call("read_file", path="nothing.txt")])
    server.script(
        *[reading] * 7,
        Outcome.rate_limited(retry_after="0.2"),
        reading,
        Outcome.ok("Done."),
    )
    run = await qwen_dev(
        "-p", "go", "--output-format", "stream-json", "--config", str(config), cwd=workspace
    )
    assert run.code == 0, run.err
    assert "Traceback" not in run.err
    assert "Task was destroyed" not in run.err
    found = events(run.out)
    limits = [e for e in found if e["type"] == "rate_limit_event"]
    # 1 of 10 used; the 429's cool-down; 9 of 10 (the 429 counts); all 10.
    assert [e["rate_limit_info"]["status"] for e in limits] == [
        "allowed",
        "rejected",
        "allowed_warning",
        "rejected",
    ]
    assert [e["rate_limit_info"].get("utilization") for e in limits] == [0.1, 0.8, 0.9, 1.0]
    first = limits[0]["rate_limit_info"]
    assert first["provider"] == "lab"
    assert isinstance(first["resetsAt"], int)
    assert {e["session_id"] for e in limits} == {found[0]["session_id"]}
    assert found[-1]["subtype"] == "success"
