"""What one ``qwen-dev`` process runs on: built once by the composition root
(:mod:`qwen_dev_cli.cli`) and handed to the REPL, ``ask``, ``batch`` and ``doctor``,
the way HTTPie's ``main(args, env=Environment())`` hands its environment down.

- :class:`Runtime` holds the resolved settings, the home and the state store every
  client of the process shares, and builds those clients.

Nothing here is imported at start-up beyond this module: the client and the stores are
imported when first built, so ``--help`` pays nothing for them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .config.home import Home

if TYPE_CHECKING:
    from .config import Settings
    from .core import LLMClient
    from .core.state import ProviderStateStore


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
