"""The tool runner applies a write only over the content its diff was made from."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from qwen_dev_cli.agent.approval import ApprovalPolicy
from qwen_dev_cli.agent.executor import ToolRunner
from qwen_dev_cli.agent.turn import DenyAll
from qwen_dev_cli.tools import WRITE_FILE, ChangeLog, Plan, ToolContext, Workspace
from qwen_dev_cli.tools.base import Arguments
from qwen_dev_cli.tools.sandbox import SandboxStatus


def runner_with_a_concurrent_editor(root: Path, edit: str) -> tuple[ToolRunner, ChangeLog]:
    """write_file, but someone saves ``edit`` into the file right after it is planned."""

    def planner(args: Arguments, ctx: ToolContext) -> Plan:
        plan = WRITE_FILE.planner(args, ctx)
        (root / "a.txt").write_text(edit)
        return plan

    tool = dataclasses.replace(WRITE_FILE, planner=planner)
    policy = ApprovalPolicy(
        "auto-edit", DenyAll(), interactive=False, sandbox=SandboxStatus(None, "tests")
    )
    changes = ChangeLog()
    runner = ToolRunner({tool.name: tool}, ToolContext(Workspace(root)), policy, changes)
    return runner, changes


async def test_unasked_the_model_is_told_the_file_changed_and_nothing_is_written(
    tmp_path: Path,
) -> None:
    (tmp_path / "a.txt").write_text("old\n")
    runner, changes = runner_with_a_concurrent_editor(tmp_path, "the user's edit\n")
    outcome = await runner.run(
        "c1", "write_file", {"path": "a.txt", "content": "new\n"}, lambda e: None
    )
    assert outcome.status == "error"
    assert "a.txt changed after this change was planned" in outcome.output
    assert "read it again" in outcome.output
    assert (tmp_path / "a.txt").read_text() == "the user's edit\n"
    assert len(changes) == 0
