"""Carrying out one tool call: plan it, get it approved, run it, report the outcome.

A write is applied only if its file still has the content its diff was made from:
when the user edited the file while the dialog showed the diff, the call is planned
again and the new diff shown (where the user was asked), or the model is told.

Nothing a model sends can end the turn from here: unknown tools, bad arguments, paths
outside the workspace, denials and failing commands all become a :class:`ToolOutcome`
whose text goes back to the model.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from ..tools import (
    ChangeLog,
    CommandPlan,
    FileChangedSince,
    McpPlan,
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
#: Times one write is shown again because its file changed while the user looked.
MAX_REPLANS = 3


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
        redact: applied to every output before the model (and the session) sees it:
            the providers' keys removed, should a tool or command print one.
        before_command: awaited with each approved command just before it runs (the
            REPL records a checkpoint of the workspace there).
    """

    def __init__(
        self,
        tools: Mapping[str, Tool],
        context: ToolContext,
        policy: ApprovalPolicy,
        changes: ChangeLog,
        redact: Callable[[str], str] | None = None,
        before_command: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self.tools = dict(tools)
        self.before_command = before_command
        self.context = context
        self.policy = policy
        self.changes = changes
        self.redact = redact

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
                outcome = await self._write(call_id, tool, plan, arguments, sink)
            elif isinstance(plan, McpPlan):
                outcome = await self._mcp(tool, plan)
            else:
                outcome = await self._command(tool, plan)
        except ToolError as exc:
            outcome = ToolOutcome("error", f"Error: {exc}")
        except Exception as exc:  # a bug in a tool must not end the user's turn
            log.exception("tool %s failed", name)
            outcome = ToolOutcome("error", f"Error: {name} failed unexpectedly: {exc!r}")
        output = outcome.output if self.redact is None else self.redact(outcome.output)
        return ToolOutcome(outcome.status, cap_text(output))

    async def _write(
        self,
        call_id: str,
        tool: Tool,
        plan: WritePlan,
        arguments: Mapping[str, object],
        sink: EventSink,
    ) -> ToolOutcome:
        summary = plan.summary
        for attempt in range(MAX_REPLANS + 1):
            request = ApprovalRequest(kind="write", tool=tool.name, summary=summary, diff=plan.diff)
            verdict = await self.policy.decide(request)
            if not verdict.approved:
                return ToolOutcome("denied", verdict.denial or "denied")
            try:
                self.changes.apply(plan, workspace=self.context.workspace, tool=tool.name)
                break
            except FileChangedSince as exc:
                # The user edited the file while looking at the diff: never write over
                # that. Whoever saw the diff sees the new one; the model is told.
                if not verdict.asked or attempt == MAX_REPLANS:
                    raise ToolError(f"{exc}; read it again before changing it") from exc
                replanned = tool.plan(arguments, self.context)
                if not isinstance(replanned, WritePlan):
                    return await self._changed_to(replanned, plan.display)
                plan = replanned
                summary = f"{plan.summary} · {plan.display} changed meanwhile: this is the new diff"
            except OSError as exc:
                raise ToolError(f"cannot write {plan.display}: {exc.strerror or exc}") from exc
        sink(FileChanged(call_id, plan.display, plan.diff))
        added, removed = diff_stats(plan.diff)
        verb = "changed" if plan.existed else "created"
        return ToolOutcome("ok", f"{verb} {plan.display} (+{added} -{removed} lines)")

    async def _changed_to(
        self, plan: ReadPlan | CommandPlan | McpPlan, display: str
    ) -> ToolOutcome:
        """The outcome of a write whose file, edited meanwhile, needs it no more."""
        if isinstance(plan, ReadPlan):
            return ToolOutcome("ok", await asyncio.to_thread(plan.run))
        raise ToolError(f"{display} changed meanwhile; nothing was written")

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
        if self.before_command is not None:
            await self.before_command(command)
        result = await run_shell(
            command,
            plan.cwd,
            plan.timeout,
            self.context.output_cap,
            self.context.hidden_env,
            # In the sandbox, the whole workspace is writable, wherever the command runs.
            writable=self.context.workspace.root,
            network=self.context.allow_network or verdict.network,
            private=self.context.workspace.private,
        )
        text = result.for_model()
        if verdict.edited_command is not None:
            text = f"(the user changed the command to: {command})\n{text}"
        return ToolOutcome("ok" if result.ok else "error", text)

    async def _mcp(self, tool: Tool, plan: McpPlan) -> ToolOutcome:
        """A call that leaves the sandbox: asked (unless its server is trusted), then made."""
        if not plan.trusted:
            arguments = json.dumps(plan.arguments, ensure_ascii=False)
            request = ApprovalRequest(
                kind="mcp",
                tool=tool.name,
                summary=(
                    f"MCP server {plan.server}, outside the sandbox: {plan.tool} "
                    f"{cap_text(arguments, 2_000)}"
                ),
                server=plan.server,
            )
            verdict = await self.policy.decide(request)
            if not verdict.approved:
                return ToolOutcome("denied", verdict.denial or "denied")
        ok, text = await plan.call()
        if ok:
            return ToolOutcome("ok", text)
        return ToolOutcome("error", f"Error: {plan.server} {plan.tool} failed: {text}")
