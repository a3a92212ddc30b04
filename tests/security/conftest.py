"""The threat model, one module per threat: a hostile model (or a prompt injected into
what it reads) asks for a tool call in ``--approval yolo`` without a terminal. Each
call must be refused (critical) or run inside the OS sandbox where it cannot do the
harm. These run real processes and the real sandbox; they are skipped where the
machine has none (``scripts/bootstrap --dev`` installs bubblewrap)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from faultserver import FaultServer, Outcome
from qwen_dev_cli.tools.sandbox import detect_sandbox
from tests.test_cli_ask import write_config

requires_sandbox = pytest.mark.skipif(
    not detect_sandbox().available, reason=f"no OS sandbox here: {detect_sandbox().detail}"
)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    (root / "app.py").write_text("print('hello')\n", encoding="utf-8")
    return root


def call(name: str, **arguments: object) -> dict[str, str]:
    return {"name": name, "arguments": json.dumps(arguments)}


async def yolo(
    workspace: Path, *commands: str, api_key: str | None = None, config_extra: str = ""
) -> tuple[list[str], list[str]]:
    """Run ``qwen-dev ask --approval yolo`` (no terminal) with a model that asks for each
    command in turn; the statuses of the calls and what the model was told."""
    async with FaultServer() as srv:
        srv.script(
            *(Outcome.ok(tool_calls=[call("run_command", command=c)]) for c in commands),
            Outcome.ok("done"),
        )
        extra = 'api_key_env = "LAB_API_KEY"' if api_key else ""
        config = write_config(
            workspace.parent / "c.toml", srv, extra=config_extra, provider_extra=extra
        )
        env = {"LAB_API_KEY": api_key} if api_key else {}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "qwen_dev_cli",
            "ask", "--json", "--approval", "yolo", "--config", str(config), "go",
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, cwd=workspace, env={**os.environ, **env},
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
        assert proc.returncode == 0, err.decode()
        payload: dict[str, Any] = json.loads(out)
        sent = srv.requests[-1].json
        assert sent is not None
        told = [m["content"] for m in sent["messages"] if m["role"] == "tool"]
        return [c["status"] for c in payload["tool_calls"]], told
