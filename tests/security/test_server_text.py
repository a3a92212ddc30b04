"""Threat (issue 22, finding 10): a hostile server's error text drives the user's
terminal: OSC 0 retitles it, OSC 52 writes the clipboard, OSC 8 hides a link, a NUL or
a carriage return rewrites what was shown. Server text is made visible escapes where
the client reads it, so no front end prints it raw; the model name a server reports
(shown in the status bar) too."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

from faultserver import FaultServer, Outcome
from qwen_dev_cli.core.providers.assembler import reply_from_body
from tests.test_cli_ask import write_config

HOSTILE = (
    "bad\x1b]0;pwned\x07 \x1b]52;c;cm0gLXJmIH4=\x07 \x1b]8;;http://evil\x1b\\x\x1b]8;;\x1b\\"
    " \x00\r\x9b31m done"
)
RAW = ("\x1b", "\x07", "\x00", "\r", "\x9b")


@pytest.mark.slow
@pytest.mark.parametrize("output", ["text", "json"])
async def test_a_servers_error_text_reaches_no_terminal_raw(tmp_path: Path, output: str) -> None:
    async with FaultServer() as srv:
        srv.configure(default=Outcome.status(400, message=HOSTILE))
        config = write_config(tmp_path / "c.toml", srv)
        flags = ["--json"] if output == "json" else []
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "qwen_dev_cli", "ask", *flags, "--config", str(config), "hi",
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, cwd=tmp_path, env=dict(os.environ),
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 4  # a 400 is the request's fault: no retry, no failover
    shown = out.decode(errors="replace") + err.decode(errors="replace")
    assert "bad" in shown
    assert not [c for c in RAW if c in shown], shown
    assert "\\x1b]52" in shown  # said, as visible text
    if output == "json":
        message = json.loads(out)["error"]["message"]
        assert "\x1b" not in message


def test_the_model_name_a_server_reports_is_made_printable() -> None:
    body = {
        "model": "m\x1b]0;pwned\x07",
        "choices": [{"message": {"role": "assistant", "content": "hi"}}],
    }
    reply = reply_from_body(body, provider="lab", model="asked-for", rate_limit=None)
    assert "\x1b" not in reply.model
    assert "\x07" not in reply.model
