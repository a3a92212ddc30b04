"""The approval policy, mode by mode (docs/architecture.md section 7)."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

import pytest

from qwen_dev_cli.agent.approval import ApprovalMode, ApprovalPolicy, parse_approval_mode
from qwen_dev_cli.agent.turn import ApprovalDecision, ApprovalRequest
from qwen_dev_cli.vocabulary import Risk


@dataclass
class Recorder:
    """An approver that answers from a script and remembers what it was asked."""

    answers: list[ApprovalDecision] = field(default_factory=list)
    asked: list[ApprovalRequest] = field(default_factory=list)

    async def approve(self, request: ApprovalRequest) -> ApprovalDecision:
        self.asked.append(request)
        return self.answers.pop(0) if self.answers else ApprovalDecision(True)


def write() -> ApprovalRequest:
    return ApprovalRequest(kind="write", tool="write_file", summary="write a.py", diff="+x\n")


def command(text: str = "pytest -q", risk: Risk = "medium") -> ApprovalRequest:
    return ApprovalRequest(
        kind="command",
        tool="run_command",
        summary=f"run: {text}",
        command=text,
        cwd=".",
        risk=risk,
        allow_always=risk != "critical",
    )


# mode -> (write asks?, medium command asks?, critical command asks?)
TABLE: dict[ApprovalMode, tuple[bool, bool, bool]] = {
    "ask": (True, True, True),
    "auto-edit": (False, True, True),
    "yolo": (False, False, True),
}


@pytest.mark.parametrize("mode", list(TABLE))
async def test_what_each_mode_asks(mode: ApprovalMode) -> None:
    recorder = Recorder()
    policy = ApprovalPolicy(mode, recorder, interactive=True)
    requests = [write(), command(), command("sudo ls", "critical")]
    for request in requests:
        assert (await policy.decide(request)).approved
    asked = [request in recorder.asked for request in requests]
    assert tuple(asked) == TABLE[mode]


@pytest.mark.parametrize("mode", list(TABLE))
async def test_without_a_terminal_whatever_needs_asking_is_denied(mode: ApprovalMode) -> None:
    recorder = Recorder()
    policy = ApprovalPolicy(mode, recorder, interactive=False)
    requests = [write(), command(), command("sudo ls", "critical")]
    for request, asks in zip(requests, TABLE[mode], strict=True):
        verdict = await policy.decide(request)
        assert verdict.approved is not asks
        if asks:
            assert verdict.denial is not None
            assert "no terminal" in verdict.denial
    assert recorder.asked == []


async def test_a_critical_command_without_a_terminal_says_why() -> None:
    policy = ApprovalPolicy("yolo", Recorder(), interactive=False)
    request = ApprovalRequest(
        kind="command",
        tool="run_command",
        summary="run: curl x | sh",
        command="curl x | sh",
        risk="critical",
        risk_reasons=("pipes a download into sh",),
    )
    verdict = await policy.decide(request)
    assert not verdict.approved
    assert verdict.denial is not None
    assert "pipes a download into sh" in verdict.denial


async def test_always_approves_the_same_command_for_the_policy_s_life() -> None:
    recorder = Recorder([ApprovalDecision(True, always=True)])
    policy = ApprovalPolicy("ask", recorder, interactive=True)
    assert (await policy.decide(command("pytest -q"))).approved
    assert (await policy.decide(command("pytest -q"))).approved
    assert (await policy.decide(command("pytest -x"))).approved
    assert [r.command for r in recorder.asked] == ["pytest -q", "pytest -x"]


async def test_always_is_not_remembered_for_critical_commands() -> None:
    recorder = Recorder([ApprovalDecision(True, always=True)])
    policy = ApprovalPolicy("yolo", recorder, interactive=True)
    for _ in range(2):
        await policy.decide(command("git push -f", "critical"))
    assert len(recorder.asked) == 2


async def test_a_denial_carries_the_user_s_reason() -> None:
    recorder = Recorder(
        [ApprovalDecision(False, reason="use the staging db"), ApprovalDecision(False)]
    )
    policy = ApprovalPolicy("ask", recorder, interactive=True)
    first = await policy.decide(command())
    assert not first.approved
    assert first.asked
    assert first.denial == "The user denied this call. Their reason: use the staging db"
    second = await policy.decide(command())
    assert second.denial == "The user denied this call."


async def test_an_edited_command_is_handed_on() -> None:
    recorder = Recorder([ApprovalDecision(True, edited_command="pytest -q tests/unit")])
    policy = ApprovalPolicy("ask", recorder, interactive=True)
    verdict = await policy.decide(command("pytest -q"))
    assert verdict.approved
    assert verdict.edited_command == "pytest -q tests/unit"


async def test_a_broken_dialog_denies() -> None:
    class Broken:
        async def approve(self, request: ApprovalRequest) -> ApprovalDecision:
            raise EOFError("stdin closed")

    verdict = await ApprovalPolicy("ask", Broken(), interactive=True).decide(command())
    assert not verdict.approved
    assert verdict.denial is not None
    assert "stdin closed" in verdict.denial


def test_approval_modes_are_validated() -> None:
    assert parse_approval_mode("auto-edit") == "auto-edit"
    with pytest.raises(ValueError, match="ask, auto-edit, yolo"):
        parse_approval_mode("always")


async def test_the_sandbox_is_probed_when_a_command_is_first_judged_not_before(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import qwen_dev_cli.agent.approval as approval
    from qwen_dev_cli.tools.sandbox import SandboxStatus

    probes: list[str] = []

    def probe() -> SandboxStatus:
        probes.append("probed")
        return SandboxStatus(None, "bubblewrap is not installed")

    monkeypatch.setattr(approval, "detect_sandbox", probe)
    monkeypatch.setattr(approval, "announce_missing", lambda: print("no sandbox", file=sys.stderr))
    policy = ApprovalPolicy("yolo", Recorder(), interactive=False)
    assert (await policy.decide(write())).approved  # a turn that only edits files
    assert probes == []
    verdict = await policy.decide(command())
    assert not verdict.approved  # yolo without a sandbox asks, and nobody can answer
    assert "bubblewrap is not installed" in (verdict.denial or "")
    await policy.decide(command("ls"))
    assert probes == ["probed"]  # once
    assert capsys.readouterr().err == "no sandbox\n"
