"""A state folder that cannot be written (read-only, full, not a folder): `ask` still
prints its answer and exits 0, with one clear line per thing it could not keep, never
a traceback (issue 11, item 5)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from faultserver import DEFAULT_TEXT, FaultServer
from tests.test_cli_ask import write_config

pytestmark = pytest.mark.slow  # A real `qwen-dev` process.


async def test_ask_answers_even_when_nothing_can_be_saved(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where QWEN_DEV_HOME's parent should be")
    async with FaultServer() as srv:
        config = write_config(tmp_path / "c.toml", srv)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "qwen_dev_cli", "ask", "hi", "--config", str(config),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "QWEN_DEV_HOME": str(blocker / "home")},
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    stderr = err.decode()
    assert proc.returncode == 0, stderr
    assert DEFAULT_TEXT in out.decode()
    assert "Traceback" not in stderr
    assert stderr.count("cannot save the session") == 1
