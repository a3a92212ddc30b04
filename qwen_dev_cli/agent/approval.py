"""Which tool calls run unasked, which the user decides, and which never run.

docs/architecture.md section 7, per approval mode:

======== ================= ======================= ===========================
mode     reads             writes                  commands
======== ================= ======================= ===========================
ask      run               ask (diff shown)        ask (command, cwd, risk)
auto-edit run              run                     ask
yolo     run               run                     run in the sandbox, but
                                                   critical ones ask
======== ================= ======================= ===========================

A call to an MCP server's tool leaves the sandbox: it asks in ``ask`` and ``auto-edit``
(unless its server is trusted, which the executor knows, or the user said always for
that tool), and runs in ``yolo``.

Yolo runs commands unasked only because they run in the OS sandbox
(:mod:`qwen_dev_cli.tools.sandbox`): where there is none, yolo asks before every
command, and the user is told once (the REPL at start; ``ask`` when a command is first
judged). The sandbox is probed when a command is first judged, not when the policy is
made: a turn that runs no command does not pay for the probe (a trial run of bubblewrap).

"Ask" needs a terminal: without one (``interactive=False``) the call is denied and the
model is told so. Confinement to the workspace is not part of this: it is enforced by
the tools in every mode.

"Always" lasts the session (pass one ``remembered`` set to every turn's policy). For a
command it means that same command runs unasked from now on; it is offered only for
low and medium risk: a high-risk command (``rm -rf build``) is worth a look each time,
and a critical one is asked every time, whatever was answered before. For a file edit
it means "yes, and stop asking for edits": the policy goes on in ``auto-edit`` (the
REPL switches the session's mode with it, so the next turns do too).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

from ..tools.rules import always_key
from ..tools.sandbox import SandboxStatus, announce_missing, detect_sandbox
from ..vocabulary import APPROVAL_MODES as APPROVAL_MODES
from ..vocabulary import ApprovalMode as ApprovalMode
from .turn import ApprovalDecision, ApprovalRequest, Approver

log = logging.getLogger(__name__)

#: Risks for which "always run this command" is offered.
ALWAYS_OFFERED_FOR = frozenset({"low", "medium"})

NO_TERMINAL = (
    "not run: it needs the user's approval and there is no terminal to ask "
    "(the user can allow it with --approval auto-edit or yolo, or run interactively)"
)
NO_TERMINAL_NO_SANDBOX = (
    "not run: there is no OS sandbox here ({detail}), so every command needs the "
    "user's approval, even in yolo mode, and there is no terminal to ask"
)
NO_TERMINAL_MCP = (
    "not run: MCP server {server} (tool {tool}) runs outside the sandbox and needs the "
    "user's approval, and there is no terminal to ask (trust = true in its "
    "[mcp.servers.{server}] table, or --approval yolo, would run it)"
)
NO_TERMINAL_CRITICAL = (
    "not run: it is a critical command ({reasons}); critical commands always need the "
    "user's confirmation, and there is no terminal to ask"
)


@dataclass(frozen=True)
class Verdict:
    """The policy's answer for one call.

    Args:
        approved: run it.
        denial: when not approved, what the model is told.
        edited_command: the command as the user changed it.
        asked: whether the user was asked.
        network: the user let this command reach the network.
    """

    approved: bool
    denial: str | None = None
    edited_command: str | None = None
    asked: bool = False
    network: bool = False


def parse_approval_mode(value: str) -> ApprovalMode:
    """``value`` as an approval mode, or ValueError naming the choices."""
    for mode in APPROVAL_MODES:
        if value == mode:
            return mode
    raise ValueError(f"approval must be one of {', '.join(APPROVAL_MODES)}, not {value!r}")


class ApprovalPolicy:
    """Applies an approval mode, asking ``approver`` only what must be asked.

    Args:
        mode: ``ask``, ``auto-edit`` or ``yolo``.
        approver: the user's side (a dialog in the REPL).
        interactive: whether there is a terminal to ask; False denies every question.
        remembered: commands the user approved "always"; pass one set to every turn's
            policy so the answer lasts the whole session.
        sandbox: whether commands run in an OS sandbox; None: detect it when a command
            is first judged (and say on stderr, once, when there is none).
    """

    def __init__(
        self,
        mode: ApprovalMode,
        approver: Approver,
        *,
        interactive: bool,
        remembered: set[str] | None = None,
        sandbox: SandboxStatus | None = None,
    ) -> None:
        self._sandbox = sandbox
        self.mode = parse_approval_mode(mode)
        self.approver = approver
        self.interactive = interactive
        self._always: set[str] = remembered if remembered is not None else set()

    @property
    def sandbox(self) -> SandboxStatus:
        """Whether commands run in an OS sandbox (probed on first use)."""
        if self._sandbox is None:
            self._sandbox = detect_sandbox()
            announce_missing()
        return self._sandbox

    def needs_asking(self, request: ApprovalRequest) -> bool:
        """Whether the mode leaves ``request`` to the user."""
        if request.kind == "write":
            return self.mode == "ask"
        if request.kind == "mcp":
            # Outside the sandbox: yolo is the user's word that such calls may run.
            return self.mode != "yolo" and _mcp_key(request) not in self._always
        if request.risk == "critical":
            return True
        if request.command is not None and request.command.strip() in self._always:
            return False
        return self.mode != "yolo" or not self.sandbox.available

    async def decide(self, request: ApprovalRequest) -> Verdict:
        """Approve, ask the user, or deny (no terminal)."""
        if not self.needs_asking(request):
            return Verdict(True)
        if not self.interactive:
            return Verdict(False, denial=self._no_terminal(request))
        if request.allow_always and not self._may_remember(request):
            request = dataclasses.replace(request, allow_always=False)
        try:
            decision = await self.approver.approve(request)
        except Exception as exc:  # a broken dialog must not run anything, nor end the turn
            log.warning("approval dialog failed: %r", exc)
            return Verdict(False, denial=f"not run: the approval dialog failed ({exc})")
        if not decision.approved:
            return Verdict(False, denial=_user_denial(decision), asked=True)
        if decision.always and self._may_remember(request):
            if request.kind == "write":
                self.mode = "auto-edit"
            elif request.kind == "mcp":
                self._always.add(_mcp_key(request))
            else:
                self._always.add((decision.edited_command or request.command or "").strip())
        edited = decision.edited_command
        if edited is not None and (not edited.strip() or edited == request.command):
            edited = None
        return Verdict(True, edited_command=edited, asked=True, network=decision.network)

    def _may_remember(self, request: ApprovalRequest) -> bool:
        """Whether "always" may be offered, and kept, for ``request``."""
        if not request.allow_always:
            return False
        if request.kind == "write":
            return self.mode == "ask"
        if request.kind == "mcp":
            return True
        return request.risk in ALWAYS_OFFERED_FOR

    def _no_terminal(self, request: ApprovalRequest) -> str:
        if request.kind == "mcp":
            return NO_TERMINAL_MCP.format(server=request.server, tool=request.tool)
        if request.kind == "command" and request.risk == "critical":
            reasons = "; ".join(request.risk_reasons) or "critical risk"
            return NO_TERMINAL_CRITICAL.format(reasons=reasons)
        if request.kind == "command" and self.mode == "yolo" and not self.sandbox.available:
            return NO_TERMINAL_NO_SANDBOX.format(detail=self.sandbox.detail)
        return NO_TERMINAL


def _mcp_key(request: ApprovalRequest) -> str:
    """What "always" remembers for an MCP call: that tool (never a shell command)."""
    return always_key(request.tool or "")


def _user_denial(decision: ApprovalDecision) -> str:
    reason = (decision.reason or "").strip()
    return (
        f"The user denied this call. Their reason: {reason}"
        if reason
        else ("The user denied this call.")
    )
