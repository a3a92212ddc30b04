"""The one configuration error, and how every message names what is at fault.

Each problem is a :class:`ConfigError` whose message starts with the file, variable or
flag (``source``) and the dotted key, then says what was expected and what was found::

    /home/me/.config/qwen-dev/config.toml: retry.base_delay: expected a number greater
    than 0 and at most 3600, got 0

A :class:`Where` travels with each value from the layer that set it to the check that
refuses it, so the message can name the layer even when the mistake shows only after
merging (``retry.max_delay`` below a ``base_delay`` set in another file).
"""

from __future__ import annotations

from dataclasses import dataclass


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
class Where:
    """Where a value came from (file, variable or flag) and its dotted key."""

    source: str
    key: str

    def child(self, key: str) -> Where:
        return Where(self.source, f"{self.key}.{key}" if self.key else key)

    def error(self, problem: str) -> ConfigError:
        prefix = f"{self.source}: {self.key}" if self.key else self.source
        return ConfigError(f"{prefix}: {problem}", source=self.source, key=self.key or None)

    def wrong_type(self, expected: str, value: object) -> ConfigError:
        return self.error(f"expected {expected}, got {describe(value)}")

    def out_of_range(self, expected: str, value: object) -> ConfigError:
        return self.error(f"expected {expected}, got {value!r}")


def describe(value: object) -> str:
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
