"""The commented starter file ``qwen-dev config init`` writes.

Prose is written here; every ``# key = value`` line, its default and its comment come
from the schema and the presets, so the file shows the real defaults, and uncommenting
any line changes nothing.
"""

from __future__ import annotations

import dataclasses
import textwrap
from typing import TYPE_CHECKING, Final

from .layers import defaults_layer
from .paths import ENV_APPROVAL, ENV_MODEL, ENV_PROVIDER, PROJECT_CONFIG_NAME
from .presets import DEFAULT_PROVIDER_ORDER, PRESET_NOTES, PRESETS
from .resolved import APPROVAL_MODES
from .schema import PROVIDER_KEYS, SECTIONS, Key, env_overrides

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

_WIDTH: Final = 88

#: Prose above a table, beyond its keys' own comments.
_SECTION_NOTES: Final[Mapping[str, str]] = {
    "retry": "Delay before retry n is min(base_delay * 2**n, max_delay) plus jitter.",
    "tools": "Commands the model runs are sandboxed (bubblewrap on Linux) without network access.",
    "state": """\
Where rate-limit budgets, circuit breakers and 429 cool-downs live. A provider's
limits belong to the account (the API key), so every process using it shares them:
  "local"   a SQLite file in QWEN_DEV_HOME, shared by every process on this machine
            (two terminals and a script stay within one budget);
  "memory"  this process only;
  a URL     "redis://host:6379/0" (or "rediss://" for TLS): one Redis server shared
            across machines; a password in the URL is never shown.
If the store fails, answers go on with per-process limits and one warning.""",
}

#: An example of a provider of one's own; checked against the schema by the tests.
CUSTOM_PROVIDER_EXAMPLE: Final = """\
[providers.mylab]
base_url = "http://127.0.0.1:8000/v1"
model = "qwen2.5-coder"
api_key_env = "MYLAB_API_KEY"    # optional"""


def starter_config() -> str:
    """The whole starter file."""
    blocks = [_header(), _top_level(), _providers(), *_sections()]
    return "\n\n".join("\n".join(block) for block in blocks) + "\n"


def _header() -> list[str]:
    variables = [ENV_PROVIDER, ENV_MODEL, ENV_APPROVAL]
    variables += [str(key.setting.env) for _, key in env_overrides()]
    provider_keys = [name for name, key in PROVIDER_KEYS.items() if key.setting.project]
    section_keys = [
        f"[{section}] {name}"
        for section, keys in SECTIONS.items()
        for name, key in keys.items()
        if key.setting.project
    ]
    return _comment(
        "qwen-dev configuration (TOML).\n\n"
        "Precedence, low to high: built-in defaults < this file < a project's "
        f"{PROJECT_CONFIG_NAME}\n< environment ({', '.join(variables)})\n< flags.\n"
        "Each commented `key = value` line shows the built-in default: uncomment to "
        f"change it.\nA project's {PROJECT_CONFIG_NAME} may not set the "
        f"{_either(provider_keys, 'or')} of a provider, nor {_either(section_keys, 'or')}, "
        "nor raise approval."
    )


def _top_level() -> list[str]:
    modes = " | ".join(f'"{mode}"' for mode in APPROVAL_MODES)
    return [
        *_comment(
            "Failover priority. A provider whose API key variable is not set is skipped.\n"
            "When this is not set, providers you define below come first, in file order."
        ),
        _line("provider_order", DEFAULT_PROVIDER_ORDER),
        "",
        *_comment(f"What tool calls may do without asking: {modes}."),
        _line("approval", defaults_layer().approval),
    ]


def _providers() -> list[str]:
    first, *others = PRESETS
    unset = [key for name, key in PROVIDER_KEYS.items() if _shows_no_default(key, first)]
    lines = _comment(
        "Built-in presets: you only need to export the key. A [providers.NAME] table "
        "merges key by key over the preset; the first one shows every key that has a "
        "value.\n"
        "API keys never go in this file: api_key_env names the variable that holds one.\n"
        "Unset unless you set them:"
    )
    lines += _comment("\n".join(f"  {key.name}: {key.setting.doc}" for key in unset))
    lines += ["", f"[providers.{first}]"]
    shown = {**PRESETS[first]}
    shown.update({k: key.default for k, key in PROVIDER_KEYS.items() if _has_value(key)})
    for name, value in shown.items():
        lines += [*_key_doc(PROVIDER_KEYS[name]), _line(name, value)]
    for preset in others:
        note = PRESET_NOTES.get(preset, "")
        if preset not in DEFAULT_PROVIDER_ORDER:
            note += (
                f"Not in the default order; add it to provider_order or pass --provider {preset}."
            )
        lines += ["", *_comment(note), f"[providers.{preset}]"]
        lines += [_line(name, value) for name, value in PRESETS[preset].items()]
    example = "\n".join(f"  {line}" for line in CUSTOM_PROVIDER_EXAMPLE.splitlines())
    return [*lines, "", *_comment(f"Any OpenAI-compatible endpoint, for example:\n{example}")]


def _sections() -> list[list[str]]:
    blocks: list[list[str]] = []
    for section, keys in SECTIONS.items():
        lines = [*_comment(_SECTION_NOTES.get(section, "")), f"[{section}]"]
        for name, key in keys.items():
            lines += [*_key_doc(key), _line(name, key.default)]
        blocks.append(lines)
    return blocks


def _has_value(key: Key) -> bool:
    return key.default is not None and not _missing(key)


def _shows_no_default(key: Key, preset: str) -> bool:
    return key.default is None and key.name not in PRESETS[preset]


def _missing(key: Key) -> bool:
    return key.default is dataclasses.MISSING


def _key_doc(key: Key) -> list[str]:
    doc = key.setting.doc
    if not doc:
        return []
    text = doc[0].upper() + doc[1:] + ("" if doc.endswith(".") else ".")
    if key.setting.env:
        text += f" {key.setting.env} overrides it."
    return _comment(text)


def _line(key: str, value: object) -> str:
    return f"# {key} = {_toml(value)}"


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    raise TypeError(f"no TOML form for {value!r}")


def _comment(text: str) -> list[str]:
    """``# ``-prefixed lines; a line too long is wrapped (an indented one with a hanging
    indent), a short one kept as written."""
    lines: list[str] = []
    for line in text.split("\n") if text else []:
        if len(line) <= _WIDTH - 2:
            lines.append(f"# {line}".rstrip())
            continue
        indent = " " * (len(line) - len(line.lstrip()))
        hang = indent + "  " if indent else ""
        lines += [f"# {part}" for part in textwrap.wrap(line, _WIDTH - 2, subsequent_indent=hang)]
    return lines


def _either(words: Iterable[str], conjunction: str) -> str:
    """``a, b or c``."""
    *rest, last = words
    return f"{', '.join(rest)} {conjunction} {last}" if rest else last


STARTER_CONFIG: Final = starter_config()
