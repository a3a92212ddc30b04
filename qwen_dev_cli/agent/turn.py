"""The turn interface the REPL and ``ask`` drive, and the events a turn reports.

A turn takes the conversation so far and the user's text, and reports everything it
does as events to a sink: streamed text (and restarts of it), each complete message
to append to the conversation (the session store persists exactly these), tool calls
and their results, and finally a :class:`TurnResult`. It asks an :class:`Approver`
before anything that changes the workspace runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from ..vocabulary import Risk

if TYPE_CHECKING:
    from ..core import ChatResult, Message, Usage

ToolStatus = Literal["ok", "denied", "error"]


# --- events ---------------------------------------------------------------------------


@dataclass(frozen=True)
class AssistantText:
    """A streamed piece of the assistant's current message."""

    text: str


@dataclass(frozen=True)
class AssistantRestart:
    """The text streamed for the current message so far is void (a broken stream is
    being re-issued): discard it."""

    reason: str


@dataclass(frozen=True)
class MessageAdded:
    """A complete message to append to the conversation (and to the session file)."""

    message: Message
    #: For a model's reply: the answer it came from (model, usage, finish reason).
    reply: ChatResult | None = None


@dataclass(frozen=True)
class ToolCallStarted:
    call_id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class ToolCallFinished:
    call_id: str
    name: str
    status: ToolStatus
    #: What the model is told (capped), e.g. the file content or the denial reason.
    output: str


@dataclass(frozen=True)
class FileChanged:
    """A tool changed a file (after approval, or unasked in ``auto-edit``/``yolo``).
    ``diff`` is the unified diff that was applied; ``/undo`` can revert it."""

    call_id: str
    path: str
    diff: str


@dataclass(frozen=True)
class ContextCompacted:
    """The conversation was compacted to fit the context window: from now on the model
    sees ``view`` (a summary, then the recent messages) instead of everything so far.
    Every message before stays in the session file; this records the replacement."""

    view: list[Message]
    #: Estimated prompt tokens before and after, and the window.
    before: int
    after: int
    window: int
    #: One line for the user, e.g. ``context compacted: 5,210 to 1,830 of 6,000 tokens``.
    description: str
    #: The session event's fields (reason, counts, focus).
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ToolCallRecord:
    """One tool call of a turn, as ``ask --json`` reports it."""

    name: str
    arguments: dict[str, Any]
    status: ToolStatus

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "arguments": self.arguments, "status": self.status}


@dataclass(frozen=True)
class TurnResult:
    """How a turn ended."""

    text: str
    provider: str
    model: str
    usage: Usage
    attempts: int
    latency_ms: float
    steps: int
    tool_calls: list[ToolCallRecord] = field(default_factory=list)
    #: ``done``, or ``max_steps`` when the step budget ran out first.
    stopped: Literal["done", "max_steps"] = "done"
    #: Why the last answer ended, as the provider said: ``stop``, ``length`` (cut at
    #: the answer's token limit), ``repetition`` (the local model was stopped looping)...
    finish_reason: str | None = None


def why_cut(result: TurnResult) -> str | None:
    """Why the answer ended before the model finished it, if it did."""
    if result.finish_reason == "length":
        return "answer cut at its token limit"
    if result.finish_reason == "repetition":
        return "answer stopped: the model was repeating itself"
    return None


@dataclass(frozen=True)
class TurnEnded:
    result: TurnResult


AgentEvent = (
    AssistantText
    | AssistantRestart
    | MessageAdded
    | ToolCallStarted
    | ToolCallFinished
    | FileChanged
    | TurnEnded
    | ContextCompacted
)


class EventSink(Protocol):
    """Receives a turn's events in order. Must not block.

    ``event`` is positional-only so that any one-argument callable is a sink, including
    ``list.append`` and other builtins whose parameter has no name.
    """

    def __call__(self, event: AgentEvent, /) -> None: ...


# --- approval -------------------------------------------------------------------------

ApprovalKind = Literal["write", "command", "mcp"]


@dataclass(frozen=True)
class ApprovalRequest:
    """What a tool call wants to do, shown to the user before it runs.

    Args:
        kind: ``write`` for file changes, ``command`` for shell commands, ``mcp`` for
            a call to a tool of an MCP server (outside the sandbox).
        tool: the tool's name.
        summary: one line, e.g. ``edit src/app.py`` or ``run: pytest -q``.
        diff: the unified diff of a file change.
        command: the shell command, its working directory and its risk.
        risk_reasons: why the command has that risk, e.g. ``recursive delete of ~``.
        allow_always: whether "always for this command" may be offered (not for
            critical commands, which are asked every time).
        server: the MCP server of an ``mcp`` call.
    """

    kind: ApprovalKind
    tool: str
    summary: str
    diff: str | None = None
    command: str | None = None
    cwd: str | None = None
    risk: Risk = "low"
    risk_reasons: tuple[str, ...] = ()
    allow_always: bool = True
    server: str | None = None


@dataclass(frozen=True)
class ApprovalDecision:
    """The user's answer.

    Args:
        approved: run it or not.
        reason: why not, passed to the model.
        always: for a command, this same command for the rest of the session; for a
            file change, every later one (the session switches to auto-edit).
        edited_command: the command as the user changed it before approving.
        network: let this one command reach the network from its sandbox.
    """

    approved: bool
    reason: str | None = None
    always: bool = False
    edited_command: str | None = None
    network: bool = False


class Approver(Protocol):
    """Decides on tool calls that need asking (the policy of the approval mode is
    applied before; the approver only sees what must be asked)."""

    async def approve(self, request: ApprovalRequest) -> ApprovalDecision: ...


class DenyAll:
    """The approver without a terminal: nothing that needs asking runs."""

    async def approve(self, request: ApprovalRequest) -> ApprovalDecision:
        return ApprovalDecision(
            False, reason="no terminal to ask the user; run it interactively to approve"
        )


# --- the turn ---------------------------------------------------------------------------


class Turn(Protocol):
    """Runs one user turn. ``history`` is not modified: new messages arrive as
    :class:`MessageAdded` events, for the caller to append and persist."""

    async def run(self, history: list[Message], user_text: str, sink: EventSink) -> TurnResult: ...


@runtime_checkable
class ContextAware(Protocol):
    """A turn that can compact a conversation on demand and report what fills the
    context window (the agent): ``/compact`` and ``/context``."""

    async def compact(
        self, history: list[Message], sink: EventSink, *, focus: str | None = None
    ) -> Any: ...

    def context_report(self, history: list[Message]) -> Any: ...
