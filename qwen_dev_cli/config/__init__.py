"""Configuration: TOML files, environment and command-line flags -> frozen settings.

Precedence, low to high (docs/architecture.md section 3)::

    built-in defaults < user config < project .qwen-dev.toml < environment < flags

The project file is restricted: it may not set ``base_url``, ``api_key_env``, ``kind``
or ``model_path`` of any provider, nor ``[state] store``, ``[tools] allow_network`` or
``[sessions] retention_days`` (each field declares it), nor raise ``approval`` above the
user-level value, so a cloned repository cannot send your keys (or your accounts' state)
elsewhere, load its own model file into the process, or loosen what tool calls may do.

Every problem with the input is a :class:`ConfigError` whose message names the file (or
variable, or flag), the dotted key and what was expected. API keys are only read from
environment variables; they never appear in notices, errors or :func:`redacted`.

The modules behind this surface, one concept each::

    schema    each key declared once, on its dataclass field; checks, defaults,
              project restrictions and `config show` derived from the fields
    checks    the validators a declaration turns into
    layers    defaults, presets, user file, project file, environment, flags
    resolve   the layers merged with provenance, built into Settings
    presets   the built-in providers
    starter   the commented file `config init` writes
    show      `config show`: settings with secrets hidden
    paths, settings, errors   what the CLI imports at start-up

This package is imported at CLI start-up (``--help`` included), so only ``errors``,
``settings`` and ``paths`` are imported with it; :func:`load_settings` and
:func:`redacted` import the rest when first called.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._lazy import lazy_getattr
from .errors import ConfigError
from .paths import PROJECT_CONFIG_NAME, data_dir, find_project_config, user_config_path
from .resolved import APPROVAL_MODES, Approval, Overrides, Settings

if TYPE_CHECKING:
    from collections.abc import Mapping

    from .presets import DEFAULT_PROVIDER_ORDER, PRESETS
    from .starter import STARTER_CONFIG

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
    "find_project_config",
    "load_settings",
    "redacted",
    "user_config_path",
]

__getattr__ = lazy_getattr(
    __name__,
    {
        "DEFAULT_PROVIDER_ORDER": ".presets",
        "PRESETS": ".presets",
        "STARTER_CONFIG": ".starter",
    },
    globals(),
)


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
    from .resolve import resolve

    return resolve(
        path,
        overrides=Overrides() if overrides is None else overrides,
        env=os.environ if env is None else env,
        cwd=Path.cwd() if cwd is None else cwd,
    )


def redacted(settings: Settings) -> dict[str, Any]:
    """A JSON-able view for ``qwen-dev config show``: API keys appear as ``"***"``."""
    from .show import redacted_view

    return redacted_view(settings)
