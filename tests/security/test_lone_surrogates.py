"""Threat: a hostile server's answer holds a lone surrogate, ``"\\ud800"``: valid JSON,
but no UTF-8 carries the character it decodes to. Written to the session file (and in
text mode to the terminal) it raised UnicodeEncodeError: a traceback, the answer lost
and the session's last line torn. What a server sends is made U+FFFD where it is read."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from tests.hostile_server import HostileServer, _chunk
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
