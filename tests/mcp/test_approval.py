"""A call to an MCP server's tool leaves the sandbox: what each mode does with it, what
the dialog shows, and what the model is told when no one can be asked."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from qwen_dev_cli.agent.approval import ApprovalMode, ApprovalPolicy
from qwen_dev_cli.agent.executor import ToolRunner
from qwen_dev_cli.agent.turn import ApprovalDecision, ApprovalRequest, DenyAll
from qwen_dev_cli.tools import ChangeLog, McpPlan, Plan, Tool, ToolContext, Workspace
from qwen_dev_cli.tools.base import Arguments
from qwen_dev_cli.tools.sandbox import SandboxStatus
from qwen_dev_cli.ui.approval import request_view

from ..agent.test_approval import Recorder


def mcp_tool(trusted: bool, calls: list[dict[str, object]]) -> Tool:
    def planner(arguments: Arguments, context: ToolContext) -> Plan:
        values = dict(arguments.values)

        async def call() -> tuple[bool, str]:
            calls.append(values)
            return True, "called"

        return McpPlan("files", "read", values, trusted, call)

    return Tool("mcp__files__read", "mcp", "reads", {"type": "object"}, planner)


def runner(
    tmp_path: Path, mode: ApprovalMode, approver: object, *, trusted: bool = False
) -> tuple[ToolRunner, list[dict[str, object]]]:
    calls: list[dict[str, object]] = []
    tool = mcp_tool(trusted, calls)
    policy = ApprovalPolicy(
        mode,
        approver,  # type: ignore[arg-type]  # test doubles of Approver, duck-typed
        interactive=not isinstance(approver, DenyAll),
        sandbox=SandboxStatus(None, "tests"),
    )
    return ToolRunner(
        {tool.name: tool}, ToolContext(Workspace(tmp_path)), policy, ChangeLog()
    ), calls


@pytest.mark.parametrize(("mode", "asks"), [("ask", True), ("auto-edit", True), ("yolo", False)])
async def test_each_mode(tmp_path: Path, mode: ApprovalMode, asks: bool) -> None:
    recorder = Recorder()
    run, calls = runner(tmp_path, mode, recorder)
    outcome = await run.run("c", "mcp__files__read", {"path": "x"}, lambda e: None)
    assert outcome.status == "ok"
    assert calls == [{"path": "x"}]
    assert bool(recorder.asked) == asks


async def test_the_dialog_names_the_server_and_says_outside_the_sandbox(tmp_path: Path) -> None:
    recorder = Recorder()
    run, _ = runner(tmp_path, "ask", recorder)
    await run.run("c", "mcp__files__read", {"path": "x"}, lambda e: None)
    request = recorder.asked[0]
    assert request.kind == "mcp"
    assert request.server == "files"
    console = Console(width=200, record=True)
    console.print(request_view(request))
    shown = console.export_text()
    assert "MCP server files, outside the sandbox" in shown
    assert '{"path": "x"}' in shown


async def test_a_trusted_server_runs_unasked_in_ask_mode(tmp_path: Path) -> None:
    recorder = Recorder()
    run, calls = runner(tmp_path, "ask", recorder, trusted=True)
    outcome = await run.run("c", "mcp__files__read", {}, lambda e: None)
    assert outcome.status == "ok"
    assert calls
    assert not recorder.asked


async def test_without_a_terminal_the_denial_names_server_and_tool(tmp_path: Path) -> None:
    run, calls = runner(tmp_path, "auto-edit", DenyAll())
    outcome = await run.run("c", "mcp__files__read", {}, lambda e: None)
    assert outcome.status == "denied"
    assert "MCP server files" in outcome.output
    assert "mcp__files__read" in outcome.output
    assert not calls


async def test_always_stops_asking_for_that_tool_only(tmp_path: Path) -> None:
    recorder = Recorder(answers=[ApprovalDecision(True, always=True)])
    run, calls = runner(tmp_path, "ask", recorder)
    for _ in range(2):
        await run.run("c", "mcp__files__read", {}, lambda e: None)
    assert len(recorder.asked) == 1
    assert len(calls) == 2
    other = ApprovalRequest(kind="mcp", tool="mcp__files__write", summary="", server="files")
    assert run.policy.needs_asking(other)


async def test_always_for_a_command_never_allows_a_tool(tmp_path: Path) -> None:
    recorder = Recorder()
    run, _ = runner(tmp_path, "ask", recorder)
    run.policy._always.add("mcp:mcp__files__read")
    run.policy._always.add("mcp__files__read")
    request = ApprovalRequest(kind="mcp", tool="mcp__files__read", summary="", server="files")
    assert run.policy.needs_asking(request)


@pytest.mark.parametrize("rule", ["Bash", "Bash(*)", "Bash(git:*)"])
def test_allowing_commands_never_allows_an_mcp_tool(rule: str) -> None:
    # Review finding: --allowedTools Bash matched the MCP "always" key as a command.
    from qwen_dev_cli.tools.rules import ToolRules

    remembered = ToolRules.parse([rule], []).commands()
    policy = ApprovalPolicy("ask", DenyAll(), interactive=False, remembered=remembered)
    request = ApprovalRequest(kind="mcp", tool="mcp__files__write", summary="", server="files")
    assert policy.needs_asking(request)


def test_allowing_an_mcp_tool_by_name_runs_it_unasked_and_only_it() -> None:
    from qwen_dev_cli.tools.rules import ToolRules

    remembered = ToolRules.parse(["mcp__files__read"], []).commands()
    policy = ApprovalPolicy("ask", DenyAll(), interactive=False, remembered=remembered)
    read = ApprovalRequest(kind="mcp", tool="mcp__files__read", summary="", server="files")
    write = ApprovalRequest(kind="mcp", tool="mcp__files__write", summary="", server="files")
    assert not policy.needs_asking(read)
    assert policy.needs_asking(write)
