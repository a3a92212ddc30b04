"""Carrying out one tool call: plan it, get it approved, run it, report the outcome.

Nothing a model sends can end the turn from here: unknown tools, bad arguments, paths
outside the workspace, denials and failing commands all become a :class:`ToolOutcome`
whose text goes back to the model.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from ..tools import (
    ChangeLog,
    CommandPlan,
    ReadPlan,
    Tool,
    ToolContext,
    ToolError,
    WritePlan,
    run_shell,
)
from ..tools.diff import diff_stats
from .approval import ApprovalPolicy
from .turn import ApprovalRequest, EventSink, FileChanged, ToolStatus

log = logging.getLogger(__name__)

#: Characters of one tool result sent to the model; the middle of longer ones is elided.
RESULT_CAP = 40_000


@dataclass(frozen=True)
class ToolOutcome:
    """How a call ended and what the model is told."""

    status: ToolStatus
    output: str


def cap_text(text: str, cap: int = RESULT_CAP) -> str:
    """``text``, its middle elided beyond ``cap`` characters."""
    if len(text) <= cap:
        return text
    half = cap // 2
    return f"{text[:half]}\n[... {len(text) - 2 * half} characters elided ...]\n{text[-half:]}"


class ToolRunner:
    """Runs tool calls under an approval policy.

    Args:
        tools: the tools by name.
        context: workspace, timeouts.
        policy: decides what runs.
        changes: where file changes are recorded (for undo).
    """

    def __init__(
        self,
        tools: Mapping[str, Tool],
        context: ToolContext,
        policy: ApprovalPolicy,
        changes: ChangeLog,
    ) -> None:
        self.tools = dict(tools)
        self.context = context
        self.policy = policy
        self.changes = changes

    async def run(
        self, call_id: str, name: str, arguments: Mapping[str, object], sink: EventSink
    ) -> ToolOutcome:
        tool = self.tools.get(name)
        if tool is None:
            known = ", ".join(self.tools)
            return ToolOutcome("error", f"Error: there is no tool {name!r}; the tools are {known}")
        try:
            plan = tool.plan(arguments, self.context)
            if isinstance(plan, ReadPlan):
                outcome = ToolOutcome("ok", await asyncio.to_thread(plan.run))
            elif isinstance(plan, WritePlan):
                outcome = await self._write(call_id, tool, plan, sink)
            else:
                outcome = await self._command(tool, plan)
        except ToolError as exc:
            outcome = ToolOutcome("error", f"Error: {exc}")
        except Exception as exc:  # a bug in a tool must not end the user's turn
            log.exception("tool %s failed", name)
            outcome = ToolOutcome("error", f"Error: {name} failed unexpectedly: {exc!r}")
        return ToolOutcome(outcome.status, cap_text(outcome.output))

    async def _write(
        self, call_id: str, tool: Tool, plan: WritePlan, sink: EventSink
    ) -> ToolOutcome:
        request = ApprovalRequest(
            kind="write", tool=tool.name, summary=plan.summary, diff=plan.diff
        )
        verdict = await self.policy.decide(request)
        if not verdict.approved:
            return ToolOutcome("denied", verdict.denial or "denied")
        try:
            self.changes.write(plan.path, plan.content, display=plan.display, tool=tool.name)
        except OSError as exc:
            raise ToolError(f"cannot write {plan.display}: {exc.strerror or exc}") from exc
        sink(FileChanged(call_id, plan.display, plan.diff))
        added, removed = diff_stats(plan.diff)
        verb = "changed" if plan.existed else "created"
        return ToolOutcome("ok", f"{verb} {plan.display} (+{added} -{removed} lines)")

    async def _command(self, tool: Tool, plan: CommandPlan) -> ToolOutcome:
        request = ApprovalRequest(
            kind="command",
            tool=tool.name,
            summary=f"run: {plan.command}",
            command=plan.command,
            cwd=plan.display_cwd,
            risk=plan.risk.level,
            risk_reasons=plan.risk.reasons,
            allow_always=not plan.risk.critical,
        )
        verdict = await self.policy.decide(request)
        if not verdict.approved:
            return ToolOutcome("denied", verdict.denial or "denied")
        command = verdict.edited_command or plan.command
        result = await run_shell(
            command,
            plan.cwd,
            plan.timeout,
            self.context.output_cap,
            self.context.hidden_env,
            # In the sandbox, the whole workspace is writable, wherever the command runs.
            writable=self.context.workspace.root,
        )
        text = result.for_model()
        if verdict.edited_command is not None:
            text = f"(the user changed the command to: {command})\n{text}"
        return ToolOutcome("ok" if result.ok else "error", text)
