"""What the configuration gives the CLI (:class:`Settings`) and takes from its flags
(:class:`Overrides`).

Imported at CLI start-up (``--help`` included): nothing here may import the schema, TOML
or ``core``'s modules at run time; resolution lives in :mod:`.resolve`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Final

from qwen_dev_cli.vocabulary import APPROVAL_MODES as APPROVAL_MODES
from qwen_dev_cli.vocabulary import ApprovalMode

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from qwen_dev_cli.core.settings import ClientSettings, ProviderSettings

    from .mcp_servers import McpServerSettings

#: Approval modes from the most to the least cautious (one definition for every layer).
Approval = ApprovalMode

DEFAULT_SESSION_RETENTION_DAYS: Final = 30


@dataclass(frozen=True)
class Overrides:
    """Command-line flags, the highest layer.

    Args:
        providers: ``--provider``: use only these providers, in this order (a value may
            also be comma-separated).
        model: ``--model``: the model of the first active provider.
        approval: ``--approval``.
    """

    providers: tuple[str, ...] = ()
    model: str | None = None
    approval: str | None = None


@dataclass(frozen=True)
class Settings:
    """Everything the CLI needs, resolved.

    Args:
        client: the active providers only, in failover order, API keys resolved.
        approval: what tool calls may do without asking.
        provider_order: the requested order, skipped providers included.
        providers: every defined provider (skipped and unlisted ones too), read-only.
        home: the state folder (sessions, history, metrics, models).
        config_path: the user config file (it may not exist).
        project_config_path: the ``.qwen-dev.toml`` in use, if any.
        notices: notes for the user, e.g. ``sambanova skipped: SAMBANOVA_API_KEY is not set``.
        session_retention_days: sessions older than this are pruned.
        allow_network: whether sandboxed commands may reach the network.
        skipped_providers: providers of the order left out, each with why
            (``{"sambanova": "SAMBANOVA_API_KEY is not set"}``), for error reports.
        mcp_servers: the user's MCP servers (``[mcp.servers]``), enabled or not.
        otlp_endpoint: ``[telemetry] otlp_endpoint`` ("": none; the ``OTEL_*``
            variables may still name one). log_content: ``[telemetry] log_content``.
    """

    client: ClientSettings
    approval: Approval
    provider_order: tuple[str, ...]
    providers: Mapping[str, ProviderSettings]
    home: Path
    config_path: Path
    project_config_path: Path | None
    notices: tuple[str, ...]
    session_retention_days: int = DEFAULT_SESSION_RETENTION_DAYS
    allow_network: bool = False
    skipped_providers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    mcp_servers: tuple[McpServerSettings, ...] = ()
    otlp_endpoint: str = ""
    log_content: bool = False

    @property
    def active_providers(self) -> tuple[str, ...]:
        """Names of the providers the client will use, in failover order."""
        return tuple(p.name for p in self.client.providers)

    @property
    def own_files(self) -> tuple[Path, ...]:
        """qwen-dev's own private files, which no tool reads and no command sees: the
        state folder (every past conversation, the account store) and the user config."""
        return (self.home, self.config_path)

    @property
    def secret_values(self) -> tuple[str, ...]:
        """The providers' keys themselves: no tool output may carry one to the model."""
        return tuple(p.api_key for p in self.providers.values() if p.api_key)

    @property
    def secret_env_names(self) -> frozenset[str]:
        """The variables that hold provider keys: commands the model runs never see them."""
        return frozenset(p.api_key_env for p in self.providers.values() if p.api_key_env)
