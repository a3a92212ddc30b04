"""Threat: a command outlives ``run_command`` (a daemon started with ``setsid -f``
keeps working after the call), or reaches the network to fetch or leak.

In the sandbox the command's PID namespace dies with it, and it has a network
namespace of its own: a server on the host's loopback cannot be reached."""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

import pytest

from faultserver import FaultServer
from qwen_dev_cli.agent.approval import ApprovalPolicy
from qwen_dev_cli.agent.executor import ToolRunner
from qwen_dev_cli.agent.turn import ApprovalDecision, ApprovalRequest
from qwen_dev_cli.tools import RUN_COMMAND, ChangeLog, ToolContext, Workspace

from .conftest import requires_sandbox, yolo


def running(marker: str) -> bool:
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            with contextlib.suppress(OSError):
                if marker in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"):
                    return True
    return False


@pytest.mark.slow
@requires_sandbox
async def test_a_detached_process_is_gone_after_the_call(workspace: Path) -> None:
    statuses, _ = await yolo(workspace, "setsid -f sleep 100.25; nohup sleep 100.25 & echo ok")
    assert statuses == ["ok"]
    await asyncio.sleep(0.2)
    assert not running("100.25")


@pytest.mark.slow
@requires_sandbox
async def test_the_network_is_off(workspace: Path) -> None:
    async with FaultServer() as target:
        port = target.base_url.split(":")[-1].split("/")[0]
        probe = f"bash -c 'exec 3<>/dev/tcp/127.0.0.1/{port} && echo CONNECTED'"
        statuses, told = await yolo(workspace, probe)
        assert statuses == ["error"]
        assert "CONNECTED" not in told[0]
        assert "refused" in told[0].lower() or "unreachable" in told[0].lower()
        assert target.requests == []


@pytest.mark.slow
@requires_sandbox
async def test_the_user_may_allow_the_network_in_their_config(workspace: Path) -> None:
    async with FaultServer() as target:
        port = target.base_url.split(":")[-1].split("/")[0]
        probe = f"bash -c 'exec 3<>/dev/tcp/127.0.0.1/{port} && echo CONNECTED'"
        allow = "\n[tools]\nallow_network = true\n"
        statuses, told = await yolo(workspace, probe, config_extra=allow)
        assert statuses == ["ok"]
        assert "CONNECTED" in told[0]


class _WithNetwork:
    async def approve(self, request: ApprovalRequest) -> ApprovalDecision:
        return ApprovalDecision(True, network=True)


@requires_sandbox
async def test_the_dialog_may_allow_the_network_for_one_command(workspace: Path) -> None:
    policy = ApprovalPolicy("ask", _WithNetwork(), interactive=True)
    runner = ToolRunner(
        {RUN_COMMAND.name: RUN_COMMAND}, ToolContext(Workspace(workspace)), policy, ChangeLog()
    )
    async with FaultServer() as target:
        port = target.base_url.split(":")[-1].split("/")[0]
        probe = f"bash -c 'exec 3<>/dev/tcp/127.0.0.1/{port} && echo CONNECTED'"
        outcome = await runner.run("c1", "run_command", {"command": probe}, lambda e: None)
    assert outcome.status == "ok", outcome.output
    assert "CONNECTED" in outcome.output
