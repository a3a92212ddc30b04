"""``${VAR}`` and ``${VAR:-default}`` in a server's ``env``, ``headers``, ``args`` and
``url``, from the environment, when the server starts (never in the config file, so
``config show`` never prints what a variable holds)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Mapping

_VARIABLE: Final = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand(text: str, env: Mapping[str, str]) -> str:
    """``text`` with each ``${VAR}`` replaced by its value (empty when unset) and each
    ``${VAR:-default}`` by its value, or ``default`` when it is unset or empty."""

    def value(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        found = env.get(name, "")
        if default is not None and not found:
            return default
        return found

    return _VARIABLE.sub(value, text)


def missing(texts: list[str], env: Mapping[str, str]) -> list[str]:
    """The variables ``texts`` use without a default that are not set."""
    names = []
    for text in texts:
        for match in _VARIABLE.finditer(text):
            if match.group(2) is None and match.group(1) not in env and match.group(1) not in names:
                names.append(match.group(1))
    return names


def variables_of(texts: list[str]) -> list[str]:
    """The variables ``texts`` name (``${VAR}``, ``${VAR:-default}``), each once, in order:
    what a server would be given from the user's environment, for the user to see before
    it starts (a file from elsewhere could name any secret)."""
    names: list[str] = []
    for text in texts:
        for match in _VARIABLE.finditer(text):
            if match.group(1) not in names:
                names.append(match.group(1))
    return names
