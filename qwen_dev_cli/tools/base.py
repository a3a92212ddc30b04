"""What a tool is, and the plan a tool call turns into before anything happens.

A tool call runs in two steps. ``Tool.plan(arguments, context)`` validates the
arguments, resolves paths and works out what the call would do, without changing
anything: a :class:`ReadPlan` (safe, run at once), a :class:`WritePlan` (a file's new
content and its diff) or a :class:`CommandPlan` (a shell command, its directory and its
risk). The agent shows write and command plans to the approval policy, and only then
carries them out. Every failure a model can cause is a :class:`ToolError`, whose
message goes back to the model.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from .risk import RiskAssessment
    from .workspace import Workspace

ToolKind = Literal["read", "write", "command", "mcp"]

#: Seconds a command may run unless the call asks for less.
DEFAULT_COMMAND_TIMEOUT = 120.0
#: Characters of command output kept; the middle of longer output is elided.
DEFAULT_OUTPUT_CAP = 30_000


class ToolError(Exception):
    """A tool call that cannot be carried out; the message is for the model."""


@dataclass(frozen=True)
class ToolContext:
    """What tools need to know about where they run.

    Args:
        workspace: the confinement root.
        command_timeout: the default (and largest) timeout of ``run_command``, seconds.
        output_cap: characters of command output kept.
        home: the user's home directory, for risk classification.
        hidden_env: environment variables commands must not see (provider API keys: a
            model could otherwise ``env`` them into the conversation).
        allow_network: whether sandboxed commands may reach the network.
    """

    workspace: Workspace
    command_timeout: float = DEFAULT_COMMAND_TIMEOUT
    output_cap: int = DEFAULT_OUTPUT_CAP
    home: Path = field(default_factory=Path.home)
    hidden_env: frozenset[str] = frozenset()
    allow_network: bool = False


@dataclass(frozen=True)
class ReadPlan:
    """A call that changes nothing: ``run`` produces the model's answer."""

    run: Callable[[], str]


@dataclass(frozen=True)
class WritePlan:
    """A file change, worked out but not applied.

    Args:
        path: the resolved file.
        display: the path relative to the workspace.
        content: the new content.
        existed: whether the file exists now.
        diff: the unified diff from the current content.
        summary: one line for the user, e.g. ``edit src/app.py (+2 -1)``.
        original: the file's bytes when the plan was made (``None``: it did not
            exist). The change is only written while the file still has them: an
            edit made meanwhile (while the diff was shown) is never overwritten.
    """

    path: Path
    display: str
    content: str
    existed: bool
    diff: str
    summary: str
    original: bytes | None


@dataclass(frozen=True)
class CommandPlan:
    """A shell command, classified but not run."""

    command: str
    cwd: Path
    display_cwd: str
    timeout: float
    risk: RiskAssessment


@dataclass(frozen=True)
class McpPlan:
    """A call to a tool of an MCP server: it runs outside the sandbox, in a process (or
    at a URL) the user configured, so it is judged as such, not as a read or a command.

    Args:
        server: the server's name.
        tool: the tool's own name on that server.
        arguments: what the call sends.
        trusted: the user set ``trust = true`` for the server: it runs unasked.
        call: makes the call; returns whether it succeeded and the model's text.
    """

    server: str
    tool: str
    arguments: dict[str, Any]
    trusted: bool
    call: Callable[[], Awaitable[tuple[bool, str]]]


Plan = ReadPlan | WritePlan | CommandPlan | McpPlan


class Arguments:
    """A tool call's arguments with typed, explained access.

    Args:
        values: the decoded JSON arguments.
        tool: the tool's name, for messages.
    """

    def __init__(self, values: Mapping[str, Any], tool: str) -> None:
        self.values = dict(values)
        self.tool = tool

    def _get(self, names: tuple[str, ...]) -> tuple[str, Any]:
        for name in names:
            if name in self.values and self.values[name] is not None:
                return name, self.values[name]
        return names[0], None

    def string(self, *names: str, default: str | None = None, allow_empty: bool = True) -> str:
        """The string argument ``names[0]`` (the other names are accepted aliases)."""
        name, value = self._get(names)
        if value is None:
            if default is not None:
                return default
            raise ToolError(f"{self.tool}: missing required argument {name!r}")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise ToolError(f"{self.tool}: argument {name!r} must be a string")
        if not allow_empty and not value:
            raise ToolError(f"{self.tool}: argument {name!r} must not be empty")
        return value

    def optional_string(self, *names: str) -> str | None:
        _, value = self._get(names)
        return None if value is None else self.string(*names)

    def integer(self, name: str, *, minimum: int | None = None) -> int | None:
        value = self.values.get(name)
        if value is None:
            return None
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise ToolError(f"{self.tool}: argument {name!r} must be an integer")
        if minimum is not None and value < minimum:
            raise ToolError(f"{self.tool}: argument {name!r} must be at least {minimum}")
        return value

    def number(self, name: str) -> float | None:
        value = self.values.get(name)
        if value is None:
            return None
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                value = float(value)
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise ToolError(f"{self.tool}: argument {name!r} must be a number")
        return float(value)

    def boolean(self, name: str, *, default: bool = False) -> bool:
        value = self.values.get(name)
        if value is None:
            return default
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if not isinstance(value, bool):
            raise ToolError(f"{self.tool}: argument {name!r} must be true or false")
        return value


PlanFunction = Callable[[Arguments, ToolContext], Plan]


@dataclass(frozen=True)
class Tool:
    """A tool the model may call.

    Args:
        name: what the model calls it.
        kind: ``read``, ``write``, ``command`` or ``mcp``: what the approval policy sees.
        description: for the model.
        parameters: the JSON schema of its arguments.
        planner: validates arguments and works out the :data:`Plan`.
    """

    name: str
    kind: ToolKind
    description: str
    parameters: dict[str, Any]
    planner: PlanFunction

    def plan(self, arguments: Mapping[str, Any], context: ToolContext) -> Plan:
        return self.planner(Arguments(arguments, self.name), context)

    def spec(self) -> dict[str, Any]:
        """The OpenAI ``tools`` entry."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }


def schema(properties: dict[str, dict[str, Any]], required: list[str]) -> dict[str, Any]:
    """A JSON schema of an object with these properties."""
    return {"type": "object", "properties": properties, "required": required}
