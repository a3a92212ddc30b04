"""Every configured MCP server of a session, and their tools as registry sources.

:class:`McpServers` starts each enabled server in the background, waits for the ones
still starting when the model is first asked (each bounded by its own
``startup_timeout``), says once about each one that failed, and ends them all on exit.
Each server is a :class:`~qwen_dev_cli.tools.registry.ToolSource` of the process's
registry: its tools, named ``mcp__<server>__<tool>``, with provider-safe schemas,
planned as :class:`~qwen_dev_cli.tools.base.McpPlan` so approval judges them as calls
that leave the sandbox.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..tools.base import McpPlan, Tool, ToolError
from .names import ToolNames
from .schemas import SchemaRefused, provider_schema
from .server import McpServer, ServerFailed

if TYPE_CHECKING:
    from pathlib import Path

    from ..config.mcp_servers import McpServerSettings
    from ..tools.base import Arguments, Plan, ToolContext

log = logging.getLogger(__name__)

#: Characters of a server's tool description passed to the model.
MAX_DESCRIPTION = 2_000
#: Characters of every MCP tool's entry (name, description, schema) in one request to
#: the model, all servers together (about 50k tokens): past it, tools are left out.
MAX_TOTAL_SPECS = 200_000


class ToolBudget:
    """Every server's tools, kept within :data:`MAX_TOTAL_SPECS` together.

    Servers are taken in the order they are configured and their tools in the order
    they list them: a tool whose entry would go past the budget is left out (a smaller
    one after it may still fit). Which tools were left out is said once.
    """

    def __init__(self, warn: Callable[[str], None], limit: int = MAX_TOTAL_SPECS) -> None:
        self.warn = warn
        self.limit = limit
        self.sources: list[ServerTools] = []
        self._key: tuple[tuple[int, str, int], ...] | None = None
        self._kept: dict[int, tuple[Tool, ...]] = {}
        self._told: set[str] = set()

    def kept(self, source: ServerTools) -> tuple[Tool, ...]:
        """What ``source`` may offer now."""
        key = tuple((id(s), s.server.state, s.server.generation) for s in self.sources)
        if key != self._key:
            self._key = key
            self._allot()
        return self._kept.get(id(source), ())

    def _allot(self) -> None:
        used = 0
        left_out: list[str] = []
        for source in self.sources:
            kept: list[Tool] = []
            for tool in source.built():
                size = len(json.dumps(tool.spec(), ensure_ascii=False))
                if used + size > self.limit:
                    left_out.append(tool.name)
                    continue
                used += size
                kept.append(tool)
            self._kept[id(source)] = tuple(kept)
        new = [name for name in left_out if name not in self._told]
        if new:
            self._told.update(new)
            shown = ", ".join(new[:10]) + (f" and {len(new) - 10:,} more" if len(new) > 10 else "")
            self.warn(
                f"MCP: {len(new):,} tools left out: with them the tools offered to the model "
                f"would pass {self.limit:,} characters: {shown}"
            )


@dataclass
class ServerTools:
    """One server's tools, as the registry asks for them (none until it is ready)."""

    server: McpServer
    warn: Callable[[str], None]
    #: Shared by the session's servers (``None``: this server's tools unbounded).
    budget: ToolBudget | None = None
    _tools: tuple[Tool, ...] | None = field(default=None, repr=False)
    _generation: int = field(default=-1, repr=False)

    @property
    def name(self) -> str:
        return f"MCP server {self.server.name}"

    def tools(self) -> Sequence[Tool]:
        """What the model is offered of this server's tools now."""
        if self.budget is not None:
            return self.budget.kept(self)
        return self.built()

    def built(self) -> tuple[Tool, ...]:
        """All its tools (none until it is ready), built once per connection."""
        if self.server.state != "ready":
            return ()
        if self._tools is None or self._generation != self.server.generation:
            self._generation = self.server.generation
            self._tools = self._build()
        return self._tools

    def _build(self) -> tuple[Tool, ...]:
        settings = self.server.settings
        names = ToolNames()
        built: list[Tool] = []
        for offered in self.server.tools:
            if not settings.offers(offered.name):
                continue
            try:
                parameters = provider_schema(offered.inputSchema)
            except (SchemaRefused, RecursionError) as exc:
                self.warn(f"MCP server {settings.name}: tool {offered.name[:80]!r} left out: {exc}")
                continue
            name = names.claim(settings.name, offered.name)
            description = (offered.description or offered.title or offered.name)[:MAX_DESCRIPTION]
            built.append(
                Tool(
                    name=name,
                    kind="mcp",
                    description=f"{description}\n(from MCP server {settings.name})",
                    parameters=parameters,
                    planner=_planner(self.server, offered.name),
                )
            )
        return tuple(built)


def _planner(server: McpServer, tool: str) -> Callable[[Arguments, ToolContext], Plan]:
    def plan(arguments: Arguments, context: ToolContext) -> Plan:
        if server.state not in ("ready", "starting"):  # starting: the call waits for it
            raise ToolError(server.unavailable())
        values: dict[str, Any] = dict(arguments.values)

        async def call() -> tuple[bool, str]:
            try:
                result = await server.call(tool, values)
            except ServerFailed as exc:
                return False, str(exc)
            return result.ok, result.text

        return McpPlan(server.name, tool, values, server.settings.trust, call)

    return plan


