"""Slash commands: what the user can ask of the REPL itself rather than of the model.

Each command has a one-line help (shown by ``/help`` and as the completion hint) and,
where its argument has a known set of values, those values for completion. An
unknown command gets the closest known one suggested.
"""

from __future__ import annotations

import difflib
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from rich.table import Table
from rich.text import Text

from ..config import APPROVAL_MODES
from ..core.providers.kinds import kind_of
from ..plurals import plural
from ..session.store import SessionError
from ..tools import ToolError
from .memory import INIT_PROMPT, NOTES_FILE, add_note, show_notes
from .metrics_table import metrics_renderable
from .safe_text import printable
from .statusbar import status_table, store_line
from .symbols import symbols_for

if TYPE_CHECKING:
    from pathlib import Path

    from rich.console import Console

    from ..agent.context import ContextReport
    from ..config import Settings
    from ..core.settings import ProviderSettings
    from ..core.status import ClientStatus
    from ..mcp import McpServers
    from ..tools import ChangeLog, UndoPlan
    from .conversation import Conversation

_INVOCATION = re.compile(r"^/([A-Za-z][\w-]*)(?:\s+(.*))?$", re.DOTALL)


class Confirmer(Protocol):
    """Asks the user a yes/no question about a diff (the REPL's approval dialog)."""

    async def confirm(self, title: str, diff: str, question: str) -> bool: ...


@dataclass(frozen=True)
class ToolOutput:
    """What one tool call returned, kept for ``/output``."""

    name: str
    arguments: dict[str, Any]
    status: str
    output: str


class Shell(Protocol):
    """What slash commands may see and do of the REPL."""

    console: Console
    conversation: Conversation
    changes: ChangeLog
    #: Commands approved "always" this session (clearing it makes them ask again).
    always_allowed: set[str]
    #: The latest tool call's output, in full.
    last_output: ToolOutput | None

    @property
    def approver(self) -> Confirmer: ...

    @property
    def settings(self) -> Settings: ...

    @property
    def approval(self) -> str: ...

    def client_status(self) -> ClientStatus: ...

    def metrics(self) -> dict[str, Any]: ...

    async def reconfigure(
        self, *, providers: tuple[str, ...] | None = None, model: str | None = None
    ) -> None: ...

    def set_approval(self, mode: str) -> None: ...

    def show_resumed(self) -> None: ...

    async def compact(self, focus: str | None) -> None: ...

    async def rewind(self) -> None: ...

    def context_report(self) -> ContextReport | None: ...

    def new_conversation(self) -> None:
        """Close the conversation (``/new``): the next message starts one from zero."""
        ...

    @property
    def workspace(self) -> Path:
        """The folder the tools are confined to (``/memory``, ``/init``)."""
        ...

    async def ask(self, text: str) -> None:
        """Send ``text`` to the model as the user's message (``/init``)."""
        ...

    @property
    def mcp(self) -> McpServers | None:
        """The session's MCP servers (``None``: none started)."""
        ...

    def tool_listing(self) -> list[tuple[str, str]]:
        """Every tool the model may call now, with where it comes from."""
        ...

    def leave(self) -> None: ...


Handler = Callable[[Shell, str], Awaitable[None]]


@dataclass(frozen=True)
class SlashCommand:
    name: str
    help: str
    run: Handler
    #: The argument's placeholder in ``/help`` (``NAME``), ``None`` for no argument.
    argument: str | None = None
    #: The values the argument may take, for completion.
    choices: Callable[[Shell], list[str]] | None = None

    @property
    def usage(self) -> str:
        return f"/{self.name}" + (f" {self.argument}" if self.argument else "")


def is_command(line: str) -> bool:
    """Whether a line is a slash command (``/etc/hosts is odd`` is a message)."""
    return _INVOCATION.match(line.strip()) is not None


