"""Configuration: TOML files, environment and command-line flags -> frozen settings.

Precedence, low to high (DESIGN.md section 3)::

    built-in defaults < user config < project .qwen-dev.toml < environment < flags

The project file is restricted: it may not set ``base_url``, ``api_key_env``, ``kind``
or ``model_path`` of any provider, nor ``[state] store``, nor raise ``approval`` above
the user-level value, so a cloned repository cannot send your keys (or your accounts'
state) elsewhere, load its own model file into the process, or loosen what tool calls
may do.

Every problem with the input is a :class:`ConfigError` whose message names the file (or
variable, or flag), the dotted key and what was expected. API keys are only read from
environment variables; they never appear in notices, errors or :func:`redacted`.

This module is imported at CLI start-up: keep it to the standard library (and a lazy
``platformdirs``).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import re
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, Literal, cast

from qwen_dev_cli.core.settings import (
    DEFAULT_CONTEXT_WINDOW,
    LOCAL_CONTEXT_WINDOW,
    TOOL_FORMATS,
    BreakerSettings,
    ClientSettings,
    ProviderSettings,
    RetrySettings,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

__all__ = [
    "APPROVAL_MODES",
    "DEFAULT_PROVIDER_ORDER",
    "PRESETS",
    "PROJECT_CONFIG_NAME",
    "STARTER_CONFIG",
    "Approval",
    "ConfigError",
    "Overrides",
    "Settings",
    "data_dir",
    "load_settings",
    "redacted",
    "user_config_path",
]

Approval = Literal["ask", "auto-edit", "yolo"]

#: Approval modes from the most to the least cautious.
APPROVAL_MODES: Final[tuple[Approval, ...]] = ("ask", "auto-edit", "yolo")

PROJECT_CONFIG_NAME: Final = ".qwen-dev.toml"
APP_NAME: Final = "qwen-dev"

ENV_HOME: Final = "QWEN_DEV_HOME"
ENV_CONFIG: Final = "QWEN_DEV_CONFIG"
ENV_PROVIDER: Final = "QWEN_DEV_PROVIDER"
ENV_MODEL: Final = "QWEN_DEV_MODEL"
ENV_APPROVAL: Final = "QWEN_DEV_APPROVAL"
ENV_STATE: Final = "QWEN_DEV_STATE"

#: Failover order when no file, variable or flag says otherwise (``ollama`` is
#: available by name).
DEFAULT_PROVIDER_ORDER: Final[tuple[str, ...]] = ("sambanova", "hf", "local")

#: Built-in providers: a user only exports the key. ``[providers.NAME]`` merges over them.
PRESETS: Final[Mapping[str, Mapping[str, object]]] = MappingProxyType(
    {
        "sambanova": MappingProxyType(
            {
                "kind": "openai",
                "base_url": "https://api.sambanova.ai/v1",
                "model": "Qwen2.5-Coder-32B-Instruct",
                "api_key_env": "SAMBANOVA_API_KEY",
                "context_window": 8192,
            }
        ),
        "hf": MappingProxyType(
            {
                "kind": "openai",
                "base_url": "https://router.huggingface.co/v1",
                "model": "Qwen/Qwen2.5-Coder-32B-Instruct",
                "api_key_env": "HF_TOKEN",
                "context_window": 32768,
            }
        ),
        "ollama": MappingProxyType(
            {
                "kind": "openai",
                "base_url": "http://127.0.0.1:11434/v1",
                "model": "qwen2.5-coder:7b",
                # Ollama's default num_ctx, not the model's 32k: it cuts longer prompts.
                "context_window": 4096,
            }
        ),
        "local": MappingProxyType(
            {
                "kind": "llama-cpp",
                "model": "SmolLM2-135M-Instruct",
                "context_window": LOCAL_CONTEXT_WINDOW,
            }
        ),
    }
)

DEFAULT_SESSION_RETENTION_DAYS: Final = 30
#: ``[state] store`` of the CLI: budgets shared by every process of the user on this
#: machine. (A client built in code without configuration stays per process.)
DEFAULT_STATE_STORE: Final = "local"

_BUILTIN: Final = "built-in default"
_PRESET: Final = "built-in preset"


# --------------------------------------------------------------------------- errors


class ConfigError(Exception):
    """A configuration problem the user can fix; the CLI prints it and exits with 2.

    Attributes:
        message: the whole human message (also ``str(error)``).
        source: the file path, environment variable or flag at fault, when known.
        key: the dotted key at fault (e.g. ``retry.base_delay``), when known.
    """

    exit_code: int = 2

    def __init__(self, message: str, *, source: str | None = None, key: str | None = None):
        super().__init__(message)
        self.message = message
        self.source = source
        self.key = key


@dataclass(frozen=True)
class _Where:
    """Where a value came from (file, variable or flag) and its dotted key."""

    source: str
    key: str

    def child(self, key: str) -> _Where:
        return _Where(self.source, f"{self.key}.{key}" if self.key else key)

    def error(self, problem: str) -> ConfigError:
        prefix = f"{self.source}: {self.key}" if self.key else self.source
        return ConfigError(f"{prefix}: {problem}", source=self.source, key=self.key or None)

    def wrong_type(self, expected: str, value: object) -> ConfigError:
        return self.error(f"expected {expected}, got {_describe(value)}")

    def out_of_range(self, expected: str, value: object) -> ConfigError:
        return self.error(f"expected {expected}, got {value!r}")


if TYPE_CHECKING:
    from typing import TypeAlias

    _Check: TypeAlias = Callable[[object, _Where], object]


def _describe(value: object) -> str:
    """A short description of a TOML value for 'got ...' in messages."""
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"string {shown!r}"
    if isinstance(value, int):
        return f"integer {value}"
    if isinstance(value, float):
        return f"float {value!r}"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return f"{type(value).__name__} {value!s}"


def _suggest(key: str, known: Iterable[str]) -> str:
    known = sorted(known)
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    if not close:
        close = [k for k in known if k.lower() == key.lower()]
    if close:
        return f"did you mean {close[0]!r}?"
    return "known keys: " + ", ".join(known)


# ----------------------------------------------------------------------- validators


def _number(*, above: float | None = None, at_least: float | None = None, at_most: float) -> _Check:
    expected = "a number"
    if above is not None:
        expected += f" greater than {above:g}"
    elif at_least is not None:
        expected += f" of at least {at_least:g}"
    expected += f" and at most {at_most:g}"

    def check(value: object, where: _Where) -> object:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise where.wrong_type("a number", value)
        number = float(value)
        if not math.isfinite(number):
            raise where.out_of_range(f"a finite {expected.removeprefix('a ')}", value)
        if (
            (above is not None and not number > above)
            or (at_least is not None and not number >= at_least)
            or number > at_most
        ):
            raise where.out_of_range(expected, value)
        return number

    return check


def _integer(*, at_least: int, at_most: int) -> _Check:
    expected = f"an integer of at least {at_least} and at most {at_most:,}"

    def check(value: object, where: _Where) -> object:
        if isinstance(value, bool) or not isinstance(value, int):
            raise where.wrong_type("an integer", value)
        if not at_least <= value <= at_most:
            raise where.out_of_range(expected, value)
        return value

    return check


def _boolean(value: object, where: _Where) -> object:
    if not isinstance(value, bool):
        raise where.wrong_type("true or false", value)
    return value


def _choice(*choices: str) -> _Check:
    expected = "one of " + ", ".join(repr(c) for c in choices)

    def check(value: object, where: _Where) -> object:
        if not isinstance(value, str):
            raise where.wrong_type(expected, value)
        if value not in choices:
            raise where.error(f"expected {expected}, got {_describe(value)}")
        return value

    return check


def _text(value: object, where: _Where) -> object:
    if not isinstance(value, str):
        raise where.wrong_type("a string", value)
    if not value.strip():
        raise where.error("expected a non-empty string")
    return value


_URL_RE: Final = re.compile(r"^https?://[^\s/?#]+")


def _url(value: object, where: _Where) -> object:
    if not isinstance(value, str):
        raise where.wrong_type("a URL string", value)
    if not _URL_RE.match(value):
        raise where.error(
            f"expected an http:// or https:// URL such as "
            f"'http://127.0.0.1:8000/v1', got {_describe(value)}"
        )
    return value.rstrip("/")


_ENV_NAME_RE: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _env_name(value: object, where: _Where) -> object:
    # The value is never echoed: a common mistake is to paste the key itself here.
    if not isinstance(value, str):
        raise where.wrong_type("the name of an environment variable", value)
    if not _ENV_NAME_RE.match(value):
        raise where.error(
            "expected the name of an environment variable (letters, digits and '_', "
            "e.g. 'MYLAB_API_KEY'), not the key itself; export the key in that variable"
        )
    return value


_PROVIDER_NAME_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


def _store_spec(value: object, where: _Where) -> object:
    expected = "'local', 'memory' or a redis://host:port/db URL"
    if not isinstance(value, str):
        raise where.wrong_type(expected, value)
    # Lazy: the store vocabulary lives with the stores; --help never gets here.
    from qwen_dev_cli.core.state import StoreConfigError, validate_store_spec

    try:
        return validate_store_spec(value.strip())
    except StoreConfigError as exc:  # its message redacts any password in the URL
        raise where.error(str(exc)) from None
    except ValueError as exc:  # a URL too broken to redact: not echoed
        raise where.error(f"malformed store URL: {exc}") from None


def _redact_store(spec: str) -> str:
    from qwen_dev_cli.core.state import redact_url

    return redact_url(spec)


def _provider_name(value: object, where: _Where) -> str:
    if not isinstance(value, str):
        raise where.wrong_type("a provider name", value)
    if not _PROVIDER_NAME_RE.match(value):
        raise where.error(
            f"expected a provider name of letters, digits, '-' and '_', got {_describe(value)}"
        )
    return value


_SECTIONS: Final[Mapping[str, Mapping[str, _Check]]] = {
    "retry": {
        "max_retries": _integer(at_least=0, at_most=100),
        "base_delay": _number(above=0, at_most=3600),
        "max_delay": _number(above=0, at_most=86_400),
        # 0 is meaningful: never sleep on a Retry-After, fail over at once.
        "max_retry_after": _number(at_least=0, at_most=86_400),
        "jitter": _choice("proportional", "full"),
    },
    "circuit_breaker": {
        "enabled": _boolean,
        "failure_threshold": _integer(at_least=1, at_most=1000),
        "recovery_timeout": _number(above=0, at_most=86_400),
        "half_open_max_calls": _integer(at_least=1, at_most=100),
    },
    "rate_limit": {"enabled": _boolean},
    "telemetry": {"enabled": _boolean},
    "sessions": {"retention_days": _integer(at_least=1, at_most=36_500)},
    "tools": {"allow_network": _boolean},
    "state": {"store": _store_spec},
}

_PROVIDER_KEYS: Final[Mapping[str, _Check]] = {
    "kind": _choice("openai", "llama-cpp"),
    "base_url": _url,
    "model": _text,
    "api_key_env": _env_name,
    "rpm": _integer(at_least=1, at_most=10_000_000),
    "tpm": _integer(at_least=1, at_most=10_000_000_000),
    # Below 0.1 s nothing answers; above an hour is a hang, not a timeout.
    "timeout": _number(at_least=0.1, at_most=3600),
    "first_byte_timeout": _number(at_least=0.1, at_most=3600),
    "native_tools": _boolean,
    "tool_format": _choice(*TOOL_FORMATS),
    "max_tokens": _integer(at_least=1, at_most=10_000_000),
    "model_path": _text,
    "context_window": _integer(at_least=512, at_most=100_000_000),
}

_TOP_KEYS: Final = ("provider_order", "approval", "providers", *_SECTIONS)

#: Keys a project file may not set on any provider, and why.
_PROJECT_FORBIDDEN: Final = {
    "base_url": "it decides where your API key is sent",
    "api_key_env": "it decides which of your secrets is sent",
    "kind": "it could make a repository's own model answer you",
    "model_path": "it would load a file from the repository into this process",
}

#: Section keys a project file may not set: why, and where else to set them.
_PROJECT_FORBIDDEN_SETTINGS: Final = {
    ("tools", "allow_network"): (
        "it would let commands the model runs reach the network",
        "your user config",
    ),
    ("sessions", "retention_days"): (
        "it decides when your sessions of every project are deleted",
        "your user config",
    ),
    ("state", "store"): (
        "it decides where the state of your provider accounts, hashes of your API keys "
        "included, is kept and sent",
        f"your user config or {ENV_STATE}",
    ),
}


def _defaults() -> dict[str, dict[str, object]]:
    return {
        "retry": dataclasses.asdict(RetrySettings()),
        "circuit_breaker": dataclasses.asdict(BreakerSettings()),
        "rate_limit": {"enabled": True},
        "telemetry": {"enabled": True},
        "tools": {"allow_network": False},
        "sessions": {"retention_days": DEFAULT_SESSION_RETENTION_DAYS},
        "state": {"store": DEFAULT_STATE_STORE},
    }


# ----------------------------------------------------------------------- public types


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

    @property
    def active_providers(self) -> tuple[str, ...]:
        """Names of the providers the client will use, in failover order."""
        return tuple(p.name for p in self.client.providers)

    @property
    def secret_env_names(self) -> frozenset[str]:
        """The variables that hold provider keys: commands the model runs never see them."""
        return frozenset(p.api_key_env for p in self.providers.values() if p.api_key_env)


# -------------------------------------------------------------------------- paths


def _env_value(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    return value or None


def data_dir(env: Mapping[str, str] | None = None) -> Path:
    """The one folder for all state: ``$QWEN_DEV_HOME``, else the platform data dir."""
    env = os.environ if env is None else env
    home = _env_value(env, ENV_HOME)
    if home is not None:
        return Path(home).expanduser()
    import platformdirs  # lazy: keep CLI start-up light

    return Path(platformdirs.user_data_dir(APP_NAME))


def user_config_path(env: Mapping[str, str] | None = None) -> Path:
    """``$QWEN_DEV_CONFIG``, else ``config.toml`` in the platform user config dir."""
    env = os.environ if env is None else env
    configured = _env_value(env, ENV_CONFIG)
    if configured is not None:
        return Path(configured).expanduser()
    import platformdirs  # lazy: keep CLI start-up light

    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"


def find_project_config(cwd: Path, home: Path | None = None) -> Path | None:
    """The ``.qwen-dev.toml`` of the project ``cwd`` is in: the first one from ``cwd``
    up to its repository's root (the folder holding ``.git``) or ``home``, whichever
    comes first. Folders others may write to (``/tmp``) or that belong to another user
    are passed over: anyone could plant a file there."""
    start = cwd.expanduser().resolve()
    home = (home or Path.home()).expanduser().resolve()
    for folder in (start, *start.parents):
        candidate = folder / PROJECT_CONFIG_NAME
        if _trusted_folder(folder) and os.path.lexists(candidate):
            return candidate
        if folder == home or os.path.lexists(folder / ".git"):
            return None
    return None


def _trusted_folder(folder: Path) -> bool:
    try:
        info = folder.stat()
    except OSError:
        return False
    mine = info.st_uid in (os.getuid(), 0)
    return mine and not info.st_mode & 0o002


#: A config file larger than this is not a config file.
MAX_CONFIG_BYTES: Final = 1024 * 1024


# ----------------------------------------------------------------------- file layer


def _read_toml(path: Path) -> dict[str, Any]:
    where = _Where(str(path), "")
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


@dataclass
class _Layer:
    """The validated content of one config file (only the keys it sets)."""

    path: Path
    provider_order: tuple[str, ...] | None = None
    approval: Approval | None = None
    providers: dict[str, dict[str, object]] = field(default_factory=dict)
    sections: dict[str, dict[str, object]] = field(default_factory=dict)

    @property
    def source(self) -> str:
        return str(self.path)


def _table(value: object, where: _Where) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise where.wrong_type(f"a table ([{where.key}])", value)
    return value


def _unknown_key(where: _Where, key: str, known: Iterable[str]) -> ConfigError:
    return where.child(key).error(f"unknown key; {_suggest(key, known)}")


def _parse_layer(data: Mapping[str, Any], path: Path) -> _Layer:
    layer = _Layer(path)
    root = _Where(layer.source, "")
    for key, value in data.items():
        where = root.child(key)
        if key == "provider_order":
            layer.provider_order = _parse_order(value, where)
        elif key == "approval":
            layer.approval = _as_approval(_choice(*APPROVAL_MODES)(value, where))
        elif key == "providers":
            for name, table in _table(value, where).items():
                _provider_name(name, where.child(name))
                layer.providers[name] = _parse_provider(table, where.child(name), path)
        elif key in _SECTIONS:
            layer.sections[key] = _parse_section(key, _table(value, where), where)
        else:
            homes = [s for s, keys in _SECTIONS.items() if key in keys]
            if homes:
                raise where.error(
                    f"unknown top-level key; did you mean to put it under [{homes[0]}]?"
                )
            raise where.error(f"unknown key; {_suggest(key, _TOP_KEYS)}")
    return layer


def _parse_order(value: object, where: _Where) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise where.wrong_type('an array of provider names, e.g. ["sambanova", "local"]', value)
    if not value:
        raise where.error("expected at least one provider name")
    names: list[str] = []
    for item in value:
        name = _provider_name(item, where)
        if name in names:
            raise where.error(f"provider {name!r} is listed twice")
        names.append(name)
    return tuple(names)


def _parse_section(section: str, table: Mapping[str, Any], where: _Where) -> dict[str, object]:
    checks = _SECTIONS[section]
    parsed: dict[str, object] = {}
    for key, value in table.items():
        if key not in checks:
            raise _unknown_key(where, key, checks)
        parsed[key] = checks[key](value, where.child(key))
    return parsed


def _parse_provider(value: object, where: _Where, path: Path) -> dict[str, object]:
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
        if key not in _PROVIDER_KEYS:
            raise _unknown_key(where, key, _PROVIDER_KEYS)
        checked = _PROVIDER_KEYS[key](item, where.child(key))
        if key == "model_path" and isinstance(checked, str):
            # Relative to the file that names it, so a project can ship its own model.
            model_path = Path(checked).expanduser()
            if not model_path.is_absolute():
                model_path = path.parent / model_path
            checked = str(model_path)
        parsed[key] = checked
    return parsed


def _as_approval(value: object) -> Approval:
    for mode in APPROVAL_MODES:
        if value == mode:
            return mode
    raise AssertionError(value)  # pragma: no cover - validated by _choice before


def _check_project_layer(layer: _Layer, user_approval: Approval, user_source: str) -> None:
    """A cloned repository must not redirect keys or loosen approval."""
    root = _Where(layer.source, "providers")
    for name, table in layer.providers.items():
        for key, why in _PROJECT_FORBIDDEN.items():
            if key in table:
                where = root.child(name).child(key)
                raise where.error(
                    f"a project file may not set {key} ({why}); set it in your user config"
                )
    for (section, key), (why, instead) in _PROJECT_FORBIDDEN_SETTINGS.items():
        if key in layer.sections.get(section, {}):
            where = _Where(layer.source, section).child(key)
            raise where.error(
                f"a project file may not set [{section}] {key} ({why}); set it in {instead}"
            )
    if layer.approval is None:
        return
    if APPROVAL_MODES.index(layer.approval) > APPROVAL_MODES.index(user_approval):
        raise _Where(layer.source, "approval").error(
            f"a project file may not raise approval above your user setting "
            f"{user_approval!r} (from {user_source}), got {layer.approval!r}; it may only "
            f"lower it. Raise it in your user config, with {ENV_APPROVAL} or --approval"
        )


# ---------------------------------------------------------------------------- merge


@dataclass
class _Merged:
    """The file layers merged over the defaults, each value with its source."""

    provider_order: tuple[str, ...] | None = None
    provider_order_source: str = _BUILTIN
    approval: Approval = "ask"
    approval_source: str = _BUILTIN
    providers: dict[str, dict[str, tuple[object, str]]] = field(default_factory=dict)
    provider_origin: dict[str, str] = field(default_factory=dict)
    new_providers: list[str] = field(default_factory=list)
    sections: dict[str, dict[str, tuple[object, str]]] = field(default_factory=dict)

    @classmethod
    def defaults(cls) -> _Merged:
        merged = cls()
        for name, preset in PRESETS.items():
            merged.providers[name] = {k: (v, _PRESET) for k, v in preset.items()}
            merged.provider_origin[name] = _PRESET
        for section, values in _defaults().items():
            merged.sections[section] = {k: (v, _BUILTIN) for k, v in values.items()}
        return merged

    def apply(self, layer: _Layer) -> None:
        if layer.provider_order is not None:
            self.provider_order = layer.provider_order
            self.provider_order_source = layer.source
        if layer.approval is not None:
            self.approval = layer.approval
            self.approval_source = layer.source
        for name, table in layer.providers.items():
            if name not in self.providers:
                self.providers[name] = {}
                self.provider_origin[name] = layer.source
                self.new_providers.append(name)
            self.providers[name].update({k: (v, layer.source) for k, v in table.items()})
        for section, table in layer.sections.items():
            self.sections[section].update({k: (v, layer.source) for k, v in table.items()})

    def section(self, name: str) -> dict[str, Any]:
        return {k: v for k, (v, _) in self.sections[name].items()}


def _build_provider(
    name: str,
    values: Mapping[str, tuple[object, str]],
    origin: str,
    env: Mapping[str, str],
    project_source: str | None,
) -> ProviderSettings:
    kwargs: dict[str, Any] = {k: v for k, (v, _) in values.items()}
    kind = kwargs.setdefault("kind", "openai")
    kind_source = values["kind"][1] if "kind" in values else origin
    blame = _Where(kind_source if kind_source not in (_PRESET, _BUILTIN) else origin, "providers")
    where = blame.child(name)
    if kind == "openai":
        missing = [k for k in ("base_url", "model") if k not in kwargs]
        if missing:
            raise where.child(missing[0]).error(
                "missing; a provider of kind 'openai' needs base_url and model, e.g. "
                "base_url = 'http://127.0.0.1:8000/v1' and model = 'qwen2.5-coder'"
                + (
                    " (a project file cannot set base_url: define the provider in your user config)"
                    if where.source == project_source
                    else ""
                )
            )
    elif "model" not in kwargs:
        if "model_path" not in kwargs:
            raise where.child("model").error(
                "missing; a provider of kind 'llama-cpp' needs model (a name) or "
                "model_path (a GGUF file)"
            )
        kwargs["model"] = Path(str(kwargs["model_path"])).stem
    # Known to every consumer, so compaction and `config show` agree on one number.
    kwargs.setdefault(
        "context_window", LOCAL_CONTEXT_WINDOW if kind == "llama-cpp" else DEFAULT_CONTEXT_WINDOW
    )
    api_key_env = kwargs.get("api_key_env")
    if isinstance(api_key_env, str):
        kwargs["api_key"] = _env_value(env, api_key_env)
    return ProviderSettings(name=name, **kwargs)


def _check_delays(merged: _Merged) -> None:
    base_value, base_src = merged.sections["retry"]["base_delay"]
    top_value, top_src = merged.sections["retry"]["max_delay"]
    base, top = cast("float", base_value), cast("float", top_value)  # validated numbers
    if top >= base:
        return
    if top_src == _BUILTIN:
        raise _Where(base_src, "retry.base_delay").out_of_range(
            f"a number no larger than retry.max_delay ({top!r}, the built-in default)", base
        )
    raise _Where(top_src, "retry.max_delay").out_of_range(
        f"a number of at least retry.base_delay ({base!r}, from {base_src})", top
    )


# --------------------------------------------------------------------- env and flags


def _split_names(values: Iterable[str]) -> tuple[str, ...]:
    names: list[str] = []
    for value in values:
        for part in value.split(","):
            name = part.strip()
            if name and name not in names:
                names.append(name)
    return tuple(names)


def _unknown_provider(where: _Where, name: str, known: Iterable[str]) -> ConfigError:
    known = list(known)
    hint = difflib.get_close_matches(name, known, n=1, cutoff=0.6) or [
        k for k in known if k.lower() == name.lower()
    ]
    did_you_mean = f"did you mean {hint[0]!r}? " if hint else ""
    return where.error(
        f"unknown provider {name!r}; {did_you_mean}known providers: {', '.join(known)}"
    )


def _approval_from(value: str, where: _Where) -> Approval:
    return _as_approval(_choice(*APPROVAL_MODES)(value, where))


# ----------------------------------------------------------------------------- load


def load_settings(
    path: str | Path | None = None,
    *,
    overrides: Overrides | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Settings:
    """Resolve the settings from defaults, files, environment and flags.

    Args:
        path: the user config file (``--config``); it must exist. ``None``: use
            ``$QWEN_DEV_CONFIG`` or the platform default, either of which may be missing.
        overrides: command-line flags.
        env: environment variables (default ``os.environ``).
        cwd: where to start looking for ``.qwen-dev.toml`` (default: the current folder).

    Raises:
        ConfigError: any problem with a file, variable or flag (exit code 2).
    """
    env = os.environ if env is None else env
    overrides = Overrides() if overrides is None else overrides
    cwd = Path.cwd() if cwd is None else cwd

    merged = _Merged.defaults()

    # User config.
    if path is not None:
        config_path = Path(path).expanduser()
        merged.apply(_parse_layer(_read_toml(config_path), config_path))
    else:
        config_path = user_config_path(env)
        # Named in QWEN_DEV_CONFIG, like --config, it must exist; the default may not.
        if config_path.exists() or _env_value(env, ENV_CONFIG) is not None:
            merged.apply(_parse_layer(_read_toml(config_path), config_path))

    # Project config (restricted).
    project_path = find_project_config(cwd)
    if project_path is not None and _same_file(project_path, config_path):
        project_path = None
    if project_path is not None:
        layer = _parse_layer(_read_toml(project_path), project_path)
        _check_project_layer(layer, merged.approval, merged.approval_source)
        merged.apply(layer)

    _check_delays(merged)
    providers = {
        name: _build_provider(
            name,
            values,
            merged.provider_origin[name],
            env,
            None if project_path is None else str(project_path),
        )
        for name, values in merged.providers.items()
    }

    # Provider order: flags > environment > files > user-defined first + defaults.
    explicit: _Where | None = None
    if overrides.providers:
        explicit = _Where("--provider", "provider_order")
        order = _split_names(overrides.providers)
    elif (env_order := _env_value(env, ENV_PROVIDER)) is not None and _split_names([env_order]):
        explicit = _Where(ENV_PROVIDER, "provider_order")
        order = _split_names([env_order])
    elif merged.provider_order is not None:
        order = merged.provider_order
    else:
        order = tuple(merged.new_providers) + tuple(
            n for n in DEFAULT_PROVIDER_ORDER if n not in merged.new_providers
        )
    order_where = explicit or _Where(merged.provider_order_source, "provider_order")
    for name in order:
        if name not in providers:
            raise _unknown_provider(order_where, name, providers)

    notices: list[str] = []
    skipped: dict[str, str] = {}
    active: list[ProviderSettings] = []
    for name in order:
        provider = providers[name]
        if provider.api_key_env and provider.api_key is None:
            if explicit is not None:
                raise explicit.error(
                    f"provider {name!r} needs an API key: export {provider.api_key_env}=... "
                    f"(or choose another provider)"
                )
            skipped[name] = f"{provider.api_key_env} is not set"
            notices.append(f"{name} skipped: {skipped[name]}")
            continue
        active.append(provider)

    # Model: flag > environment, applied to the first active provider.
    model_where: _Where | None = None
    model: str | None = None
    if overrides.model is not None:
        model_where, model = _Where("--model", "model"), overrides.model
    elif (env_model := _env_value(env, ENV_MODEL)) is not None:
        model_where, model = _Where(ENV_MODEL, "model"), env_model
    if model is not None and model_where is not None:
        _text(model, model_where)
        if active:
            first = dataclasses.replace(active[0], model=model.strip())
            active[0] = first
            providers[first.name] = first
        else:
            notices.append(f"{model_where.source} ignored: no provider is active")

    if not active:
        notices.append(
            "no provider is active: export the API key of one of "
            f"{', '.join(order)}, or configure another provider"
        )

    # Approval: flag > environment > project > user > default.
    approval = merged.approval
    if overrides.approval is not None:
        approval = _approval_from(overrides.approval, _Where("--approval", "approval"))
    elif (env_approval := _env_value(env, ENV_APPROVAL)) is not None:
        approval = _approval_from(env_approval, _Where(ENV_APPROVAL, "approval"))

    # State store: environment > files > default (no flag).
    state_store = str(merged.section("state")["store"])
    if (env_state := _env_value(env, ENV_STATE)) is not None:
        state_store = str(_store_spec(env_state, _Where(ENV_STATE, "state.store")))

    retry = merged.section("retry")
    client = ClientSettings(
        providers=tuple(active),
        retry=RetrySettings(**retry),
        circuit_breaker=BreakerSettings(**merged.section("circuit_breaker")),
        rate_limit_enabled=bool(merged.section("rate_limit")["enabled"]),
        telemetry_enabled=bool(merged.section("telemetry")["enabled"]),
        state_store=state_store,
    )
    home = data_dir(env)
    _make_home_private(home, notices)
    return Settings(
        client=client,
        approval=approval,
        provider_order=order,
        providers=MappingProxyType(providers),
        home=home,
        config_path=config_path,
        project_config_path=project_path,
        notices=tuple(notices),
        session_retention_days=int(merged.section("sessions")["retention_days"]),
        allow_network=bool(merged.section("tools")["allow_network"]),
        skipped_providers=MappingProxyType(skipped),
    )


def _make_home_private(home: Path, notices: list[str]) -> None:
    """``QWEN_DEV_HOME`` holds sessions, history and account state: a folder others may
    write to is tightened (when it is ours) or refused."""
    try:
        info = home.stat()
    except OSError:
        return  # not there yet: it is created private when first used
    if not info.st_mode & 0o022:
        return
    if info.st_uid != os.getuid():
        raise ConfigError(
            f"{home}: others may write to this state folder and it is not yours; "
            f"set {ENV_HOME} to a folder of your own"
        )
    try:
        home.chmod(stat.S_IMODE(info.st_mode) & ~0o022)
    except OSError as exc:
        raise ConfigError(
            f"{home}: others may write to it, and it cannot be made private: {exc.strerror}"
        ) from None
    notices.append(f"{home} was writable by others; it is now writable by you alone")


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and a.samefile(b)
    except OSError:
        return False


# ------------------------------------------------------------------------- display


def redacted(settings: Settings) -> dict[str, Any]:
    """A JSON-able view for ``qwen-dev config show``: API keys appear as ``"***"``."""
    active = settings.active_providers
    providers: dict[str, Any] = {}
    for name, provider in settings.providers.items():
        view = dataclasses.asdict(provider)
        view["api_key"] = "***" if provider.api_key else None
        view["active"] = name in active
        providers[name] = view
    client = settings.client
    return {
        "config_path": str(settings.config_path),
        "project_config_path": (
            None if settings.project_config_path is None else str(settings.project_config_path)
        ),
        "home": str(settings.home),
        "approval": settings.approval,
        "provider_order": list(settings.provider_order),
        "active_providers": list(active),
        "providers": providers,
        "retry": dataclasses.asdict(client.retry),
        "circuit_breaker": dataclasses.asdict(client.circuit_breaker),
        "rate_limit": {"enabled": client.rate_limit_enabled},
        "telemetry": {"enabled": client.telemetry_enabled},
        "sessions": {"retention_days": settings.session_retention_days},
        "tools": {"allow_network": settings.allow_network},
        "state": {"store": _redact_store(client.state_store)},
        "notices": list(settings.notices),
    }


# ------------------------------------------------------------------------- starter

STARTER_CONFIG: Final = """\
# qwen-dev configuration (TOML).
#
# Precedence, low to high: built-in defaults < this file < a project's .qwen-dev.toml
# < environment (QWEN_DEV_PROVIDER, QWEN_DEV_MODEL, QWEN_DEV_APPROVAL, QWEN_DEV_STATE)
# < flags.
# Each commented `key = value` line shows the built-in default: uncomment to change it.
# A project's .qwen-dev.toml may not set base_url, api_key_env or [state] store, nor
# raise approval.

