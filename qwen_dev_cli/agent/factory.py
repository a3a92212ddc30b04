"""Building the agent from settings, as the CLI's composition root does."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .agent import DEFAULT_MAX_STEPS, Agent
from .approval import parse_approval_mode

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

    from ..core import LLMClient
    from ..tools import ChangeLog
    from .context import ContextLedger
    from .turn import Approver


def build_agent(
    client: LLMClient,
    settings_approval: str,
    *,
    workspace: Path,
    approver: Approver,
    interactive: bool,
    max_steps: int = DEFAULT_MAX_STEPS,
    changes: ChangeLog | None = None,
    hidden_env: Iterable[str] = (),
    own_files: Iterable[Path] = (),
    allow_network: bool = False,
    remembered: set[str] | None = None,
    context_window: int | None = None,
    ledger: ContextLedger | None = None,
) -> Agent:
    """The agent for ``qwen-dev ask`` and the REPL.

    Args:
        client: the resilient client (its providers decide native tools or text).
        settings_approval: ``settings.approval``: ``ask``, ``auto-edit`` or ``yolo``.
        workspace: the workspace root (the current directory, usually).
        approver: the REPL's dialog, or :class:`~qwen_dev_cli.agent.turn.DenyAll`.
        interactive: whether a terminal can answer approval questions.
        max_steps: ``--max-steps``.
        changes: share one :class:`~qwen_dev_cli.tools.ChangeLog` across turns (and
            with ``/undo``); the agent keeps its own otherwise, as ``agent.changes``.
        hidden_env: variables ``run_command`` must not pass on (the providers' keys).
        own_files: qwen-dev's own private files (state folder, user config).
        allow_network: ``[tools] allow_network``: sandboxed commands may use the network.
        remembered: commands approved "always", shared across the session's turns.
        context_window: the window to fit, from the settings of the active providers.
        ledger: the conversation's token accounting, shared across its turns.
    """
    return Agent(
        client,
        workspace=workspace,
        approval=parse_approval_mode(settings_approval),
        approver=approver,
        interactive=interactive,
        max_steps=max_steps,
        changes=changes,
        hidden_env=hidden_env,
        own_files=own_files,
        allow_network=allow_network,
        remembered=remembered,
        context_window=context_window,
        ledger=ledger,
    )