class SlashCommands:
    """The commands of one REPL.

    Args:
        shell: the REPL they act on.
        commands: the commands (default: :data:`BUILTIN`).
    """

    def __init__(self, shell: Shell, commands: list[SlashCommand] | None = None) -> None:
        self.shell = shell
        self.commands = {command.name: command for command in commands or BUILTIN}

    def summaries(self) -> list[tuple[str, str]]:
        return [(name, command.help) for name, command in self.commands.items()]

    def argument_choices(self, name: str) -> list[str]:
        command = self.commands.get(name)
        if command is None or command.choices is None:
            return []
        return command.choices(self.shell)

    async def run(self, line: str) -> None:
        match = _INVOCATION.match(line.strip())
        if match is None:
            raise ValueError(f"not a slash command: {line!r}")
        name, argument = match.group(1), (match.group(2) or "").strip()
        command = self.commands.get(name.lower())
        if command is None:
            self.shell.console.print(Text(self.unknown(name), "qd.notice"))
            return
        await command.run(self.shell, argument)

    def unknown(self, name: str) -> str:
        close = suggestion(name, list(self.commands))
        hint = f"did you mean /{close}?" if close else "type /help for the list"
        return f"unknown command /{name}; {hint}"


#: What the peers (Gemini CLI, Claude Code, Qwen Code) call some of our commands.
PEER_NAMES = {
    "stats": "metrics",
    "cost": "metrics",
    "usage": "metrics",
    "chat": "sessions",
    "history": "sessions",
    "reset": "new",
    "summarize": "compact",
    "permissions": "approval",
    "models": "model",
    "mcps": "mcp",
}


def suggestion(typed: str, names: list[str]) -> str | None:
    """The command the user probably meant by ``/typed``, if one is likely: the peers'
    name for it, a command it begins (or that begins it), or a near spelling (a typo:
    ``/hepl``). A word of its own (``/theme``) suggests nothing."""
    word = typed.lower()
    peer = PEER_NAMES.get(word)
    if peer in names:
        return peer
    started = [n for n in names if len(word) >= 2 and (n.startswith(word) or word.startswith(n))]
    if len(started) == 1:
        return started[0]
    close = difflib.get_close_matches(word, names, n=1, cutoff=0.75)
    return close[0] if close else None


# --- the commands ---------------------------------------------------------------------


async def _help(shell: Shell, argument: str) -> None:
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(no_wrap=True)
    table.add_column()
    for command in BUILTIN:
        table.add_row(Text(command.usage, "qd.slash"), command.help)
    table.add_row("", "")
    for keys, what in (
        ("Enter", "send the message"),
        ("Alt+Enter", "new line (or Esc then Enter); pasted text stays one message"),
        ("@path", "attach a workspace file (Tab completes)"),
        ("Ctrl-C", "stop the answer being written; clear the line"),
        ("Ctrl-D", "leave"),
        *HABIT_KEYS,
    ):
        table.add_row(Text(keys, "qd.name"), what)
    shell.console.print(table)


async def _metrics(shell: Shell, argument: str) -> None:
    shell.console.print(metrics_renderable(shell.metrics()))
    # The counts are this session's; the budget they draw on may be shared.
    symbols = symbols_for(shell.console)
    shell.console.print(Text(store_line(shell.client_status(), symbols), "qd.muted"))


async def _status(shell: Shell, argument: str) -> None:
    shell.console.print(status_table(shell.client_status(), symbols_for(shell.console)))


async def _model(shell: Shell, argument: str) -> None:
    active = shell.settings.client.providers
    first = active[0] if active else None
    # A model that is the file it loads has no other name to switch to.
    fixed = first if first is not None and not kind_of(first).model_switchable else None
    if not argument:
        dot = symbols_for(shell.console).dot
        current = f"{first.name} {dot} {first.model}" if first else "no provider"
        how = "change it with /model NAME"
        if fixed is not None:
            file = fixed.model_path or "installed with qwen-dev"
            how = f"the model file {file}: [providers.{fixed.name}] model_path"
        shell.console.print(Text(f"model: {current}  ({how})"))
        return
    if fixed is not None:
        shell.console.print(Text(_local_model_is_its_file(shell, fixed), "qd.notice"))
        return
    await shell.reconfigure(model=argument)


def _local_model_is_its_file(shell: Shell, provider: ProviderSettings) -> str:
    """Why ``/model`` cannot switch an in-process provider, and what can."""
    where = shell.settings.config_path or "your config file (qwen-dev config path)"
    file = provider.model_path or "the model installed with qwen-dev"
    return (
        f"/model: {provider.name} runs one model file in-process ({file}), so there is no "
        f"other model to switch to. To use another GGUF file, set model_path under "
        f"[providers.{provider.name}] in {where} and restart; for a remote model, "
        "choose another provider with /provider NAME."
    )


