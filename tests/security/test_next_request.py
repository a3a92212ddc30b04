"""Threat: the turn after a huge answer costs many times its size (issue 22, findings 2
and 13: at most 150 MB for any answer within the 64 MiB cap). ``ask -c`` after an
answer of 63 MiB took 298 MB: the session file read whole (its bytes, its text, its
lines, then the parsed answer), read a second time for the checkpoint's turn number,
and, when the window holds it, the request body built as JSON text and as bytes. Now
the answer is held about once: the file is parsed a line at a time (a long string
decoded onto one growing string), and the body encoded as it is sent. Real ``qwen-dev
ask`` processes against the fault server on loopback."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from faultserver import FaultServer, Outcome
from tests.security.test_big_answer import CHILD
from tests.test_cli_ask import write_config

MiB = 1 << 20


async def two_turns(root: Path, answer: str, window: int) -> tuple[float, list[Any]]:
    """``ask go`` answered with ``answer``, then ``ask -c next`` (the session resumed):
    the second's peak RSS (MB) and the requests it made."""
    workspace, home = root / "project", root / "home"
    workspace.mkdir(parents=True)
    env = {**os.environ, "QWEN_DEV_HOME": str(home)}
    async with FaultServer() as srv:
        srv.script(Outcome.ok(answer, chunk_size=64 * 1024))
        config = write_config(root / "c.toml", srv, provider_extra=f"context_window = {window}")
        peak, turn1 = 0.0, 0
        for argv in (["go"], ["-c", "next"]):
            report = root / "peak"
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-c", CHILD, str(report), "ask", "--approval", "yolo",
                "--config", str(config), *argv, stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
                cwd=workspace, env=env,
            )  # fmt: skip
            _, err = await asyncio.wait_for(proc.communicate(), timeout=300)
            assert proc.returncode == 0, err.decode()[-2000:]
            peak = float(report.read_text())
            if argv == ["go"]:
                turn1 = len(srv.requests)
        return peak, [r.json for r in srv.requests[turn1:]]


@pytest.mark.slow
@pytest.mark.parametrize("window", [8192, 32_000_000])
async def test_the_turn_after_a_huge_answer_holds_it_about_once(
    tmp_path: Path, window: int
) -> None:
    prose = 'A line of the answer, with é in it, as models write them. \\ " \n'
    answer = (prose * (16 * MiB // len(prose))).strip()
    small, _ = await two_turns(tmp_path / "small", "short", window)
    big, requests = await two_turns(tmp_path / "big", answer, window)
    sent = [m["content"] for body in requests for m in body["messages"]]
    if window > 8192:  # the window holds it: sent back whole, byte for byte
        assert len(requests) == 1
        assert answer in sent
    else:  # compacted first: the answer is summarised, never sent whole
        assert all(len(str(content)) < 100_000 for content in sent)
    # The answer is 16.8 MB (one byte a character); 124.8 MB more before.
    assert big - small < 2 * len(answer) / 1e6, (big, small)