# Failover priority. A provider whose API key variable is not set is skipped.
# When this is not set, providers you define below come first, in file order.
# provider_order = ["sambanova", "hf", "local"]

# What tool calls may do without asking: "ask" | "auto-edit" | "yolo".
# approval = "ask"

# Built-in presets: you only need to export the key. A [providers.NAME] table
# merges key by key over the preset. Other keys: rpm, tpm (client-side budget per
# minute, e.g. 50 and 10000; unset is unlimited), max_tokens (completion cap),
# context_window (tokens, prompt and answer together; a server that does not say is
# assumed to have 8192; long conversations are compacted to fit it), first_byte_timeout
# (seconds a streamed answer may take to begin before the next provider is asked; 20 for
# HTTP providers, none for the local model).
# API keys never go in this file: api_key_env names the variable that holds one.
[providers.sambanova]
# kind = "openai"
# base_url = "https://api.sambanova.ai/v1"
# model = "Qwen2.5-Coder-32B-Instruct"
# api_key_env = "SAMBANOVA_API_KEY"
# context_window = 8192
# timeout = 60.0            # seconds a request may stay silent
# native_tools = true
# Without native tools, the text format of the model's calls: "auto" (by model name:
# Qwen3-Coder models write their XML), "hermes" (<tool_call> JSON) or "qwen3_coder".
# tool_format = "auto"