async def _provider(shell: Shell, argument: str) -> None:
    defined = list(shell.settings.providers)
    if not argument:
        active = [p.name for p in shell.client_status().providers]
        shell.console.print(
            f"providers in use: {', '.join(active)}  (configured: {', '.join(defined)})"
        )
        return
    names = tuple(argument.replace(",", " ").split())
    unknown = [name for name in names if name not in defined]
    if unknown:
        shell.console.print(Text(_unknown_providers(unknown, defined), "qd.error"))
        return
    await shell.reconfigure(providers=names)


def _unknown_providers(unknown: list[str], defined: list[str]) -> str:
    close = difflib.get_close_matches(unknown[0], defined, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]}?)" if close else ""
    quoted = ", ".join(repr(name) for name in unknown)
    noun = "provider" if len(unknown) == 1 else "providers"
    return f"unknown {noun} {quoted}{hint}; the configured providers are: {', '.join(defined)}"


async def _approval(shell: Shell, argument: str) -> None:
    if not argument:
        shell.console.print(f"approval: {shell.approval}  (one of {', '.join(APPROVAL_MODES)})")
        _show_always_allowed(shell)
        return
    if argument == "clear":
        forgotten = len(shell.always_allowed)
        shell.always_allowed.clear()
        what = plural(forgotten, "always-allowed command")
        shell.console.print(f"forgot {what}: each will be asked about again")
        return
    if argument not in APPROVAL_MODES:
        choices = ", ".join(APPROVAL_MODES)
        shell.console.print(
            Text(f"approval must be one of {choices} (or clear), not {argument!r}", "qd.error")
        )
        return
    shell.set_approval(argument)
    shell.console.print(f"approval: {argument}")


def _show_always_allowed(shell: Shell) -> None:
    allowed = sorted(shell.always_allowed)
    if not allowed:
        shell.console.print(Text("no command is always allowed in this session", "qd.muted"))
        return
    shell.console.print("always allowed in this session (/approval clear forgets them):")
    for command in allowed:
        shell.console.print(Text(printable(f"  {command}"), "qd.name"))


async def _output(shell: Shell, argument: str) -> None:
    last = shell.last_output
    if last is None:
        shell.console.print("no tool has run in this session yet")
        return
    symbols = symbols_for(shell.console)
    arguments = ", ".join(f"{key}={value!r}" for key, value in last.arguments.items())
    head = f"{symbols.tool} {last.name} {arguments} {symbols.dot} {last.status}"
    shell.console.print(Text(printable(head), "qd.tool"))
    shell.console.print(Text(printable(last.output.rstrip("\n") or "(no output)")))


async def _new(shell: Shell, argument: str) -> None:
    previous = shell.conversation.id
    shell.new_conversation()
    if previous is not None:
        shell.console.print(Text(f"session {previous} saved (/resume {previous})", "qd.muted"))
    shell.console.print("new conversation: the next message starts it")


async def _sessions(shell: Shell, argument: str) -> None:
    infos = shell.conversation.list()
    if not infos:
        shell.console.print("no sessions yet")
        return
    table = Table(box=None, pad_edge=False)
    for column in ("", "id", "updated", "msgs", "title"):
        table.add_column(column, justify="right" if column == "msgs" else "left")
    here = str(shell.conversation.cwd)
    current = symbols_for(shell.console).current
    for info in infos[:20]:
        mark = current if info.id == shell.conversation.id else ""
        # Titles are users' words, and may hold piped text: never markup, never controls.
        title = Text(printable(info.title))
        if info.cwd != here:
            title.append(f"  ({printable(info.cwd)})", "qd.muted")
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(info.updated))
        table.add_row(mark, info.id, when, str(info.message_count), title)
    shell.console.print(table)
    if len(infos) > 20:
        shell.console.print(Text(f"... and {len(infos) - 20} older", "qd.muted"))


async def _resume(shell: Shell, argument: str) -> None:
    if not argument:
        shell.console.print("usage: /resume ID  (see /sessions)")
        return
    try:
        shell.conversation.resume(argument)
    except SessionError as exc:
        shell.console.print(Text(str(exc), "qd.error"))
        return
    shell.show_resumed()


async def _undo(shell: Shell, argument: str) -> None:
    try:
        plan = shell.changes.plan_undo()
        if plan is None:
            shell.console.print("nothing to undo: no file was changed in this session")
            return
        if plan.edited and not await _confirm_undo(shell, plan):
            shell.console.print("nothing undone")
            return
        undone = shell.changes.undo(plan)
    except (OSError, ToolError) as exc:
        shell.console.print(Text(f"could not undo: {exc}", "qd.error"))
        return
    shell.console.print(Text(undone.describe(), "qd.notice" if undone.backup else "qd.ok"))


