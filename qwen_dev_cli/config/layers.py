"""The layers of configuration, low to high, each read by one function
(docs/architecture.md section 3)::

    built-in defaults < presets < user file < project file < environment < flags

A file :class:`Layer` is checked whole as it is read, against the schema, so a mistake
is reported with its file even when a higher layer would have hidden it. The project
file is found from the working folder up and restricted: it may not set what the
schema marks ``project=`` (where keys are sent, what model runs in process, where
account state is kept), nor raise ``approval``. The environment and the flags give an
:class:`Overlay` of raw values, each with its variable or flag; a value is checked only
where it wins (a variable that a flag overrides is not even read).
"""

from __future__ import annotations

import dataclasses
import re
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, Generic, NamedTuple, TypeVar

from . import checks
from .errors import ConfigError, Where
from .mcp_servers import McpServerSettings, build_server, server_name
from .paths import (
    ENV_APPROVAL,
    ENV_CONFIG,
    ENV_MODEL,
    ENV_PROVIDER,
    env_value,
    find_project_config,
    same_file,
    user_config_path,
)
from .presets import PRESETS
from .resolved import APPROVAL_MODES, Approval, Overrides
from .schema import (
    MCP_SERVER_KEYS,
    PROVIDER_KEYS,
    SECTIONS,
    TOP_KEYS,
    Key,
    env_overrides,
    section_defaults,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

T = TypeVar("T")

BUILTIN: Final = "built-in default"
PRESET: Final = "built-in preset"
#: A config file larger than this is not a config file.
MAX_CONFIG_BYTES: Final = 1024 * 1024


@dataclass
class Layer:
    """What one source sets (only what it sets), checked.

    Args:
        source: the file's path, or :data:`BUILTIN` / :data:`PRESET`.
        path: the file, for a file layer.
    """

    source: str
    path: Path | None = None
    provider_order: tuple[str, ...] | None = None
    approval: Approval | None = None
    providers: dict[str, dict[str, object]] = field(default_factory=dict)
    sections: dict[str, dict[str, object]] = field(default_factory=dict)
    mcp_servers: dict[str, McpServerSettings] = field(default_factory=dict)


class Given(NamedTuple, Generic[T]):
    """A value from the environment or a flag, unchecked, and the variable or flag."""

    value: T
    where: Where


class Overlay(NamedTuple):
    """What the environment or the flags set, over every file."""

    provider_order: Given[tuple[str, ...]] | None = None
    model: Given[str] | None = None
    approval: Given[str] | None = None
    sections: Mapping[str, Mapping[str, Given[str]]] = MappingProxyType({})


# ----------------------------------------------------------------------- the layers


def defaults_layer() -> Layer:
    """Every table's defaults, as the schema's fields declare them, and ``approval``."""
    return Layer(BUILTIN, approval=APPROVAL_MODES[0], sections=section_defaults())


def presets_layer() -> Layer:
    """The built-in providers, as if a file defined them (their own source, for blame)."""
    return Layer(PRESET, providers={name: dict(keys) for name, keys in PRESETS.items()})


def user_layer(path: str | Path | None, env: Mapping[str, str]) -> tuple[Path, Layer | None]:
    """The user file and its layer: ``path`` (``--config``) or ``$QWEN_DEV_CONFIG``,
    which must exist, else the platform default, which may not."""
    if path is not None:
        config_path = Path(path).expanduser()
        return config_path, file_layer(config_path)
    config_path = user_config_path(env)
    if config_path.exists() or env_value(env, ENV_CONFIG) is not None:
        return config_path, file_layer(config_path)
    return config_path, None


def project_layer(
    cwd: Path, user_path: Path, approval: Approval, approval_source: str, below: Below
) -> Layer | None:
    """The project's ``.qwen-dev.toml`` (not the user file again), restricted; it may
    lower ``approval`` (from ``approval_source``), never raise it, and move the limits
    ``below`` it (what the defaults, presets and user file say) only tighter."""
    path = find_project_config(cwd)
    if path is None or same_file(path, user_path):
        return None
    layer = file_layer(path)
    _check_project_layer(layer, approval, approval_source)
    _check_tightened(layer, below)
    return layer


@dataclass(frozen=True)
class Below:
    """What the layers under the project file say: each provider's keys, each section's."""

    providers: Mapping[str, Mapping[str, object]]
    sections: Mapping[str, Mapping[str, object]]


def _check_tightened(layer: Layer, below: Below) -> None:
    """A cloned repository may make the account's limits stricter, never looser: more
    retries, a breaker or limiter turned off, a bigger budget are the user's to set."""
    for name, table in layer.providers.items():
        under = below.providers.get(name, {})
        for key in PROVIDER_KEYS.values():
            if key.name in table:
                _tightens(key, table[key.name], under.get(key.name, key.default),
                          Where(layer.source, f"providers.{name}.{key.name}"))  # fmt: skip
    for section, keys in SECTIONS.items():
        table = layer.sections.get(section, {})
        under = below.sections.get(section, {})
        for key in keys.values():
            if key.name in table:
                _tightens(key, table[key.name], under.get(key.name, key.default),
                          Where(layer.source, f"{section}.{key.name}"))  # fmt: skip


def _tightens(key: Key, value: object, under: object, where: Where) -> None:
    direction = key.setting.tighten
    if direction is None or under is None or under is dataclasses.MISSING:
        return  # not a limit, or nothing below to loosen (unset is unlimited)
    if direction == "on":
        looser = value is False and under is True
    elif direction == "lower":
        looser = isinstance(value, int | float) and isinstance(under, int | float) and value > under
    else:
        looser = isinstance(value, int | float) and isinstance(under, int | float) and value < under
    if looser:
        shown = "off" if direction == "on" else repr(under)
        how = {"on": "only turn it on", "lower": "only lower it", "higher": "only raise it"}
        raise where.error(
            f"a project file may {how[direction]} (below it: {shown}); a repository may "
            "tighten your account's limits, never loosen them: set it in your user config"
        )


def env_overlay(env: Mapping[str, str]) -> Overlay:
    """``QWEN_DEV_PROVIDER``, ``_MODEL``, ``_APPROVAL`` and each variable a key declares
    (``env=``); a blank variable is not set."""
    names = _split_names([env_value(env, ENV_PROVIDER) or ""])
    model, approval = env_value(env, ENV_MODEL), env_value(env, ENV_APPROVAL)
    sections: dict[str, dict[str, Given[str]]] = {}
    for table, key in env_overrides():
        variable = key.setting.env
        if variable is not None and (value := env_value(env, variable)) is not None:
            where = Where(variable, f"{table}.{key.name}")
            sections.setdefault(table, {})[key.name] = Given(value, where)
    return Overlay(
        provider_order=Given(names, Where(ENV_PROVIDER, "provider_order")) if names else None,
        model=None if model is None else Given(model, Where(ENV_MODEL, "model")),
        approval=None if approval is None else Given(approval, Where(ENV_APPROVAL, "approval")),
        sections=sections,
    )


def flags_overlay(overrides: Overrides) -> Overlay:
    """``--provider``, ``--model`` and ``--approval``."""
    order, model, approval = overrides.providers, overrides.model, overrides.approval
    return Overlay(
        provider_order=(
            Given(_split_names(order), Where("--provider", "provider_order")) if order else None
        ),
        model=None if model is None else Given(model, Where("--model", "model")),
        approval=None if approval is None else Given(approval, Where("--approval", "approval")),
    )


def _split_names(values: Iterable[str]) -> tuple[str, ...]:
    names: list[str] = []
    for value in values:
        for part in value.split(","):
            name = part.strip()
            if name and name not in names:
                names.append(name)
    return tuple(names)


# ------------------------------------------------------------------------ the files


def file_layer(path: Path) -> Layer:
    """A config file, read and checked whole (a file it cannot read is an error too)."""
    return _parse_layer(_read_toml(path), path)


def _read_toml(path: Path) -> dict[str, Any]:
    where = Where(str(path), "")
    if path.is_dir():
        raise where.error("is a directory, expected a TOML file")
    try:
        # Checked before reading: a FIFO would hang, /dev/zero would never end.
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise where.error("is not a regular file, expected a TOML file")
        if info.st_size > MAX_CONFIG_BYTES:
            raise where.error(f"is {info.st_size:,} bytes; a config file is at most 1 MiB")
        raw = path.read_bytes()
    except FileNotFoundError:
        raise where.error("config file not found") from None
    except PermissionError:
        raise where.error("cannot read the file: permission denied") from None
    except OSError as exc:
        raise where.error(f"cannot read the file: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise where.error(f"not valid UTF-8 text (byte offset {exc.start})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise where.error(f"invalid TOML: {exc}") from None
    except RecursionError:
        raise where.error("invalid TOML: nested too deeply") from None


def _parse_layer(data: Mapping[str, Any], path: Path) -> Layer:
    layer = Layer(str(path), path)
    root = Where(layer.source, "")
    for key, value in data.items():
        where = root.child(key)
        if key == "provider_order":
            layer.provider_order = _parse_order(value, where)
        elif key == "approval":
            layer.approval = checks.approval(value, where)
        elif key == "providers":
            for name, table in _table(value, where).items():
                checks.provider_name(name, where.child(name))
                layer.providers[name] = _parse_provider(table, where.child(name), path)
        elif key == "mcp":
            layer.mcp_servers = parse_mcp(_table(value, where), where)
        elif key in SECTIONS:
            layer.sections[key] = _parse_section(key, _table(value, where), where)
        else:
            homes = [s for s, keys in SECTIONS.items() if key in keys]
            if homes:
                raise where.error(
                    f"unknown top-level key; did you mean to put it under [{homes[0]}]?"
                )
            raise where.error(f"unknown key; {checks.suggest(key, TOP_KEYS)}")
    return layer


def _table(value: object, where: Where) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise where.wrong_type(f"a table ([{where.key}])", value)
    return value


def _unknown_key(where: Where, key: str, known: Iterable[str]) -> ConfigError:
    return where.child(key).error(f"unknown key; {checks.suggest(key, known)}")


def _parse_order(value: object, where: Where) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise where.wrong_type('an array of provider names, e.g. ["sambanova", "local"]', value)
    if not value:
        raise where.error("expected at least one provider name")
    names: list[str] = []
    for item in value:
        name = checks.provider_name(item, where)
        if name in names:
            raise where.error(f"provider {name!r} is listed twice")
        names.append(name)
    return tuple(names)


def _parse_section(section: str, table: Mapping[str, Any], where: Where) -> dict[str, object]:
    keys = SECTIONS[section]
    parsed: dict[str, object] = {}
    for key, value in table.items():
        if key not in keys:
            raise _unknown_key(where, key, keys)
        parsed[key] = keys[key].check(value, where.child(key))
    return parsed


def _parse_provider(value: object, where: Where, path: Path) -> dict[str, object]:
    table = _table(value, where)
    parsed: dict[str, object] = {}
    for key, item in table.items():
        if key == "api_key":
            name = where.key.rsplit(".", 1)[-1]
            suggested = re.sub(r"[^A-Z0-9_]", "_", name.upper()) + "_API_KEY"
            raise where.child(key).error(
                "API keys do not belong in config files: put the key in an environment "
                f"variable and name it here, e.g. api_key_env = {suggested!r} "
                f"(then: export {suggested}=...)"
            )
        if key not in PROVIDER_KEYS:
            raise _unknown_key(where, key, PROVIDER_KEYS)
        checked = PROVIDER_KEYS[key].check(item, where.child(key))
        if key == "model_path" and isinstance(checked, str):
            # Relative to the file that names it, so a project can ship its own model.
            model_path = Path(checked).expanduser()
            if not model_path.is_absolute():
                model_path = path.parent / model_path
            checked = str(model_path)
        parsed[key] = checked
    return parsed


def parse_mcp(table: Mapping[str, Any], where: Where) -> dict[str, McpServerSettings]:
    """``[mcp]``: its ``servers``, each checked key by key, then as a whole."""
    servers: dict[str, McpServerSettings] = {}
    for key, value in table.items():
        if key != "servers":
            raise _unknown_key(where, key, ("servers",))
        for name, server in _table(value, where.child(key)).items():
            at = where.child(key).child(name)
            server_name(name, at)
            parsed: dict[str, object] = {}
            for item, raw in _table(server, at).items():
                if item not in MCP_SERVER_KEYS:
                    raise _unknown_key(at, item, MCP_SERVER_KEYS)
                parsed[item] = MCP_SERVER_KEYS[item].check(raw, at.child(item))
            servers[name] = build_server(name, parsed, at)
    return servers


def _forbidden(keys: Mapping[str, Key], table: Mapping[str, object]) -> list[Key]:
    """The keys of ``table`` a project file may not set: where keys are sent first (the
    worst), then in schema order."""
    found = [key for key in keys.values() if key.setting.project and key.name in table]
    return sorted(found, key=lambda key: key.name not in _SENDS_KEYS)


#: Keys that decide where the user's API key goes: named first when a project sets one.
_SENDS_KEYS = ("base_url", "api_key_env")


def _check_project_layer(layer: Layer, user_approval: Approval, user_source: str) -> None:
    """A cloned repository must not redirect keys or loosen approval."""
    for name, table in layer.providers.items():
        for key in _forbidden(PROVIDER_KEYS, table):
            where = Where(layer.source, f"providers.{name}.{key.name}")
            raise where.error(
                f"a project file may not set {key.name} ({key.setting.project}); "
                "set it in your user config"
            )
    for section, keys in SECTIONS.items():
        for key in _forbidden(keys, layer.sections.get(section, {})):
            instead = "your user config" + (f" or {key.setting.env}" if key.setting.env else "")
            raise Where(layer.source, f"{section}.{key.name}").error(
                f"a project file may not set [{section}] {key.name} "
                f"({key.setting.project}); set it in {instead}"
            )
    if layer.mcp_servers:
        name = next(iter(layer.mcp_servers))
        raise Where(layer.source, f"mcp.servers.{name}").error(
            "a project file may not define MCP servers (a server is a command qwen-dev "
            "would run); add it to your user config: qwen-dev mcp add"
        )
    if layer.approval is None:
        return
    if APPROVAL_MODES.index(layer.approval) > APPROVAL_MODES.index(user_approval):
        raise Where(layer.source, "approval").error(
            f"a project file may not raise approval above your user setting "
            f"{user_approval!r} (from {user_source}), got {layer.approval!r}; it may only "
            f"lower it. Raise it in your user config, with {ENV_APPROVAL} or --approval"
        )
