"""What one ``qwen-dev`` process runs on, and what it builds: made once by the
composition root (:mod:`qwen_dev_cli.cli`) and handed to the REPL, ``ask``, ``batch``
and ``doctor``, the way HTTPie's ``main(args, env=Environment())`` hands its
environment down.

- :class:`Runtime` holds the resolved settings (and the flags and file they came from,
  to resolve them again for ``/model``), the workspace, the home, the state store every
  client of the process shares, and the tool registry.
- It builds what the front ends use: clients (:meth:`Runtime.open_client`, with the
  start-up notices, the no-provider error, the metrics log and the close), and agents
  (:meth:`Runtime.agent`, with the hidden environment, the private files, the network
  rule, the context window and the tools all derived from the settings). A new setting
  that reaches the agent is one edit here, not one per front end.

Nothing here is imported at start-up beyond this module: the client, the agent and the
stores are imported when first built, so ``--help`` pays nothing for them.
"""

from __future__ import annotations

import dataclasses
import functools
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .config import Overrides
from .config.home import Home

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from .agent import Agent
    from .agent.context import ContextLedger
    from .agent.turn import Approver
    from .config import Settings
    from .config.mcp_servers import McpServerSettings
    from .core import LLMClient
    from .core.state import ProviderStateStore
    from .mcp import McpServers
    from .mcp.project import ProjectServers
    from .tools import ChangeLog
    from .tools.registry import ToolRegistry
    from .tools.rules import ToolRules


def _builtin_registry() -> ToolRegistry:
    # Imported here: the tools package (and its shell parser) is not start-up's business.
    from .tools.registry import ToolRegistry

    return ToolRegistry()