async def _confirm_undo(shell: Shell, plan: UndoPlan) -> bool:
    """Ask before an undo replaces edits made after the tool's write (they are kept in
    a backup file either way)."""
    change = plan.change
    happened = "deleted" if plan.current is None else "changed"
    title = (
        f"{change.display} was {happened} after {change.tool or 'the tool'} wrote it; "
        "undo turns it into this"
        + ("" if plan.current is None else " (your version is kept in a backup file beside it)")
    )
    return await shell.approver.confirm(title, plan.diff(), "Undo anyway?")


async def _rewind(shell: Shell, argument: str) -> None:
    await shell.rewind()


async def _compact(shell: Shell, argument: str) -> None:
    await shell.compact(argument or None)


async def _context(shell: Shell, argument: str) -> None:
    report = shell.context_report()
    if report is None:
        shell.console.print("the context window is not known here")
        return
    budget = report.budget
    share = report.used / budget.window
    line = f"context: {report.used:,} of {budget.window:,} tokens ({share:.0%})"
    dot = symbols_for(shell.console).dot
    shell.console.print(Text(line + (f" {dot} {budget.provider}" if budget.provider else "")))
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(no_wrap=True)
    table.add_column(justify="right")
    for name, tokens in report.rows():
        table.add_row(name, f"{tokens:,}")
    shell.console.print(table)
    shell.console.print(
        Text(
            "estimates; compaction starts at 80% of the window with the answer's room "
            "(/compact [FOCUS] to do it now)",
            "qd.muted",
        )
    )


async def _exit(shell: Shell, argument: str) -> None:
    shell.leave()


async def _mcp(shell: Shell, argument: str) -> None:
    words = argument.split()
    if words and words[0] == "reconnect":
        await _mcp_reconnect(shell, words[1:])
        return
    if words:
        shell.console.print(
            Text(f"/mcp: say /mcp or /mcp reconnect NAME, not {argument!r}", "qd.error")
        )
        return
    servers = shell.mcp
    if servers is None:
        configured = [s.name for s in shell.settings.mcp_servers]
        if configured:
            shell.console.print(f"no MCP server is enabled (configured: {', '.join(configured)})")
        else:
            shell.console.print(
                "no MCP server is configured: qwen-dev mcp add NAME -- COMMAND ARGS..."
            )
        return
    shell.console.print(mcp_table(servers.report()))


def mcp_table(rows: list[dict[str, Any]]) -> Table:
    """The servers as ``/mcp`` shows them: name, transport, state, tools, trust, an HTTP
    server's circuit breaker, last error."""
    from ..mcp.breaker import describe

    table = Table(box=None, pad_edge=False, header_style="qd.muted")
    for column in ("server", "transport", "state", "tools", "trust", "breaker", "last error"):
        table.add_column(column, no_wrap=column != "last error", overflow="fold")
    for row in rows:
        state = row["state"]
        style = {"ready": "qd.ok", "starting": "qd.busy", "failed": "qd.failure"}.get(
            state, "qd.muted"
        )
        table.add_row(
            Text(row["name"], "qd.name"),
            row["transport"],
            Text(state, style),
            str(len(row["tools"])),
            "yes" if row["trust"] else "no",
            describe(row["breaker"]),
            Text(printable(row["error"] or ""), "qd.error"),
        )
    return table


async def _mcp_reconnect(shell: Shell, names: list[str]) -> None:
    servers = shell.mcp
    if len(names) != 1:
        shell.console.print(Text("/mcp reconnect NAME: one server's name", "qd.error"))
        return
    name = names[0]
    if servers is None or servers.find(name) is None:
        known = ", ".join(s.name for s in servers.servers) if servers is not None else ""
        shell.console.print(
            Text(
                f"/mcp reconnect: no running MCP server {name!r} (servers: {known or 'none'})",
                "qd.error",
            )
        )
        return
    shell.console.print(
        Text(f"reconnecting MCP server {name}{symbols_for(shell.console).ellipsis}", "qd.muted")
    )
    server = await servers.reconnect(name)
    if server.state == "ready":
        count = plural(len(servers.report_of(name)["tools"]), "tool")
        shell.console.print(Text(f"MCP server {name} is ready: {count}"))
    else:
        servers.tell_failures(lambda message: shell.console.print(Text(message, "qd.failure")))


