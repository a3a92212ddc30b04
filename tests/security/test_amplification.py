"""Threat: one hostile answer costs gigabytes. An answer of ``<tool_call>{`` repeated
made one unreadable call, so one tool message, per copy: 1 MiB of answer took 33 s,
301 MB, a 28.8 MB next request and a 36 MB session file (issue 22, finding 2). One
reply's surplus calls are answered by one message now, and its results are bounded.
Real ``qwen-dev ask`` processes against the fault server on loopback."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from faultserver import FaultServer, Outcome
from qwen_dev_cli.agent.agent import (
    MAX_CALLS_PER_REPLY,
    MAX_NATIVE_ANSWERED,
    MAX_REPLY_RESULTS_CHARS,
)
from tests.test_cli_ask import write_config


async def ask(workspace: Path, *outcomes: Outcome) -> tuple[dict[str, Any], list[Any]]:
    """``qwen-dev ask --json --approval yolo`` (no terminal) against a server answering
    ``outcomes``: the JSON result and the requests the server got."""
    async with FaultServer() as srv:
        srv.script(*outcomes)
        config = write_config(workspace.parent / "c.toml", srv)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "qwen_dev_cli",
            "ask", "--json", "--approval", "yolo", "--config", str(config), "go",
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, cwd=workspace, env=dict(os.environ),
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
        assert proc.returncode == 0, err.decode()[-3000:]
        return json.loads(out), [r.json for r in srv.requests]


def tool_messages(request: Any) -> list[str]:
    return [m["content"] for m in request["messages"] if m["role"] == "tool"]


def session_bytes() -> int:
    sessions = Path(os.environ["QWEN_DEV_HOME"]) / "sessions"
    return sum(path.stat().st_size for path in sessions.glob("*.jsonl"))


async def test_an_answer_of_broken_calls_is_answered_by_one_message(tmp_path: Path) -> None:
    workspace = tmp_path / "project"
    workspace.mkdir()
    copies = 60_000  # 720 kB of answer
    flood = Outcome.ok("<tool_call>{" * copies, chunk_size=4096)
    payload, requests = await ask(workspace, flood, Outcome.ok("done"))
    told = tool_messages(requests[1])
    # the first MAX_CALLS_PER_REPLY problems are explained; one message answers the rest
    assert len(told) == MAX_CALLS_PER_REPLY + 1
    assert all("your tool call could not be used" in t for t in told[:-1])
    surplus = told[-1]
    assert surplus.startswith(f"not run: one reply may make at most {MAX_CALLS_PER_REPLY}")
    assert f"{copies - MAX_CALLS_PER_REPLY} more tool call(s)" in surplus
    assert len(payload["tool_calls"]) == MAX_CALLS_PER_REPLY + 1
    # what the reply adds is a few kilobytes, not 28 MB of request and 36 MB of session
    assert len(json.dumps(requests[1])) < 100_000
    assert session_bytes() < 100_000
    assert payload["text"] == "done"


async def test_one_replys_results_are_bounded_in_size(tmp_path: Path) -> None:
    workspace = tmp_path / "project"
    workspace.mkdir()
    for n in range(MAX_CALLS_PER_REPLY):
        (workspace / f"big{n}.txt").write_text(f"{n:02d}" + "x" * 199 + "\n" * 1 + "y" * 40_000)
    calls = "".join(
        f'<tool_call>{{"name": "read_file", "arguments": {{"path": "big{n}.txt"}}}}</tool_call>'
        for n in range(MAX_CALLS_PER_REPLY)
    )
    payload, requests = await ask(workspace, Outcome.ok(calls), Outcome.ok("done"))
    told = tool_messages(requests[1])
    assert len(told) == MAX_CALLS_PER_REPLY  # every call answered
    total = sum(len(t) for t in told)
    # past the bound, each further call is answered by a short refusal only
    assert total <= MAX_REPLY_RESULTS_CHARS + MAX_CALLS_PER_REPLY * 200
    assert told[0].startswith("00")  # the first ones ran whole
    assert any("[cut: this reply's tool results reached" in t for t in told)
    assert told[-1].startswith("not run: this reply's tool results already fill")
    statuses = [call["status"] for call in payload["tool_calls"]]
    assert statuses[0] == "ok"
    assert statuses[-1] == "denied"


async def test_a_reply_of_many_native_calls_adds_a_bounded_amount(tmp_path: Path) -> None:
    workspace = tmp_path / "project"
    workspace.mkdir()
    count = MAX_NATIVE_ANSWERED + 500
    calls = [{"name": "list_dir", "arguments": json.dumps({"path": "."})}] * count
    payload, requests = await ask(workspace, Outcome.ok(tool_calls=calls), Outcome.ok("done"))
    told = tool_messages(requests[1])
    # every call left in the assistant message is answered, and only those are left
    [assistant] = [m for m in requests[1]["messages"] if m.get("tool_calls")]
    assert len(assistant["tool_calls"]) == len(told) == MAX_NATIVE_ANSWERED + 1
    assert told[MAX_CALLS_PER_REPLY].startswith("not run: one reply may make at most")
    assert "500 more tool call(s) after the first" in told[-1]
    assert len(payload["tool_calls"]) == MAX_NATIVE_ANSWERED + 1
