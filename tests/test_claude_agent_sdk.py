"""The Claude Agent SDK for Python, unchanged, driving `qwen-dev` (issue 20): its
`cli_path` names a real `qwen-dev` process, answering from the fault server."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from faultserver import FaultServer, Outcome

from .test_cli_ask import write_config
from .test_cli_stream_json import call

sdk = pytest.importorskip("claude_agent_sdk")

pytestmark = pytest.mark.slow  # Every test runs a real `qwen-dev` process.


def cli(tmp_path: Path, config: Path) -> str:
    """An executable the SDK can start: `qwen-dev` with this test's config."""
    path = tmp_path / "qwen-dev"
    path.write_text(
        f'#!/bin/sh\nexec "{sys.executable}" -m qwen_dev_cli --config "{config}" "$@"\n',
        encoding="utf-8",
    )
    path.chmod(0o755)
    return str(path)


async def test_query_yields_typed_messages_and_a_result(tmp_path: Path) -> None:
    async with FaultServer() as srv:
        config = write_config(tmp_path / "c.toml", srv)
        srv.script(Outcome.ok("hello from qwen-dev"))
        options = sdk.ClaudeAgentOptions(cli_path=cli(tmp_path, config), cwd=str(tmp_path))
        messages = [message async for message in sdk.query(prompt="hi", options=options)]
    assert isinstance(messages[0], sdk.SystemMessage)
    assert messages[0].subtype == "init"
    replies = [m for m in messages if isinstance(m, sdk.AssistantMessage)]
    assert len(replies) == 1
    assert replies[0].model == "fault-model"
    assert [block.text for block in replies[0].content] == ["hello from qwen-dev"]
    result = messages[-1]
    assert isinstance(result, sdk.ResultMessage)
    assert (result.subtype, result.is_error, result.result) == (
        "success",
        False,
        "hello from qwen-dev",
    )
    assert result.num_turns == 1
    assert result.session_id == messages[0].data["session_id"]


async def test_a_tool_call_goes_through_can_use_tool(tmp_path: Path) -> None:
    workspace = tmp_path / "project"
    workspace.mkdir()
    asked: list[tuple[str, dict[str, Any]]] = []

    async def can_use_tool(name: str, arguments: dict[str, Any], context: Any) -> Any:
        asked.append((name, arguments))
        if arguments.get("path") == "yes.txt":
            return sdk.PermissionResultAllow()
        return sdk.PermissionResultDeny(message="not that file")

    async def prompt() -> AsyncIterator[dict[str, Any]]:
        message = {"role": "user", "content": "write two files"}
        yield {"type": "user", "message": message, "parent_tool_use_id": None, "session_id": ""}

    async with FaultServer() as srv:
        config = write_config(tmp_path / "c.toml", srv)
        srv.script(
            Outcome.ok(None, tool_calls=[call("write_file", path="yes.txt", content="y\n")]),
            Outcome.ok(None, tool_calls=[call("write_file", path="no.txt", content="n\n")]),
            Outcome.ok("one written"),
        )
        options = sdk.ClaudeAgentOptions(
            cli_path=cli(tmp_path, config),
            cwd=str(workspace),
            can_use_tool=can_use_tool,
            max_turns=5,
            permission_mode="default",
        )
        messages = [message async for message in sdk.query(prompt=prompt(), options=options)]
        last = srv.requests[-1].json
    assert asked == [
        ("write_file", {"path": "yes.txt", "content": "y\n"}),
        ("write_file", {"path": "no.txt", "content": "n\n"}),
    ]
    assert (workspace / "yes.txt").read_text() == "y\n"
    assert not (workspace / "no.txt").exists()
    results = [
        block
        for m in messages
        if isinstance(m, sdk.UserMessage) and isinstance(m.content, list)
        for block in m.content
        if isinstance(block, sdk.ToolResultBlock)
    ]
    assert [block.is_error for block in results] == [False, True]
    assert "not that file" in json.dumps(last)
    result = messages[-1]
    assert isinstance(result, sdk.ResultMessage)
    assert (result.subtype, result.result, result.num_turns) == ("success", "one written", 3)
    assert [d["tool_name"] for d in result.permission_denials or []] == ["write_file"]


async def test_sessions_and_tool_rules_through_the_sdk(tmp_path: Path) -> None:
    workspace = tmp_path / "project"
    workspace.mkdir()
    session = "5d0c6a9e-2b4f-4f8a-9c1d-7e3b2a6f8d10"
    async with FaultServer() as srv:
        config = write_config(tmp_path / "c.toml", srv)
        srv.script(
            Outcome.ok(None, tool_calls=[call("write_file", path="a.txt", content="a\n")]),
            Outcome.ok("written"),
            Outcome.ok("still here"),
        )
        first = sdk.ClaudeAgentOptions(
            cli_path=cli(tmp_path, config),
            cwd=str(workspace),
            session_id=session,
            allowed_tools=["Write"],
            disallowed_tools=["Bash", "Grep"],
        )
        messages = [m async for m in sdk.query(prompt="write a.txt", options=first)]
        again = sdk.ClaudeAgentOptions(
            cli_path=cli(tmp_path, config), cwd=str(workspace), continue_conversation=True
        )
        later = [m async for m in sdk.query(prompt="and now?", options=again)]
        sent = srv.requests[-1].json
    init = messages[0]
    assert isinstance(init, sdk.SystemMessage)
    assert init.data["session_id"] == session
    assert "run_command" not in init.data["tools"]
    assert "grep" not in init.data["tools"]
    assert (workspace / "a.txt").read_text() == "a\n"  # allowed: run unasked
    result = messages[-1]
    assert isinstance(result, sdk.ResultMessage)
    assert (result.session_id, result.result) == (session, "written")
    resumed = later[-1]
    assert isinstance(resumed, sdk.ResultMessage)
    assert (resumed.session_id, resumed.result) == (session, "still here")
    assert "write a.txt" in json.dumps(sent)
