"""Threat: a hostile server's answer holds a lone surrogate, ``"\\ud800"``: valid JSON,
but no UTF-8 carries the character it decodes to. Written to the session file (and in
text mode to the terminal) it raised UnicodeEncodeError: a traceback, the answer lost
and the session's last line torn. What a server sends is made U+FFFD where it is read,
and the session file writes any lone surrogate left (a call's arguments are JSON of
their own) as JSON's escape for it."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from faultserver import FaultServer, Outcome
from tests.hostile_server import HostileServer, _chunk
from tests.security.conftest import requires_sandbox
from tests.test_cli_ask import qwen_dev, write_config

pytestmark = pytest.mark.slow  # real processes

ANSWER = "hello \ud800 world \udc00"


class SurrogateServer(HostileServer):
    """Answers every request with :data:`ANSWER`, its surrogates as JSON escapes."""

    def __init__(self) -> None:
        super().__init__("endless")
        self.mode = "surrogate"

    async def _surrogate(self, writer: asyncio.StreamWriter, auth: str) -> None:
        await self._stream_head(writer)
        writer.write(_chunk({"content": ANSWER}))  # (json.dumps escapes them: \ud800)
        writer.write(_chunk({}).replace(b'"delta": {}', b'"delta": {}, "finish_reason": "stop"'))
        writer.write(b"data: [DONE]\n\n")
        await writer.drain()


@pytest.mark.parametrize("output", ["text", "json"])
async def test_an_answer_with_a_lone_surrogate_is_shown_and_recorded(
    tmp_path: Path, qwen_home: Path, output: str
) -> None:
    async with SurrogateServer() as srv:
        config = write_config(tmp_path / "c.toml", srv)  # type: ignore[arg-type]  # its base_url is all it reads
        flags = ["--json"] if output == "json" else []
        run = await qwen_dev("ask", *flags, "--config", str(config), "hi", cwd=tmp_path)
    assert run.code == 0, run.err
    assert "Traceback" not in run.err
    shown = run.json()["text"] if output == "json" else run.out
    assert "hello \ufffd world \ufffd" in shown
    # The session recorded it, every line whole.
    (session,) = (qwen_home / "sessions").rglob("*.jsonl")
    lines = session.read_text(encoding="utf-8").splitlines()
    answers = [json.loads(line) for line in lines if '"role": "assistant"' in line]
    assert [a["message"]["content"] for a in answers] == ["hello \ufffd world \ufffd"]


@requires_sandbox
async def test_a_lone_surrogate_in_a_calls_arguments_leaves_the_session_whole(
    tmp_path: Path, qwen_home: Path
) -> None:
    # The arguments are JSON text of their own, decoded past the provider: a command
    # holding one was recorded with the checkpoint taken before it, and that line of the
    # session raised UnicodeEncodeError half written (torn, and the call failed for it).
    # The session file writes it as JSON's own escape, and reads it back the same.
    workspace = tmp_path / "project"
    workspace.mkdir()
    arguments = json.dumps({"command": "echo \ud800"})
    async with FaultServer() as srv:
        srv.script(
            Outcome.ok(tool_calls=[{"name": "run_command", "arguments": arguments}]),
            Outcome.ok("done"),
        )
        config = write_config(tmp_path / "c.toml", srv)
        run = await qwen_dev(
            "ask", "--approval", "yolo", "--config", str(config), "go", cwd=workspace
        )
    assert run.code == 0, run.err
    assert "session/jsonl.py" not in run.err
    (session,) = (qwen_home / "sessions").rglob("*.jsonl")
    events = [json.loads(line) for line in session.read_bytes().decode("ascii").splitlines()]
    commands = [e.get("command") for e in events if e["type"] == "checkpoint"]
    assert "echo \ud800" in commands
