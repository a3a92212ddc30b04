"""`--input-format stream-json` (issue 20): turns and control requests as JSON lines on
a real `qwen-dev` process's stdin, answered on its stdout, against the fault server."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from faultserver import FaultServer, Outcome

from .test_cli_ask import qwen_dev, write_config
from .test_cli_stream_json import call

pytestmark = pytest.mark.slow  # Every test runs a real `qwen-dev` process.


@pytest.fixture
async def server() -> AsyncIterator[FaultServer]:
    async with FaultServer() as srv:
        yield srv


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    return root


def user(text: object) -> dict[str, Any]:
    return {"type": "user", "message": {"role": "user", "content": text}}


class Driver:
    """A `qwen-dev` process fed JSON lines, its stdout read line by line."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.seen: list[dict[str, Any]] = []

    async def send(self, *messages: dict[str, Any] | bytes) -> None:
        assert self.proc.stdin is not None
        for message in messages:
            raw = message if isinstance(message, bytes) else json.dumps(message).encode()
            self.proc.stdin.write(raw + b"\n")
        await self.proc.stdin.drain()

    async def next(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout=60)
        assert line, "stdout ended"
        event = json.loads(line)
        assert isinstance(event, dict)
        self.seen.append(event)
        return event

    async def until(self, kind: str) -> dict[str, Any]:
        while True:
            event = await self.next()
            if event["type"] == kind:
                return event

    async def close(self) -> int:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        assert self.proc.stdout is not None
        rest = await asyncio.wait_for(self.proc.stdout.read(), timeout=60)
        self.seen += [json.loads(line) for line in rest.splitlines()]
        return await asyncio.wait_for(self.proc.wait(), timeout=60)


async def start(config: Path, cwd: Path, *extra: str) -> Driver:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "qwen_dev_cli", "--output-format", "stream-json", "--verbose",
        "--input-format", "stream-json", "--system-prompt=", "--config", str(config), *extra,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL, cwd=cwd, env=dict(os.environ),
    )  # fmt: skip
    return Driver(proc)


async def test_turns_of_one_session_with_control_requests_and_the_caller_approving(
    server: FaultServer, workspace: Path
) -> None:
    config = write_config(workspace.parent / "c.toml", server)
    write = call("write_file", path="n.txt", content="x\n")
    server.script(
        Outcome.ok("first answer"),
        Outcome.ok(None, tool_calls=[write]),
        Outcome.ok("written"),
        Outcome.ok(None, tool_calls=[call("write_file", path="no.txt", content="y\n")]),
        Outcome.ok("not written"),
    )
    qd = await start(config, workspace)
    init = await qd.next()
    assert (init["type"], init["subtype"]) == ("system", "init")
    await qd.send(
        {"type": "control_request", "request_id": "r1", "request": {"subtype": "initialize"}}
    )
    reply = await qd.next()
    assert reply["type"] == "control_response"
    assert (reply["response"]["subtype"], reply["response"]["request_id"]) == ("success", "r1")

    await qd.send(b"not json", b"[1, 2]", {"type": "mystery"}, user("hi"))
    problems = [await qd.next() for _ in range(3)]
    assert [(p["subtype"], p["message"].split(":")[0]) for p in problems] == [
        ("error", "line 2"),
        ("error", "line 3"),
        ("warning", "line 4"),
    ]
    first = await qd.until("result")
    assert (first["subtype"], first["result"]) == ("success", "first answer")

    await qd.send(user([{"type": "text", "text": "write n.txt"}]))
    asked = await qd.until("control_request")
    request = asked["request"]
    assert request["subtype"] == "can_use_tool"
    assert (request["tool_name"], request["input"]) == (
        "write_file",
        {"path": "n.txt", "content": "x\n"},
    )
    allow = {"behavior": "allow", "updatedInput": request["input"]}
    response = {"subtype": "success", "request_id": asked["request_id"], "response": allow}
    await qd.send({"type": "control_response", "response": response})
    second = await qd.until("result")
    assert (second["subtype"], second["result"]) == ("success", "written")
    assert (workspace / "n.txt").read_text() == "x\n"

    await qd.send(user("write no.txt"))
    asked = await qd.until("control_request")
    deny = {"behavior": "deny", "message": "not that one"}
    response = {"subtype": "success", "request_id": asked["request_id"], "response": deny}
    await qd.send({"type": "control_response", "response": response})
    third = await qd.until("result")
    assert third["result"] == "not written"
    assert [d["tool_name"] for d in third["permission_denials"]] == ["write_file"]
    assert not (workspace / "no.txt").exists()
    assert await qd.close() == 0

    # One session: each turn's request carries the turns before it.
    last = server.requests[-1].json
    assert isinstance(last, dict)
    said = [m.get("content") for m in last["messages"] if m["role"] == "user"]
    assert said[:3] == ["hi", "write n.txt", "write no.txt"]
    assert "The user denied this call. Their reason: not that one" in json.dumps(last)
    sessions = {e["session_id"] for e in qd.seen if "session_id" in e} | {init["session_id"]}
    assert len(sessions) == 1


async def test_interrupt_ends_the_turn_and_the_session_goes_on(
    server: FaultServer, workspace: Path
) -> None:
    config = write_config(workspace.parent / "c.toml", server)
    server.script(Outcome.ok("word " * 2000, chunk_size=5, chunk_delay=0.01), Outcome.ok("next"))
    qd = await start(config, workspace, "--include-partial-messages")
    await qd.next()
    await qd.send(user("talk"))
    await qd.until("stream_event")
    await qd.send(
        {"type": "control_request", "request_id": "stop", "request": {"subtype": "interrupt"}}
    )
    reply = await qd.until("control_response")
    assert reply["response"] == {"subtype": "success", "request_id": "stop", "response": {}}
    interrupted = await qd.until("result")
    assert (interrupted["subtype"], interrupted["is_error"]) == ("error_during_execution", True)
    await qd.send(user("again"))
    after = await qd.until("result")
    assert (after["subtype"], after["result"]) == ("success", "next")
    assert await qd.close() == 0


async def test_stdin_closed_mid_turn_finishes_the_turn(
    server: FaultServer, workspace: Path
) -> None:
    config = write_config(workspace.parent / "c.toml", server)
    server.script(Outcome.ok("slow answer", delay=0.5))
    qd = await start(config, workspace)
    await qd.send(user("hi"))
    assert await qd.close() == 0
    result = qd.seen[-1]
    assert (result["type"], result["subtype"], result["result"]) == (
        "result",
        "success",
        "slow answer",
    )


async def test_a_line_over_8_mib_is_refused_and_the_session_goes_on(
    server: FaultServer, workspace: Path
) -> None:
    config = write_config(workspace.parent / "c.toml", server)
    qd = await start(config, workspace)
    await qd.next()
    await qd.send(json.dumps(user("x" * (8 * 1024 * 1024 + 10))).encode(), user("hi"))
    refused = await qd.next()
    assert (refused["subtype"], refused["message"].split(":")[0]) == ("error", "line 1")
    assert "longer than" in refused["message"]
    assert (await qd.until("result"))["subtype"] == "success"
    assert await qd.close() == 0


async def test_stream_json_input_needs_stream_json_output() -> None:
    run = await qwen_dev("--input-format", "stream-json")
    assert run.code == 2
    assert "--input-format stream-json needs --output-format stream-json" in run.err