[providers.hf]
# base_url = "https://router.huggingface.co/v1"
# model = "Qwen/Qwen2.5-Coder-32B-Instruct"
# api_key_env = "HF_TOKEN"
# context_window = 32768

# Not in the default order; add it to provider_order or pass --provider ollama.
[providers.ollama]
# base_url = "http://127.0.0.1:11434/v1"
# model = "qwen2.5-coder:7b"
# context_window = 4096

# In-process llama.cpp, the offline default. model_path: a GGUF file (default: the
# model installed under QWEN_DEV_HOME).
[providers.local]
# kind = "llama-cpp"
# model = "SmolLM2-135M-Instruct"
# context_window = 8192             # also the n_ctx llama.cpp allocates

# Any OpenAI-compatible endpoint, for example:
#   [providers.mylab]
#   base_url = "http://127.0.0.1:8000/v1"
#   model = "qwen2.5-coder"
#   api_key_env = "MYLAB_API_KEY"    # optional

# Delay before retry n is min(base_delay * 2**n, max_delay) plus jitter.
[retry]
# max_retries = 3
# base_delay = 1.0
# max_delay = 60.0
# A longer Retry-After is not slept: fail over, or fail.
# max_retry_after = 60.0
# "proportional" (+10-30% of the delay) or "full" (AWS Full Jitter).
# jitter = "proportional"

[circuit_breaker]
# enabled = true
# failure_threshold = 5
# recovery_timeout = 60.0
# half_open_max_calls = 3

[rate_limit]
# enabled = true

[telemetry]
# enabled = true

[sessions]
# retention_days = 30

# Commands the model runs are sandboxed (bubblewrap on Linux) without network access.
# true lets them reach it (pip install, git fetch); a project file may not set this.
[tools]
# allow_network = false

# Where rate-limit budgets, circuit breakers and 429 cool-downs live. A provider's
# limits belong to the account (the API key), so every process using it shares them:
#   "local"   a SQLite file in QWEN_DEV_HOME, shared by every process on this machine
#             (two terminals and a script stay within one budget);
#   "memory"  this process only;
#   a URL     "redis://host:6379/0" (or "rediss://" for TLS): one Redis server shared
#             across machines; a password in the URL is never shown.
# If the store fails, answers go on with per-process limits and one warning.
# QWEN_DEV_STATE overrides this setting.
[state]
# store = "local"
"""
