"""The configuration file's schema, derived from the settings' own dataclasses.

Each key is declared once, on its dataclass field (:mod:`qwen_dev_cli.core.declarations`):
``[providers.NAME]`` keys on :class:`~qwen_dev_cli.core.settings.ProviderSettings`,
``[retry]`` and ``[circuit_breaker]`` on the client's settings, and the CLI's own
tables on the small dataclasses below. Everything else is read from those fields: the
validators (:data:`PROVIDER_KEYS`, :data:`SECTIONS`), the defaults, what a project file
may not set, the variables that override a key, what ``config show`` hides and the
starter file's lines. Adding a key to a table is adding a field.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from qwen_dev_cli.core.declarations import (
    BOOLEAN,
    OPTIONAL_URL,
    STORE,
    Setting,
    declared,
    integer,
    number,
    setting,
)
from qwen_dev_cli.core.settings import BreakerSettings, ProviderSettings, RetrySettings

from .checks import Validator, validator
from .mcp_servers import McpServerSettings
from .paths import ENV_STATE
from .resolved import DEFAULT_SESSION_RETENTION_DAYS, Settings

if TYPE_CHECKING:
    from collections.abc import Mapping


@dataclass(frozen=True)
class RateLimitSettings:
    """``[rate_limit]``: the client-side limiter, on ``ClientSettings.rate_limit_enabled``."""

    enabled: bool = field(
        default=True,
        metadata=setting(
            BOOLEAN,
            doc="keep within each provider's rpm and tpm, waiting when need be",
            tighten="on",
        ),
    )
    max_wait: float = field(
        default=120.0,
        metadata=setting(
            number(above=0, at_most=86_400),
            doc="longest wait, in seconds, for a provider's budget before the request "
            "fails (exit 3); ask --max-wait overrides it",
            tighten="lower",
        ),
    )


@dataclass(frozen=True)
class TelemetrySettings:
    """``[telemetry]``: on ``ClientSettings.telemetry_enabled``, ``Settings.otlp_endpoint``
    and ``Settings.log_content``."""

    enabled: bool = field(
        default=True,
        metadata=setting(BOOLEAN, doc="count requests, latencies and tokens (qwen-dev metrics)"),
    )
    otlp_endpoint: str = field(
        default="",
        metadata=setting(
            OPTIONAL_URL,
            doc="OpenTelemetry collector (OTLP) to export spans and metrics to, e.g. "
            "'http://localhost:4318'; the OTEL_EXPORTER_OTLP_* variables also work",
            project="it would send what your sessions do to a server of its choosing",
            shown="url",
        ),
    )
    log_content: bool = field(
        default=False,
        metadata=setting(
            BOOLEAN,
            doc="put prompts, answers and tool arguments in exported spans",
            project="it would send your prompts and answers to a telemetry collector",
        ),
    )


@dataclass(frozen=True)
class SessionSettings:
    """``[sessions]``: on ``Settings.session_retention_days``."""

    retention_days: int = field(
        default=DEFAULT_SESSION_RETENTION_DAYS,
        metadata=setting(
            integer(at_least=1, at_most=36_500),
            doc="sessions older than this many days are deleted",
            project="it decides when your sessions of every project are deleted",
        ),
    )


@dataclass(frozen=True)
class ToolSettings:
    """``[tools]``: on ``Settings.allow_network``."""

    allow_network: bool = field(
        default=False,
        metadata=setting(
            BOOLEAN,
            doc="let commands the model runs reach the network (pip install, git fetch)",
            project="it would let commands the model runs reach the network",
        ),
    )


@dataclass(frozen=True)
class StateSettings:
    """``[state]``: on ``ClientSettings.state_store``."""

    # The CLI's default: budgets shared by every process of the user on this machine.
    # (A client built in code without configuration stays per process.)
    store: str = field(
        default="local",
        metadata=setting(
            STORE,
            doc='"local", "memory" or a redis:// (or rediss://) URL',
            project="it decides where the state of your provider accounts, hashes of your "
            "API keys included, is kept and sent",
            env=ENV_STATE,
            shown="url",
        ),
    )


@dataclass(frozen=True)
class Sections:
    """The file's tables besides ``[providers]``, in the order files are shown in.

    :func:`~.resolve.resolve` spreads them over :class:`~.settings.Settings`;
    :func:`sections_of` gathers them back.
    """

    retry: RetrySettings = field(default_factory=RetrySettings)
    circuit_breaker: BreakerSettings = field(default_factory=BreakerSettings)
    rate_limit: RateLimitSettings = field(default_factory=RateLimitSettings)
    telemetry: TelemetrySettings = field(default_factory=TelemetrySettings)
    sessions: SessionSettings = field(default_factory=SessionSettings)
    tools: ToolSettings = field(default_factory=ToolSettings)
    state: StateSettings = field(default_factory=StateSettings)


def sections_of(settings: Settings) -> Sections:
    """The tables of resolved settings (the inverse of how resolution spreads them)."""
    client = settings.client
    return Sections(
        retry=client.retry,
        circuit_breaker=client.circuit_breaker,
        rate_limit=RateLimitSettings(client.rate_limit_enabled, client.rate_limit_max_wait),
        telemetry=TelemetrySettings(
            client.telemetry_enabled, settings.otlp_endpoint, settings.log_content
        ),
        sessions=SessionSettings(settings.session_retention_days),
        tools=ToolSettings(settings.allow_network),
        state=StateSettings(client.state_store),
    )


class Key(NamedTuple):
    """One key of a table, as its field declares it.

    Args:
        name: the key (the field's name).
        default: the field's default (``dataclasses.MISSING`` when it has none).
        setting: the declaration.
        check: its validator.
    """

    name: str
    default: object
    setting: Setting
    check: Validator


def keys_of(table: type[Any]) -> Mapping[str, Key]:
    """The keys a file may set in a table: the fields of ``table`` with a check."""
    keys: dict[str, Key] = {}
    for item in dataclasses.fields(table):
        declaration = declared(item)
        if declaration is not None and declaration.check is not None:
            check = validator(declaration.check)
            keys[item.name] = Key(item.name, item.default, declaration, check)
    return MappingProxyType(keys)


def _table_types() -> dict[str, type[Any]]:
    defaults = Sections()
    return {item.name: type(getattr(defaults, item.name)) for item in dataclasses.fields(Sections)}


#: The dataclass of each table (``retry``: ``RetrySettings``), in :class:`Sections` order.
TABLES: Final[Mapping[str, type[Any]]] = MappingProxyType(_table_types())
#: The keys of ``[providers.NAME]``.
PROVIDER_KEYS: Final = keys_of(ProviderSettings)
#: The keys of each other table, in :class:`Sections` order.
SECTIONS: Final[Mapping[str, Mapping[str, Key]]] = MappingProxyType(
    {name: keys_of(table) for name, table in TABLES.items()}
)
#: The keys of ``[mcp.servers.NAME]``.
MCP_SERVER_KEYS: Final = keys_of(McpServerSettings)
TOP_KEYS: Final = ("provider_order", "approval", "providers", "mcp", *SECTIONS)


def section_defaults() -> dict[str, dict[str, object]]:
    """Each table's built-in defaults."""
    return {name: {k: key.default for k, key in keys.items()} for name, keys in SECTIONS.items()}


def build_sections(values: Mapping[str, Mapping[str, object]]) -> Sections:
    """The tables, from each one's merged values (all keys present)."""
    return Sections(**{name: table(**values[name]) for name, table in TABLES.items()})


def env_overrides() -> list[tuple[str, Key]]:
    """The (table, key) pairs an environment variable overrides, in schema order."""
    return [
        (name, key) for name, keys in SECTIONS.items() for key in keys.values() if key.setting.env
    ]
