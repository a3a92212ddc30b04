"""``[mcp.servers.NAME]``: one Model Context Protocol server the user runs tools from
(docs/architecture.md section 11).

Each key is declared once on :class:`McpServerSettings`, like a provider's keys; what
one key cannot say alone (a server is either a command or a URL) is checked by
:func:`build_server`. Values are kept as written: ``${VAR}`` and ``${VAR:-default}`` are
expanded when the server is started (:mod:`qwen_dev_cli.mcp.expand`), so ``config show``
never prints what a variable holds.

Only the user's own file may define servers: a server is a command qwen-dev runs, and a
cloned repository's ``.qwen-dev.toml`` must not be able to run one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, Literal

from qwen_dev_cli.core.declarations import (
    BOOLEAN,
    STRING_TABLE,
    STRINGS,
    TEXT,
    choice,
    number,
    setting,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from .errors import Where

McpTransport = Literal["stdio", "http", "sse"]

#: A server's name becomes part of its tools' names (``mcp__NAME__tool``).
SERVER_NAME_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")
DEFAULT_STARTUP_TIMEOUT: Final = 30.0
DEFAULT_CALL_TIMEOUT: Final = 120.0

_NO_PROJECT = "a server is a command qwen-dev runs; a cloned repository must not start one"


def _empty() -> Mapping[str, str]:
    return MappingProxyType({})


@dataclass(frozen=True)
class McpServerSettings:
    """One server of ``[mcp.servers]``.

    Args:
        name: its table's key; its tools are ``mcp__NAME__TOOL``.
        command, args, env, cwd: a stdio server: the program, its arguments, the
            variables it gets besides PATH, HOME, LANG and TERM, its folder.
        url, headers: an HTTP server and the headers sent to it.
        transport: ``stdio`` (a command), ``http`` (streamable HTTP, the default for a
            URL) or ``sse`` (servers of the older protocol).
    """

    name: str
    command: str | None = field(
        default=None, metadata=setting(TEXT, doc="the program of a stdio server")
    )
    args: tuple[str, ...] = field(default=(), metadata=setting(STRINGS, doc="its arguments"))
    env: Mapping[str, str] = field(
        default_factory=_empty,
        metadata=setting(
            STRING_TABLE,
            doc="variables it gets besides PATH, HOME, LANG, TERM; ${VAR} expands",
            shown="secret",
        ),
    )
    cwd: str | None = field(default=None, metadata=setting(TEXT, doc="the folder it runs in"))
    url: str | None = field(
        default=None, metadata=setting(TEXT, doc="the endpoint of an HTTP server")
    )
    headers: Mapping[str, str] = field(
        default_factory=_empty,
        metadata=setting(
            STRING_TABLE, doc="headers sent to an HTTP server; ${VAR} expands", shown="secret"
        ),
    )
    transport: McpTransport | None = field(
        default=None,
        metadata=setting(
            choice(McpTransport), doc='"http" (streamable, the default for a url) or "sse"'
        ),
    )
    startup_timeout: float = field(
        default=DEFAULT_STARTUP_TIMEOUT,
        metadata=setting(
            number(above=0, at_most=600), doc="seconds it may take to start and list its tools"
        ),
    )
    timeout: float = field(
        default=DEFAULT_CALL_TIMEOUT,
        metadata=setting(number(above=0, at_most=86_400), doc="seconds one tool call may take"),
    )
    include_tools: tuple[str, ...] = field(
        default=(), metadata=setting(STRINGS, doc="offer only these of its tools")
    )
    exclude_tools: tuple[str, ...] = field(
        default=(), metadata=setting(STRINGS, doc="never offer these (wins over include_tools)")
    )
    trust: bool = field(
        default=False,
        metadata=setting(BOOLEAN, doc="run its tools without asking", project=_NO_PROJECT),
    )
    enabled: bool = field(default=True, metadata=setting(BOOLEAN, doc="start it"))

    @property
    def kind(self) -> McpTransport:
        """How qwen-dev talks to it."""
        if self.command is not None:
            return "stdio"
        return self.transport or "http"

    def offers(self, tool: str) -> bool:
        """Whether the server's tool ``tool`` is offered to the model."""
        if tool in self.exclude_tools:
            return False
        return not self.include_tools or tool in self.include_tools


def server_name(value: object, where: Where) -> str:
    """A server's table key, checked."""
    from .errors import describe

    if not isinstance(value, str) or not SERVER_NAME_RE.match(value):
        raise where.error(
            "expected a server name of at most 32 letters, digits, '-' and '_' "
            f"(starting with a letter or digit), got {describe(value)}"
        )
    return value


def build_server(name: str, values: Mapping[str, Any], where: Where) -> McpServerSettings:
    """The server from its checked keys, or the error naming what is missing or at odds."""
    command, url = values.get("command"), values.get("url")
    if command is None and url is None:
        raise where.error("expected either command (a stdio server) or url (an HTTP server)")
    if command is not None and url is not None:
        raise where.error("expected either command or url, not both")
    stdio_only = [key for key in ("args", "env", "cwd") if key in values]
    if url is not None and stdio_only:
        raise where.child(stdio_only[0]).error("only a stdio server (command) takes this key")
    if command is not None and "headers" in values:
        raise where.child("headers").error("only an HTTP server (url) takes this key")
    transport = values.get("transport")
    if command is not None and transport not in (None, "stdio"):
        raise where.child("transport").error('a command\'s transport is "stdio"')
    if url is not None and transport == "stdio":
        raise where.child("transport").error('a url\'s transport is "http" or "sse"')
    kept = {k: v for k, v in values.items() if k not in ("env", "headers")}
    return McpServerSettings(
        name,
        env=MappingProxyType(dict(values.get("env", {}))),
        headers=MappingProxyType(dict(values.get("headers", {}))),
        **kept,
    )
