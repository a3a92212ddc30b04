"""Where the tools offered to the model come from: one registry, fed by sources.

The built-in tools are the first source. Tools from elsewhere (MCP servers, issue 19)
enter as further sources of the same registry and nowhere else, so the agent, the
system prompt, ``/tools`` and approval all see one list.

A name is never silently taken over: the first source to offer a name keeps it, and a
later tool of the same name is left out and reported once through ``warn`` (a server
offering ``run_command`` must not replace the sandboxed one).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from .base import Tool

if TYPE_CHECKING:
    from .rules import ToolRules


class ToolSource(Protocol):
    """A provider of tools; asked each time the tool list is read (a source whose tools
    arrive later, such as a server still starting, simply offers more next time)."""

    @property
    def name(self) -> str: ...

    def tools(self) -> Sequence[Tool]: ...


@dataclass(frozen=True)
class StaticTools:
    """A fixed set of tools (the built-in ones)."""

    name: str
    offered: tuple[Tool, ...]

    def tools(self) -> Sequence[Tool]:
        return self.offered


def builtin_tools() -> StaticTools:
    """The tools ``qwen-dev`` ships: files, search and commands."""
    from . import DEFAULT_TOOLS

    return StaticTools("built-in", DEFAULT_TOOLS)


@dataclass
class ToolRegistry:
    """The tools of one process, from its sources in order.

    Args:
        sources: where tools come from; earlier sources win a name.
        warn: told once about each tool left out for its name.
    """

    sources: list[ToolSource] = field(default_factory=lambda: [builtin_tools()])
    warn: Callable[[str], None] | None = None
    _told: set[tuple[str, str]] = field(default_factory=set, repr=False)

    def add(self, source: ToolSource) -> None:
        """One more source, after the existing ones."""
        self.sources.append(source)

    def tools(self) -> tuple[Tool, ...]:
        """Every tool now offered, in source order, one per name."""
        chosen: dict[str, Tool] = {}
        owner: dict[str, str] = {}
        for source in self.sources:
            for tool in source.tools():
                if tool.name not in chosen:
                    chosen[tool.name] = tool
                    owner[tool.name] = source.name
                elif chosen[tool.name] is not tool:
                    self._tell(source.name, tool.name, owner[tool.name])
        return tuple(chosen.values())

    def offered(self, rules: ToolRules) -> tuple[Tool, ...]:
        """:meth:`tools` as ``--allowedTools``/``--disallowedTools`` leave them
        (:meth:`~qwen_dev_cli.tools.rules.ToolRules.offered`)."""
        return rules.offered(self.tools())

    def _tell(self, source: str, name: str, kept: str) -> None:
        if self.warn is None or (source, name) in self._told:
            return
        self._told.add((source, name))
        self.warn(f"{source}: tool {name!r} is left out: {kept} already offers a tool of that name")
