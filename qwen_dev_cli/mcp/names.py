"""What the model calls a server's tool: ``mcp__<server>__<tool>``.

Providers accept names of ``[A-Za-z0-9_-]``, at most 64 characters; anything else in a
server's tool name becomes ``_``, and a longer name is cut and ends with a short hash of
the whole, so two long names differing only at the end stay two names. Two tools that
still end up with one name are never merged: :class:`ToolNames` gives the second a
hashed name of its own.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Final

MAX_NAME: Final = 64
PREFIX: Final = "mcp__"
_OUTSIDE: Final = re.compile(r"[^A-Za-z0-9_-]")
_HASH: Final = 8


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH]


def model_name(server: str, tool: str) -> str:
    """The name the model sees for ``tool`` of ``server``."""
    whole = f"{PREFIX}{server}__{tool}"
    name = _OUTSIDE.sub("_", whole)
    if len(name) <= MAX_NAME:
        return name
    return f"{name[: MAX_NAME - _HASH - 1]}_{_hash(whole)}"


@dataclass
class ToolNames:
    """Names handed out to one server's tools, each once."""

    taken: set[str] = field(default_factory=set)

    def claim(self, server: str, tool: str) -> str:
        name = model_name(server, tool)
        if name in self.taken:
            # Another tool sanitised to the same name: this one is told apart by its hash.
            stem = name[: MAX_NAME - _HASH - 1]
            name = f"{stem}_{_hash(f'{server}/{tool}')}"
        self.taken.add(name)
        return name