@dataclass(frozen=True)
class Runtime:
    """The process's settings, workspace, home, state store and tools.

    Args:
        settings: the resolved configuration.
        state: where budgets, breakers and cool-downs live (docs/architecture.md
            section 8); the composition root opens and closes it. ``None``: each client
            keeps its own.
        workspace: the folder tools are confined to, ``@`` paths resolve in and
            sessions belong to.
        config_path: ``--config``, to resolve the settings again (``/model``).
        overrides: the command-line flags the settings were resolved with.
        tools: the tool registry (built-in tools; later sources add to it).
        rules: ``--allowedTools``/``--disallowedTools``: which tools the agent is
            offered, and which run unasked (:mod:`qwen_dev_cli.tools.rules`).
        mcp: the user's MCP servers while :meth:`mcp_servers` runs them (``None``: none
            configured, or not started).
    """

    settings: Settings
    state: ProviderStateStore | None = None
    workspace: Path = field(default_factory=Path.cwd)
    config_path: Path | None = None
    overrides: Overrides = field(default_factory=Overrides)
    tools: ToolRegistry = field(default_factory=_builtin_registry)
    rules: ToolRules | None = None
    mcp: McpServers | None = None

    @property
    def home(self) -> Home:
        return Home(self.settings.home)

    def reconfigured(
        self, *, providers: tuple[str, ...] | None = None, model: str | None = None
    ) -> Runtime:
        """The settings resolved again with other providers (``/provider``) or another
        model (``/model``) in place of the flags'; raises
        :class:`~qwen_dev_cli.config.ConfigError` as loading does."""
        from .config import load_settings

        if providers is not None:
            overrides = dataclasses.replace(self.overrides, providers=providers, model=None)
        else:
            overrides = dataclasses.replace(self.overrides, model=model)
        settings = load_settings(self.config_path, overrides=overrides)
        return dataclasses.replace(self, settings=settings, overrides=overrides)

    # --- clients ------------------------------------------------------------------------

    def client(self) -> LLMClient:
        """A client of these settings, sharing the process's state store. Raises the
        no-provider error naming each provider skipped and why."""
        from .core import LLMClient
        from .core.errors import NoProviderConfigured
        from .otel import attach
        from .ui.notices import no_provider_error

        try:
            client = LLMClient.from_settings(self.settings, state=self.state)
        except NoProviderConfigured as exc:
            raise no_provider_error(self.settings) from exc
        attach(client, self.settings)  # OpenTelemetry export, when an endpoint is set
        return client

    def notices(self, *, verbose: bool, daily: bool = True) -> list[str]:
        """What to tell the user at start: the offline notice (once a day when
        ``daily``), and with ``verbose`` (a person is reading) the per-provider notes."""
        from .ui.notices import NoticeLog, startup_notices

        log = NoticeLog(self.home.notices) if daily else None
        return startup_notices(self.settings, verbose=verbose, daily=log)

    async def retire(self, client: LLMClient) -> None:
        """A client's end: its telemetry added to the metrics log, then closed."""
        try:
            self.home.metrics_log().append(client.get_metrics())
        finally:
            await client.aclose()

    @asynccontextmanager
    async def open_client(
        self, say: Callable[[str], None], *, verbose: bool
    ) -> AsyncIterator[LLMClient]:
        """The client of a one-shot front end (``ask``, ``batch``): the start-up notices
        said through ``say``, then the client, retired on the way out. Building it
        raises :class:`~qwen_dev_cli.core.LLMError` before anything is yielded."""
        for note in self.notices(verbose=verbose):
            say(note)
        client = self.client()
        try:
            yield client
        finally:
            await self.retire(client)

    # --- MCP servers -----------------------------------------------------------------

    @asynccontextmanager
    async def mcp_servers(
        self,
        warn: Callable[[str], None],
        *,
        wait: bool = True,
        project: Callable[[ProjectServers], Awaitable[bool | None]] | bool = False,
    ) -> AsyncIterator[Runtime]:
        """The user's MCP servers for the length of the block: started in the
        background, their tools added to the registry, and ended (process groups
        included) on the way out. Yields this runtime with :attr:`mcp` set.

        Args:
            warn: told once about each server that fails (the block goes on without it).
            wait: start every server and wait for it (each up to its
                ``startup_timeout``) before the block begins, so the first request to
                the model offers their tools (``ask``, ``batch``); ``False``: the block
                starts them when it is ready to (:meth:`McpServers.start`: the REPL once
                its prompt is drawn, ``doctor`` alongside its probes) and waits when it
                needs them (:meth:`McpServers.wait_ready`, which starts them too).
            project: the workspace's ``.mcp.json``: ``True`` starts its servers
                (``--trust-project-mcp``), ``False`` none; a callable asks the user
                about that exact file (the REPL; see :mod:`qwen_dev_cli.mcp.project`).
        """
        configured = self.settings.mcp_servers
        extra: tuple[McpServerSettings, ...] = ()
        if (self.workspace / ".mcp.json").exists():
            from .mcp.project import project_servers

            names = [server.name for server in configured]
            extra = tuple(
                await project_servers(
                    self.workspace, self.home.mcp_trust, names, approve=project, warn=warn
                )
            )
            configured = (*configured, *extra)
        if not any(server.enabled for server in configured):
            yield self
            return
        import os

        from .mcp import McpServers

        servers = McpServers.of(
            self.settings.mcp_servers,
            extra,
            self.home.mcp_logs,
            os.environ,
            warn,
            hidden=self.settings.secret_env_names,
        )
        for source in servers.sources():
            self.tools.add(source)
        try:
            if wait:
                await servers.wait_ready()
            yield dataclasses.replace(self, mcp=servers)
        finally:
            await servers.aclose()

    # --- agents -------------------------------------------------------------------------

    @functools.cached_property
    def _linked_private(self) -> tuple[Path, ...]:
        """Where the credential stores that are links lead, remembered across sessions
        (:func:`~qwen_dev_cli.tools.private.linked_places`); once a process."""
        from .tools.private import linked_places, private_places

        places = private_places(Path.home(), self.settings.own_files)
        return linked_places(places, self.home.private_links)

    def agent(
        self,
        client: LLMClient,
        approver: Approver,
        *,
        interactive: bool,
        approval: str | None = None,
        max_steps: int | None = None,
        changes: ChangeLog | None = None,
        remembered: set[str] | None = None,
        ledger: ContextLedger | None = None,
        system_prompt: str | None = None,
        append_system_prompt: str | None = None,
        read_only: bool = False,
        before_command: Callable[[str], Awaitable[None]] | None = None,
    ) -> Agent:
        """The agent for one turn over ``client``, everything else derived from the
        settings (the context window from the client's providers).

        Args:
            approver: the REPL's dialog, or :class:`~qwen_dev_cli.agent.turn.DenyAll`.
            interactive: whether a terminal can answer approval questions.
            approval: the mode now (the REPL's ``/approval``); default the settings'.
            max_steps: model calls the turn may make (``--max-steps``); default the
                agent's.
            changes, remembered, ledger: what outlives a turn in a conversation (file
                changes for ``/undo``, commands approved "always", token accounting);
                the agent keeps its own when ``None``.
            system_prompt, append_system_prompt: ``--system-prompt`` (in place of our
                identity and rules) and ``--append-system-prompt`` (added at the end).
            read_only: ``--permission-mode plan``: only the tools that read, and the
                model told to plan.
            before_command: awaited with each approved command before it runs (the
                REPL's checkpoint of the workspace).
        """
        from .agent.agent import DEFAULT_MAX_STEPS, Agent
        from .agent.approval import parse_approval_mode
        from .agent.prompt import PromptFlags

        settings = self.settings
        mode = parse_approval_mode(approval or settings.approval)
        rules = self.rules
        if rules:
            # The only place tools are left out or allowed unasked (issue 20).
            tools = self.tools.offered(rules)
            if rules.allows_edits() and mode == "ask":
                mode = "auto-edit"  # what "always" on an edit switches to
            remembered = rules.commands(remembered)
        else:
            tools = self.tools.tools()
        if read_only:
            tools = tuple(tool for tool in tools if tool.kind == "read")
        flags = PromptFlags(system_prompt or None, append_system_prompt or None, read_only)
        return Agent(
            client,
            workspace=self.workspace,
            approval=mode,
            approver=approver,
            interactive=interactive,
            max_steps=max_steps or DEFAULT_MAX_STEPS,
            changes=changes,
            tools=tools,
            hidden_env=settings.secret_env_names,
            secrets=settings.secret_values,
            own_files=(*settings.own_files, *self._linked_private),
            allow_network=settings.allow_network,
            remembered=remembered,
            ledger=ledger,
            prompt_flags=flags,
            before_command=before_command,
        )
