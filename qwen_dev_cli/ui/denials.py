"""Tool calls ``qwen-dev ask`` did not run, told on stderr with how to allow them.

``ask`` asks nobody: whatever the approval mode leaves to the user is denied, and the
model is told (docs/architecture.md section 7). The model may still answer "All done.", so the user
must hear it from us: one line per denied call, then which ``--approval`` mode would
have let it run (``auto-edit``: file changes; ``yolo``: commands too, in the OS sandbox;
critical commands never run unasked).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..agent.approval import NO_TERMINAL, NO_TERMINAL_CRITICAL, NO_TERMINAL_NO_SANDBOX
from ..agent.turn import ToolCallFinished, ToolCallStarted
from ..session.summary import clip, tool_call_line
from ..tools import DEFAULT_TOOLS

if TYPE_CHECKING:
    from ..agent.turn import AgentEvent
    from ..tools.sandbox import SandboxStatus

_KIND = {tool.name: tool.kind for tool in DEFAULT_TOOLS}


@dataclass(frozen=True)
class Denial:
    """A tool call that was not run.

    Args:
        call: the call in a few words (``edit_file app.py``).
        kind: ``write``, ``command``, or ``read`` (unknown tools count as reads).
        reason: what the model was told.
    """

    call: str
    kind: str
    reason: str

    @property
    def why(self) -> str:
        """``approval`` (a mode would allow it), ``critical``, ``no_sandbox``, or
        ``other`` (too many calls in one reply...)."""
        # Each denial the approval policy words starts the same way; its end has details.
        for why, wording in (
            ("critical", NO_TERMINAL_CRITICAL),
            ("no_sandbox", NO_TERMINAL_NO_SANDBOX),
            ("approval", NO_TERMINAL),
        ):
            if self.reason.startswith(wording.split("{", 1)[0]):
                return why
        return "other"


class DenialLog:
    """An event sink that keeps the denied tool calls of a turn."""

    def __init__(self) -> None:
        self.denials: list[Denial] = []
        self._calls: dict[str, str] = {}

    def __call__(self, event: AgentEvent) -> None:
        if isinstance(event, ToolCallStarted):
            self._calls[event.call_id] = tool_call_line(event.name, event.arguments)
        elif isinstance(event, ToolCallFinished) and event.status == "denied":
            call = self._calls.get(event.call_id, event.name)
            self.denials.append(Denial(call, _KIND.get(event.name, "read"), event.output))

    def report(self, sandbox: SandboxStatus) -> list[str]:
        """The lines for stderr (none when nothing was denied)."""
        if not self.denials:
            return []
        count = len(self.denials)
        asking = any(d.why != "other" for d in self.denials)
        lines = [
            f"{count} tool call{'s were' if count > 1 else ' was'} denied"
            + (" (`qwen-dev ask` has no one to ask for approval):" if asking else ":")
        ]
        for denial in self.denials:
            why = "" if denial.why != "other" else f" ({clip(denial.reason, 80)})"
            lines.append(f"  {denial.call}{why}")
        return lines + _how_to_allow(self.denials, sandbox)


def _how_to_allow(denials: list[Denial], sandbox: SandboxStatus) -> list[str]:
    edits = any(d.kind == "write" and d.why == "approval" for d in denials)
    commands = [d for d in denials if d.kind == "command" and d.why != "other"]
    critical = any(d.why == "critical" for d in commands)
    unsandboxed = any(d.why == "no_sandbox" for d in commands) or not sandbox.available
    runnable = [d for d in commands if d.why != "critical"]
    if not (edits or commands):
        return []
    hints = []
    if edits:
        hints.append("--approval auto-edit runs file edits")
    if runnable and not unsandboxed:
        hints.append("--approval yolo runs commands too (in the OS sandbox)")
    elif runnable:
        hints.append(f"commands cannot run unasked here: no OS sandbox ({sandbox.detail})")
    if critical:
        hints.append("critical commands never run unasked")
    return [
        "to allow them: " + "; ".join(hints),
        "or run `qwen-dev` (interactive), which asks you about each one",
    ]