def _keep_sdk_log_in(path: Path) -> None:
    """The SDK logs what a server did wrong (garbage it sent, with a traceback) at
    warning and error level: into ``path``, never onto the terminal, where Python's
    last-resort handler would print it over the REPL."""
    sdk = logging.getLogger("mcp")
    for handler in list(sdk.handlers):
        if getattr(handler, "_qwen_dev", False):
            if isinstance(handler, logging.FileHandler) and handler.baseFilename == (
                os.path.abspath(path)
            ):
                return
            # Servers of another home in this process (tests do it): theirs now.
            sdk.removeHandler(handler)
            handler.close()
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8", delay=True)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    handler._qwen_dev = True  # type: ignore[attr-defined]  # our mark, to know it again
    sdk.addHandler(handler)
    sdk.propagate = False


class McpServers:
    """The session's servers.

    Args:
        settings: ``[mcp.servers]`` (disabled ones are not started).
        logs: the folder their stderr logs go to.
        env: the environment ``${VAR}`` expands from.
        warn: told once about each server that fails and each tool left out.
        untrusted_env: the environment the servers named in ``untrusted`` (a
            project's ``.mcp.json``) expand from instead: no provider key in it.
    """

    def __init__(
        self,
        settings: Sequence[McpServerSettings],
        logs: Path,
        env: Mapping[str, str],
        warn: Callable[[str], None],
        *,
        untrusted: frozenset[str] = frozenset(),
        untrusted_env: Mapping[str, str] | None = None,
    ) -> None:
        _keep_sdk_log_in(logs / "sdk.log")
        self.settings = tuple(settings)
        self.servers = [
            McpServer(
                s,
                logs / f"{s.name}.log",
                untrusted_env if s.name in untrusted and untrusted_env is not None else env,
            )
            for s in settings
            if s.enabled
        ]
        self.warn = warn
        self._told: set[str] = set()
        self.budget = ToolBudget(warn)
        self._sources = [ServerTools(server, warn, self.budget) for server in self.servers]
        self.budget.sources = self._sources

    @classmethod
    def of(
        cls,
        user: Sequence[McpServerSettings],
        project: Sequence[McpServerSettings],
        logs: Path,
        env: Mapping[str, str],
        warn: Callable[[str], None],
        *,
        hidden: frozenset[str],
    ) -> McpServers:
        """The user's servers and a project's: those of a repository's ``.mcp.json``
        expand ``${VAR}`` from ``env`` without the ``hidden`` variables (the providers'
        keys), which its file could otherwise send to a server of its choosing."""
        return cls(
            (*user, *project),
            logs,
            env,
            warn,
            untrusted=frozenset(server.name for server in project),
            untrusted_env={name: value for name, value in env.items() if name not in hidden},
        )

    def sources(self) -> list[ServerTools]:
        """One registry source per server (the same ones each time)."""
        return list(self._sources)

    def start(self) -> None:
        """Start every server in the background (once: again does nothing)."""
        for server in self.servers:
            server.start()

    def starting(self) -> list[str]:
        """The servers still starting, by name."""
        return [server.name for server in self.servers if server.state == "starting"]

    def counts(self) -> tuple[int, int, bool]:
        """``(ready, started, starting)``: how many servers are ready, how many were
        started (the enabled ones), and whether any is still starting (the status
        bar's ``mcp 2/3``)."""
        ready = sum(server.state == "ready" for server in self.servers)
        return ready, len(self.servers), bool(self.starting())

    async def wait_ready(self, warn: Callable[[str], None] | None = None) -> None:
        """Until every server is ready or failed; each failure said once (through
        ``warn``, default the one given at construction); starts any not started."""
        self.start()
        await asyncio.gather(*(server.wait_ready() for server in self.servers))
        self.tell_failures(warn)

    def tell_failures(self, warn: Callable[[str], None] | None = None) -> None:
        """Say each failed server not said before."""
        for server in self.servers:
            if server.state == "failed" and server.name not in self._told:
                self._told.add(server.name)
                where = (
                    f"; its stderr is in {server.log_path}"
                    if server.settings.kind == "stdio"
                    else ""
                )
                (warn or self.warn)(f"MCP server {server.name} failed: {server.error}{where}")

    def find(self, name: str) -> McpServer | None:
        """The started server of that name."""
        return next((server for server in self.servers if server.name == name), None)

    async def reconnect(self, name: str) -> McpServer:
        """Stop the server ``name`` and start it again; returns it once it is ready or
        has failed (said through :meth:`tell_failures` like any failure). Raises
        ``KeyError`` for a name not started."""
        server = self.find(name)
        if server is None:
            raise KeyError(name)
        await server.restart()
        self._told.discard(name)
        await server.wait_ready()
        return server

    async def aclose(self) -> None:
        """End every server (their process groups too)."""
        await asyncio.gather(*(server.stop() for server in self.servers))

    def report_of(self, name: str) -> dict[str, Any]:
        """One server's row of :meth:`report`."""
        return next(row for row in self.report() if row["name"] == name)

    def report(self) -> list[dict[str, Any]]:
        """Each server as ``qwen-dev mcp list --json`` shows it: its state, its error,
        the tools offered to the model (by the names the model sees)."""
        running = {source.server.name: source for source in self._sources}
        rows: list[dict[str, Any]] = []
        for settings in self.settings:
            source = running.get(settings.name)
            server = None if source is None else source.server
            offered = () if source is None else source.tools()
            rows.append(
                {
                    "name": settings.name,
                    "transport": settings.kind,
                    "state": "disabled" if server is None else server.state,
                    "error": None if server is None else server.error,
                    "trust": settings.trust,
                    "startup_ms": None
                    if server is None or server.startup_seconds is None
                    else round(server.startup_seconds * 1000),
                    "log": str(server.log_path)
                    if server is not None and settings.kind == "stdio"
                    else None,
                    "tools": [tool.name for tool in offered],
                    # An HTTP server's circuit breaker (None: stdio, or not started).
                    "breaker": server.breaker.report()
                    if server is not None and settings.kind != "stdio"
                    else None,
                }
            )
        return rows
