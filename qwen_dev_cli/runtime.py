"""What one ``qwen-dev`` process runs on: built once by the composition root
(:mod:`qwen_dev_cli.cli`) and handed to the REPL, ``ask``, ``batch`` and ``doctor``,
the way HTTPie's ``main(args, env=Environment())`` hands its environment down.

- :class:`Home` is the one place that knows the layout of ``QWEN_DEV_HOME`` (sessions,
  input history, metrics, notices, the local state store, the model cache), so no
  other module spells a file name under it.
- :class:`Runtime` holds the resolved settings, the home and the state store every
  client of the process shares, and builds those clients.

Nothing here is imported at start-up beyond this module: the client and the stores are
imported when first built, so ``--help`` pays nothing for them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from .config import Settings
    from .core import LLMClient
    from .core.state import ProviderStateStore
    from .session.metrics_log import MetricsLog
    from .session.store import SessionStore


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
    def llama_state(self) -> Path:
        """Saved prompt-prefix states of the in-process model."""
        return self.root / "cache" / "llama-state"

    def session_store(self, warn: Callable[[str], None] | None = None) -> SessionStore:
        from .session.store import SessionStore

        return SessionStore(self.sessions, warn=warn)

    def metrics_log(self) -> MetricsLog:
        from .session.metrics_log import MetricsLog

        return MetricsLog(self.metrics)


@dataclass(frozen=True)
class Runtime:
    """The process's settings, home and shared state store.

    Args:
        settings: the resolved configuration.
        state: where budgets, breakers and cool-downs live (DESIGN section 8); the
            composition root opens and closes it. ``None``: each client keeps its own.
    """

    settings: Settings
    state: ProviderStateStore | None = None

    @property
    def home(self) -> Home:
        return Home(self.settings.home)

    def with_settings(self, settings: Settings) -> Runtime:
        """The same process with other settings (the REPL's ``/provider``, ``/model``):
        the state store stays shared."""
        return dataclasses.replace(self, settings=settings)

    def client(self) -> LLMClient:
        """A client of these settings, sharing the process's state store."""
        from .core import LLMClient

        return LLMClient.from_settings(self.settings, state=self.state)
