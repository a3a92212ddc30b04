"""The layout of ``QWEN_DEV_HOME``: the one place that knows where each thing lives
under it (sessions, input history, metrics, notices, the model's state cache), so no
other module spells a file name there. The folder itself is resolved by
:func:`~qwen_dev_cli.config.paths.data_dir`; the state store names its own file
(:func:`~qwen_dev_cli.core.state.open_store`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..session.metrics_log import MetricsLog
    from ..session.store import SessionStore


@dataclass(frozen=True)
class Home:
    """The layout of ``QWEN_DEV_HOME``.

    Args:
        root: the folder (``QWEN_DEV_HOME``, else the platform's user data folder).
    """

    root: Path

    @property
    def sessions(self) -> Path:
        return self.root / "sessions"

    @property
    def history(self) -> Path:
        """The REPL's input history."""
        return self.root / "history"

    @property
    def metrics(self) -> Path:
        """Each run's telemetry snapshot, one JSON line per run."""
        return self.root / "metrics.jsonl"

    @property
    def notices(self) -> Path:
        """When each once-a-day notice was last shown."""
        return self.root / "notices.json"

    @property
    def private_links(self) -> Path:
        """Where credential stores behind links were found to lead, kept across sessions
        (a link removed does not uncover what it pointed to)."""
        return self.root / "private-links.json"

    @property
    def llama_state(self) -> Path:
        """Saved prompt-prefix states of the in-process model."""
        return self.root / "cache" / "llama-state"

    @property
    def mcp_logs(self) -> Path:
        """Each MCP server's stderr, one ``NAME.log`` per server."""
        return self.root / "logs" / "mcp"

    @property
    def mcp_trust(self) -> Path:
        """The answers about projects' ``.mcp.json`` files, by path and content hash."""
        return self.root / "mcp-trust.json"

    @property
    def checkpoints(self) -> Path:
        """The shadow git repositories of workspaces' checkpoints, one per workspace."""
        return self.root / "checkpoints"

    def session_store(self, warn: Callable[[str], None] | None = None) -> SessionStore:
        from ..session.store import SessionStore

        return SessionStore(self.sessions, warn=warn)

    def metrics_log(self) -> MetricsLog:
        from ..session.metrics_log import MetricsLog

        return MetricsLog(self.metrics)
