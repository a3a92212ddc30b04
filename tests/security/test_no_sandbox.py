"""Threat: yolo runs commands unasked on a machine with no OS sandbox, where nothing
but the pattern list stands between the model and the system.

Without a sandbox, yolo asks before every command, and without a terminal the command
is denied, with the reason told to the model."""

from __future__ import annotations

from qwen_dev_cli.agent.approval import ApprovalPolicy
from qwen_dev_cli.agent.turn import ApprovalDecision, ApprovalRequest
from qwen_dev_cli.tools.sandbox import SandboxStatus

NONE = SandboxStatus(None, "bubblewrap is not installed")


class Yes:
    def __init__(self) -> None:
        self.asked: list[ApprovalRequest] = []

    async def approve(self, request: ApprovalRequest) -> ApprovalDecision:
        self.asked.append(request)
        return ApprovalDecision(True)


def command(text: str = "ls") -> ApprovalRequest:
    return ApprovalRequest(kind="command", tool="run_command", summary=text, command=text)


async def test_without_a_sandbox_yolo_asks_for_every_command() -> None:
    approver = Yes()
    policy = ApprovalPolicy("yolo", approver, interactive=True, sandbox=NONE)
    assert (await policy.decide(command())).approved
    assert len(approver.asked) == 1
    write = ApprovalRequest(kind="write", tool="write_file", summary="edit x")
    assert (await policy.decide(write)).approved
    assert len(approver.asked) == 1  # writes stay unasked: they are confined by the tools


async def test_without_a_sandbox_or_a_terminal_yolo_denies_and_says_why() -> None:
    policy = ApprovalPolicy("yolo", Yes(), interactive=False, sandbox=NONE)
    verdict = await policy.decide(command())
    assert not verdict.approved
    assert verdict.denial is not None
    assert "no OS sandbox" in verdict.denial
    assert "bubblewrap is not installed" in verdict.denial