async def _tools(shell: Shell, argument: str) -> None:
    listing = shell.tool_listing()
    table = Table(box=None, pad_edge=False, header_style="qd.muted")
    table.add_column("tool", no_wrap=True)
    table.add_column("from")
    for name, source in listing:
        table.add_row(Text(name, "qd.name"), source)
    shell.console.print(table)
    shell.console.print(Text(f"{plural(len(listing), 'tool')} the model may call", "qd.muted"))


#: The peers' keys and ``!command`` (issue 24), listed by ``/help``.
HABIT_KEYS = (
    ("Esc", "stop the answer being written, as Ctrl-C"),
    ("Shift+Tab", "next approval mode (ask, auto-edit, yolo); the status bar shows it"),
    (
        "!command",
        "run your own shell command in the workspace (sandboxed, unasked); "
        "its output joins the conversation",
    ),
)


async def _memory(shell: Shell, argument: str) -> None:
    words = argument.split(maxsplit=1)
    if words and words[0] == "add":
        if len(words) < 2 or not words[1].strip():
            shell.console.print(Text("/memory add TEXT: the note to keep", "qd.error"))
            return
        shell.console.print(add_note(shell.workspace, words[1].strip()))
        return
    if words:
        shell.console.print(
            Text(f"/memory: say /memory or /memory add TEXT, not {argument!r}", "qd.error")
        )
        return
    shell.console.print(show_notes(shell.workspace))


async def _init(shell: Shell, argument: str) -> None:
    if (shell.workspace / NOTES_FILE).exists():
        shell.console.print(
            f"{NOTES_FILE} exists already (/memory shows it; /memory add TEXT adds to it)"
        )
        return
    await shell.ask(INIT_PROMPT)


def _mcp_arguments(shell: Shell) -> list[str]:
    return [] if shell.mcp is None else ["reconnect"]


def _provider_names(shell: Shell) -> list[str]:
    return list(shell.settings.providers)


def _approval_modes(shell: Shell) -> list[str]:
    return [*APPROVAL_MODES, "clear"]


def _session_ids(shell: Shell) -> list[str]:
    return [info.id for info in shell.conversation.list()[:20]]


BUILTIN: list[SlashCommand] = [
    SlashCommand("help", "these commands and keys", _help),
    SlashCommand("metrics", "requests, latency, retries, failovers, per provider", _metrics),
    SlashCommand("status", "breakers, budgets and cool-downs of each provider", _status),
    SlashCommand("model", "use another model (first provider)", _model, "NAME"),
    SlashCommand(
        "provider", "use only these providers, in order", _provider, "NAME", _provider_names
    ),
    SlashCommand(
        "approval",
        "what tool calls may do unasked, and the commands always allowed (clear: forget them)",
        _approval,
        "MODE|clear",
        _approval_modes,
    ),
    SlashCommand("output", "the last tool call's output, in full", _output),
    SlashCommand("new", "start a new conversation", _new),
    SlashCommand("sessions", "saved conversations, newest first", _sessions),
    SlashCommand("resume", "continue a saved conversation", _resume, "ID", _session_ids),
    SlashCommand("undo", "revert the last file change the assistant made", _undo),
    SlashCommand(
        "rewind", "go back to before a turn: files, conversation or both (Esc Esc)", _rewind
    ),
    SlashCommand(
        "compact", "summarise older turns now to free context, keeping FOCUS", _compact, "[FOCUS]"
    ),
    SlashCommand("compress", "the same as /compact", _compact, "[FOCUS]"),
    SlashCommand("context", "how full the context window is, and with what", _context),
    SlashCommand(
        "mcp",
        "MCP servers: state, tools, last error (reconnect NAME: start one again)",
        _mcp,
        "[reconnect NAME]",
        _mcp_arguments,
    ),
    SlashCommand("tools", "every tool the model may call, and where it comes from", _tools),
    SlashCommand("exit", "leave (Ctrl-D too)", _exit),
    # The peers' habits (issue 24).
    SlashCommand(
        "memory",
        "the project notes the model reads (QWEN.md, else AGENTS.md); add TEXT: keep a note",
        _memory,
        "[add TEXT]",
        lambda shell: ["add"],
    ),
    SlashCommand("init", "ask the model to write a QWEN.md for this project", _init),
    SlashCommand("quit", "the same as /exit", _exit),
    SlashCommand("clear", "the same as /new", _new),
]
