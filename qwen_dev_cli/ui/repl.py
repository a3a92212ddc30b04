"""The interactive REPL: prompt, turns, slash commands, and the status bar throughout.

Idle, prompt-toolkit owns the terminal and draws the status bar as its bottom
toolbar (refreshed on a timer). A message runs as a :class:`Turn` in its own task,
shown by a :class:`~qwen_dev_cli.ui.turnview.TurnView` that streams the answer and
draws the same status bar as a live footer. Ctrl-C (SIGINT: the terminal is in its
normal mode while a turn runs) cancels that task, which stops the request, its
retries and its sleeps at once; what was said so far is kept, marked interrupted.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prompt_toolkit.key_binding import KeyBindings, merge_key_bindings
from prompt_toolkit.patch_stdout import patch_stdout
from rich.console import Console
from rich.text import Text

from .. import __version__, exit_codes
from ..agent.context import ContextBudget, ContextLedger, ContextReport
from ..agent.turn import (
    ContextAware,
    ContextCompacted,
    MessageAdded,
    ToolCallFinished,
    ToolCallStarted,
)
from ..config import APPROVAL_MODES, ConfigError
from ..core import LLMError
from ..core.telemetry import merge_snapshots
from ..plurals import plural
from ..session.store import SessionError
from ..session.summary import exchange_lines, recent
from ..tools import ChangeLog, ToolError
from ..tools.sandbox import announce_missing
from .approval import InteractiveApprover
from .checkpointing import Checkpoints, prune_in_background
from .completion import ReplCompleter
from .conversation import Conversation
from .esc_interrupt import EscWatcher
from .keys import LEAVE_HINT, approval_keys, repl_prompt
from .memory import notes_in_use
from .mentions import attach_mentions
from .notices import workspace_notice
from .recorder import SessionRecorder
from .rewind import run_rewind
from .safe_text import printable
from .shell_escape import run_user_command, shell_command
from .slash import SlashCommands, ToolOutput, is_command
from .statusbar import StatusBar
from .symbols import symbols_for
from .theme import make_console
from .turnview import TurnView, terminal_input

if TYPE_CHECKING:
    from prompt_toolkit.input import Input
    from prompt_toolkit.output import Output

    from ..agent.turn import AgentEvent, Turn
    from ..config import Settings
    from ..core.events import ClientEvent
    from ..core.status import ClientStatus
    from ..mcp import McpServers
    from ..runtime import Runtime

#: Exchanges recalled when a session is resumed.
RECAP_EXCHANGES = 3


@dataclass(frozen=True)
class ReplOptions:
    """How the REPL was started.

    Args:
        continue_latest: ``--continue``: resume the latest session of this folder.
        resume_id: ``--resume ID``.
        resume_at: ``--at N``: the session as it was before its turn N.
    """

    continue_latest: bool = False
    resume_id: str | None = None
    resume_at: int | None = None


#: Builds the turn each message runs, from the REPL as it is now (tests wrap
#: :meth:`Repl.agent`).
TurnFactory = Callable[["Repl"], "Turn"]


class Repl:
    """One interactive session in the terminal.

    Args:
        runtime: the settings, the workspace, the home, the tools and the state store
            every client of the process shares (this one's, and those ``/model`` and
            ``/provider`` build); it builds the client and each turn's agent.
        options: how the REPL was started.
        console: where everything but the prompt is printed.
        input, output: prompt-toolkit input and output (tests); ``None``: the terminal.
        turn_factory: builds the turn for each message (default :meth:`agent`).
    """

    def __init__(
        self,
        runtime: Runtime,
        options: ReplOptions,
        *,
        console: Console,
        input: Input | None = None,
        output: Output | None = None,
        turn_factory: TurnFactory | None = None,
    ) -> None:
        self.runtime = runtime
        self.options = options
        self.console = console
        self.symbols = symbols_for(console)
        self.workspace = runtime.workspace
        self.turn_factory: TurnFactory = turn_factory or Repl.agent
        self.client = runtime.client()
        self._unsubscribe = self.client.subscribe(self._on_client_event)
        self._retired: list[dict[str, Any]] = []
        self._retired_tokens = 0
        self._approval: str = runtime.settings.approval
        #: File changes the agent made in this REPL (``/undo``), and commands the user
        #: approved "always" (``/approval`` lists them): both outlive a turn.
        self.changes = ChangeLog()
        self.always_allowed: set[str] = set()
        #: The latest tool call's output, for ``/output``.
        self.last_output: ToolOutput | None = None
        #: Token accounting of the conversation, across its turns (``ctx N%``).
        self.ledger = ContextLedger()
        self.status = StatusBar(
            self.client_status,
            extra_tokens=lambda: self._retired_tokens,
            context=self._context_share,
            symbols=self.symbols,
            mcp=self._mcp_counts,
            approval=lambda: self._approval,
        )
        store = runtime.home.session_store(self._warn)
        self.conversation = Conversation(store, self.workspace)
        #: Checkpoints of the workspace before each turn and command (``/rewind``).
        self.checkpoints = Checkpoints.for_runtime(runtime, self._warn)
        self.commands = SlashCommands(self)
        self.approver = InteractiveApprover(
            console,
            pause=self._paused_display,
            input=input,
            output=output,
            allow_edits=lambda: self.set_approval("auto-edit"),
        )
        self.prompt = repl_prompt(
            runtime.home.history,
            ReplCompleter(self.commands, self.workspace),
            self.status,
            input=input,
            output=output,
        )
        self._quiet_input = terminal_input() if input is None else None
        self._add_habit_keys()
        self._view: TurnView | None = None
        self._turn: asyncio.Task[Any] | None = None
        self._leaving = False

    # --- the loop ---------------------------------------------------------------------

    async def run(self) -> int:
        """Read and answer messages until the user leaves; returns the exit code."""
        self._greet()
        self._start_mcp_after_the_prompt()
        try:
            with _sigint_calls(self._on_sigint):
                while not self._leaving:
                    try:
                        text = await self._read_line()
                    except KeyboardInterrupt:
                        self.console.print(Text(LEAVE_HINT, "qd.muted"))
                        continue
                    except EOFError:
                        break
                    await self.handle(text)
            self._say_saved()
        finally:
            await self.close()
        return exit_codes.OK

    async def _read_line(self) -> str:
        """The next line typed at the prompt. Meanwhile whatever is printed to stdout or
        stderr (a state store that went away, said by the client's own task) appears
        above the prompt, on lines of its own, not in the line being typed."""
        with patch_stdout(raw=True):
            return await self.prompt.prompt_async(handle_sigint=False)

    def _say_saved(self) -> None:
        """On leaving: which session holds this conversation, and how to come back."""
        session = self.conversation.session
        if session is None or not session.messages:
            return
        dot = self.symbols.dot
        self.console.print(
            Text(
                f"session {session.id} saved {dot} resume: qwen-dev --resume {session.id}",
                "qd.muted",
            )
        )

    async def handle(self, text: str) -> None:
        """One line from the prompt: a slash command or a message."""
        if not text.strip():
            return
        if is_command(text):
            await self.commands.run(text)
        elif (command := shell_command(text)) is not None:
            await self.run_user_command(command)
        else:
            await self.ask(text)

    async def ask(self, text: str) -> None:
        """Run one turn for ``text``; Ctrl-C cancels it."""
        mentioned = attach_mentions(text, self.workspace, budget=self._budget())
        for warning in mentioned.warnings:
            self._warn(warning)
        if mentioned.attached:
            self.console.print(Text(f"attached: {', '.join(mentioned.attached)}", "qd.muted"))
        message = mentioned.text
        if not await self._mcp_ready():
            return
        session = self.conversation.ensure()
        history = self.conversation.messages
        recorder = SessionRecorder(session)
        turn = self.turn_factory(self)
        view = TurnView(self.console, self.status, quiet_input=self._quiet_input)

        started: dict[str, ToolCallStarted] = {}

        def sink(event: AgentEvent) -> None:
            recorder(event)
            view(event)
            if isinstance(event, ToolCallStarted):
                started[event.call_id] = event
            elif isinstance(event, ToolCallFinished):
                call = started.pop(event.call_id, None)
                arguments = call.arguments if call is not None else {}
                self.last_output = ToolOutput(event.name, arguments, event.status, event.output)

        await self.checkpoints.turn_started(session, text)
        self.status.turn_started()
        self._view = view
        self._esc_watch(True)
        try:
            async with view:
                task = asyncio.create_task(turn.run(history, message, sink))
                self._turn = task
                try:
                    await task
                except asyncio.CancelledError:
                    if not task.cancelled() or _being_cancelled():
                        raise
                    recorder.interrupted()
                    view.interrupted()
                except LLMError as exc:
                    view.failed(f"{exc}  (/status for details)")
                except Exception as exc:  # a bug in a turn must not end the session
                    view.failed(f"internal error: {type(exc).__name__}: {exc}")
        finally:
            self._esc_watch(False)
            self._turn = None
            self._view = None
            self.status.turn_finished()
        await self.checkpoints.turn_ended()

    def agent(self) -> Turn:
        """The agent a message runs: the runtime's, asking through the dialog, with what
        outlives a turn (file changes, "always" answers, token accounting) kept here."""
        return self.runtime.agent(
            self.client,
            self.approver,
            interactive=True,
            approval=self._approval,
            changes=self.changes,
            remembered=self.always_allowed,
            ledger=self.ledger,
            before_command=self.checkpoints.before_command,
        )

    async def rewind(self) -> None:
        """``/rewind`` (Esc Esc): back to before a turn, files, conversation or both."""
        await run_rewind(self)

    async def _mcp_ready(self) -> bool:
        """Wait for the MCP servers still starting (each up to its ``startup_timeout``)
        so the model sees their tools, saying each that failed; ``False``: Ctrl-C
        stopped the wait and the message is not sent."""
        servers = self.runtime.mcp
        if servers is None:
            return True
        starting = servers.starting()
        if not starting:
            servers.tell_failures(self._warn)
            return True
        names = ", ".join(starting)
        self.console.print(
            Text(
                f"waiting for MCP {'server' if len(starting) == 1 else 'servers'} {names}"
                f"{self.symbols.ellipsis}",
                "qd.muted",
            )
        )
        task = asyncio.create_task(servers.wait_ready(self._warn))
        self._turn = task
        try:
            await task
        except asyncio.CancelledError:
            if not task.cancelled() or _being_cancelled():
                raise
            self.console.print(Text("interrupted; the message was not sent", "qd.notice"))
            return False
        finally:
            self._turn = None
        return True

    @property
    def mcp(self) -> McpServers | None:
        return self.runtime.mcp

    def tool_listing(self) -> list[tuple[str, str]]:
        """``/tools``: every tool offered to the model now, with its source."""
        registry = self.runtime.tools
        offered = {tool.name: tool for tool in registry.tools()}
        listing: list[tuple[str, str]] = []
        for source in registry.sources:
            for tool in source.tools():
                if offered.get(tool.name) is tool:
                    del offered[tool.name]
                    listing.append((tool.name, source.name))
        return listing

    def _start_mcp_after_the_prompt(self) -> None:
        """Start the MCP servers once the prompt is drawn: nothing they do (spawning
        processes, the SDK's import) stands between the user and the prompt."""
        servers = self.runtime.mcp
        if servers is None:
            return
        app = self.prompt.app

        def drawn(_: object) -> None:
            servers.start()  # the first time; after that it does nothing

        app.after_render += drawn

    def _mcp_counts(self) -> tuple[int, int, bool] | None:
        servers = self.runtime.mcp
        return None if servers is None else servers.counts()

    # --- the context window -----------------------------------------------------------

    def _budget(self) -> ContextBudget:
        return self.ledger.fit(ContextBudget.for_settings(self.runtime.settings.client.providers))

    def _context_share(self) -> float | None:
        if self.conversation.session is None or self.ledger.used <= 0:
            return None
        return self.ledger.used / self._budget().window

    def context_report(self) -> ContextReport | None:
        """``/context``: what fills the window now (``None``: the turn cannot say)."""
        turn = self.turn_factory(self)
        if not isinstance(turn, ContextAware):
            return None
        report: ContextReport = turn.context_report(self.conversation.messages)
        self.ledger.note(report.used)
        return report

    def new_conversation(self) -> None:
        """``/new``: the session closed, and nothing of it counted any more (what was
        learnt of the servers' windows and counting stays)."""
        self.conversation.new()
        self.ledger.restart()

    async def compact(self, focus: str | None) -> None:
        """``/compact``: summarise the conversation now, keeping the latest exchange."""
        session = self.conversation.session
        turn = self.turn_factory(self)
        if session is None or not session.view or not isinstance(turn, ContextAware):
            self.console.print("nothing to compact yet")
            return
        recorder = SessionRecorder(session)
        compacted: list[ContextCompacted] = []

        def sink(event: AgentEvent) -> None:
            recorder(event)
            if isinstance(event, ContextCompacted):
                compacted.append(event)

        self.console.print(Text(f"compacting the conversation{self.symbols.ellipsis}", "qd.muted"))
        self.status.turn_started()
        task = asyncio.create_task(turn.compact(self.conversation.messages, sink, focus=focus))
        self._turn = task
        try:
            await task
        except asyncio.CancelledError:
            if not task.cancelled() or _being_cancelled():
                raise
            self.console.print(Text("compaction interrupted; nothing changed", "qd.notice"))
            return
        except LLMError as exc:
            self.console.print(
                Text(f"{self.symbols.failed} could not compact: {exc}", "qd.failure")
            )
            return
        finally:
            self._turn = None
            self.status.turn_finished()
        if not compacted:
            self.console.print(
                "nothing to compact: only the latest exchange (and a summary) is left"
            )
            return
        self.console.print(Text(compacted[-1].description, "qd.muted"))

    async def close(self) -> None:
        self.conversation.close()
        self.checkpoints.close()
        await self._retire_client()

    # --- sessions -----------------------------------------------------------------------

    def open_session(self) -> str | None:
        """Resume what ``--continue``/``--resume`` asked for; an error message, or ``None``."""
        options = self.options
        session_id = options.resume_id
        if options.continue_latest:
            latest = self.conversation.latest_here()
            if latest is None:
                self.console.print(
                    Text("no earlier session in this folder; starting anew", "qd.muted")
                )
                return None
            session_id = latest.id
        if session_id is None:
            return None
        try:
            self.conversation.resume(session_id, at_turn=options.resume_at)
        except SessionError as exc:
            return str(exc)
        self.show_resumed()
        if options.resume_at is not None:
            self.console.print(
                Text(
                    f"the conversation is as it was before turn {options.resume_at}; "
                    "/rewind restores the files too",
                    "qd.muted",
                )
            )
        return None

    def show_resumed(self) -> None:
        """Say which session is open, with its last few exchanges."""
        session = self.conversation.session
        if session is None:
            return
        messages = session.view
        total = len(session.messages)
        compacted = f" ({len(messages)} after compaction)" if len(messages) != total else ""
        symbols = self.symbols
        self.console.print(
            Text(
                f"resumed session {session.id} {symbols.dot} {plural(total, 'message')}{compacted}",
                "qd.muted",
            )
        )
        with contextlib.suppress(Exception):  # only the status bar's ctx N% depends on it
            self.context_report()
        # The last few exchanges, a few lines each: enough to remember where it was.
        for exchange in recent(session.messages, RECAP_EXCHANGES):
            lines = exchange_lines(exchange)
            self.console.print(Text(printable(lines[0]), "qd.title"))
            for line in lines[1:]:
                self.console.print(Text(printable(line), "qd.muted"))

    # --- what slash commands use (the Shell protocol) ----------------------------------

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    @property
    def approval(self) -> str:
        return self._approval

    def set_approval(self, mode: str) -> None:
        self._approval = mode

    def _warn(self, message: str) -> None:
        self.console.print(Text(f"qwen-dev: {message}", "qd.notice"))

    def client_status(self) -> ClientStatus:
        return self.client.status()

    def metrics(self) -> dict[str, Any]:
        """This session's telemetry, across clients replaced by ``/model``/``/provider``."""
        current = self.client.get_metrics()
        if not self._retired:
            return current
        return merge_snapshots([*self._retired, current])

    async def reconfigure(
        self, *, providers: tuple[str, ...] | None = None, model: str | None = None
    ) -> None:
        """Rebuild the client with other providers or another model."""
        try:
            runtime = self.runtime.reconfigured(providers=providers, model=model)
            client = runtime.client()
        except ConfigError as exc:
            self.console.print(Text(_as_slash_command(exc), "qd.error"))
            return
        except LLMError as exc:
            self.console.print(Text(str(exc), "qd.error"))
            return
        await self._retire_client()
        self.client = client
        self._unsubscribe = client.subscribe(self._on_client_event)
        self.runtime = runtime
        settings = runtime.settings
        dot, arrow = self.symbols.dot, self.symbols.arrow
        names = f" {arrow} ".join(f"{p.name} {dot} {p.model}" for p in settings.client.providers)
        self.console.print(f"now using {names}")

    def leave(self) -> None:
        self._leaving = True

    # --- internals ----------------------------------------------------------------------

    def _greet(self) -> None:
        status = self.client.status()
        first = status.providers[0] if status.providers else None
        dot = self.symbols.dot
        using = f"{first.name} {dot} {first.model}" if first else "no provider"
        self.console.print(
            Text.assemble(
                (f"qwen-dev {__version__}", "qd.title"),
                (f"  {using} {dot} approval {self._approval}", "qd.muted"),
            )
        )
        for note in self.runtime.notices(verbose=True, daily=False):
            self.console.print(Text(note, "qd.notice"))
        wide = workspace_notice(self.workspace)
        if wide is not None:
            self.console.print(Text(wide, "qd.notice"))
        self._say_project_notes()
        # A REPL says at start when commands cannot be sandboxed (ask: at its first one).
        announce_missing()
        self.console.print(
            Text(
                f"/help for commands {dot} Alt+Enter for a new line {dot} Ctrl-D to leave",
                "qd.muted",
            )
        )

    def _on_client_event(self, event: ClientEvent) -> None:
        self.status.on_event(event)
        if self._view is not None:
            self._view.client_event(event)

    def _on_sigint(self) -> None:
        if self._turn is not None and not self._turn.done():
            self._turn.cancel()

    def _paused_display(self) -> AbstractContextManager[object]:
        if self._esc is not None and self._view is not None:
            return _both(self._esc.paused(), self._view.paused())
        return self._view.paused() if self._view is not None else contextlib.nullcontext()

    # --- the peers' habits (issue 24): Esc, Shift+Tab, !command -----------------------

    def _add_habit_keys(self) -> None:
        """Shift+Tab at the prompt; Esc while an answer is written (on a terminal)."""
        self.prompt.key_bindings = merge_key_bindings(
            [self.prompt.key_bindings or KeyBindings(), approval_keys(self.cycle_approval)]
        )
        self._esc: EscWatcher | None = None
        if self._quiet_input is not None:
            fd = self._quiet_input.fileno()
            self._esc = EscWatcher(fd, self._on_sigint, self.prompt.input)

    def _say_project_notes(self) -> None:
        """At start: the project notes the model reads (QWEN.md, else AGENTS.md)."""
        name = notes_in_use(self.workspace)
        if name is not None:
            dot = self.symbols.dot
            self.console.print(
                Text(f"project notes: {name} {dot} read with every message (/memory)", "qd.muted")
            )

    def _esc_watch(self, on: bool) -> None:
        if self._esc is not None:
            if on:
                self._esc.start()
            else:
                self._esc.stop()

    def cycle_approval(self) -> None:
        """Shift+Tab: the next approval mode (ask, auto-edit, yolo, ask...)."""
        modes = list(APPROVAL_MODES)
        current = modes.index(self._approval) if self._approval in modes else -1
        self.set_approval(modes[(current + 1) % len(modes)])

    async def run_user_command(self, command: str) -> None:
        """``!command``: run it (sandboxed, unasked), show its output, and add it to the
        conversation for the next message."""
        agent = self.runtime.agent(
            self.client, self.approver, interactive=True, approval=self._approval
        )
        task = asyncio.create_task(
            run_user_command(command, agent.runner.context, self.console, agent.runner.redact)
        )
        self._turn = task
        try:
            message = await task
        except asyncio.CancelledError:
            if not task.cancelled() or _being_cancelled():
                raise
            self.console.print(Text("interrupted; the command was stopped", "qd.notice"))
            return
        except ToolError as exc:
            self.console.print(Text(f"!{printable(command)}: {exc}", "qd.error"))
            return
        finally:
            self._turn = None
        SessionRecorder(self.conversation.ensure())(MessageAdded(message))

    async def _retire_client(self) -> None:
        """Keep the outgoing client's numbers (in /metrics, the token count), then retire
        it (the metrics log, the close)."""
        self._retired.append(self.client.get_metrics())
        self._retired_tokens += self.client.status().session_tokens
        self._unsubscribe()
        await self.runtime.retire(self.client)


@contextlib.contextmanager
def _both(
    first: AbstractContextManager[object], second: AbstractContextManager[object]
) -> Iterator[None]:
    with first, second:
        yield


@contextlib.contextmanager
def _sigint_calls(handler: Callable[[], None]) -> Iterator[None]:
    """Route SIGINT to ``handler`` while the REPL runs (where the loop allows it)."""
    loop = asyncio.get_running_loop()
    try:
        loop.add_signal_handler(signal.SIGINT, handler)
    except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
        yield
        return
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGINT)


#: The flags ``/provider`` and ``/model`` stand for when settings are rebuilt.
_FLAG_AS_COMMAND = {"--provider": "/provider", "--model": "/model"}


def _as_slash_command(error: ConfigError) -> str:
    """A settings error caused by ``/provider`` or ``/model``, worded for the command
    the user typed rather than the flag it is applied as."""
    command = _FLAG_AS_COMMAND.get(error.source or "")
    if command is None:
        return str(error)
    prefix = f"{error.source}: {error.key}: " if error.key else f"{error.source}: "
    return f"{command}: {error.message.removeprefix(prefix)}"


def _being_cancelled() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


async def run_repl(
    runtime: Runtime,
    options: ReplOptions,
    *,
    console: Console | None = None,
    input: Input | None = None,
    output: Output | None = None,
) -> int:
    """Run the REPL until the user leaves; returns the exit code (the caller closes the
    runtime's state store after this returns)."""
    console = console or make_console()
    settings = runtime.settings
    runtime.home.session_store().prune(settings.session_retention_days)
    prune_in_background(runtime)
    try:
        repl = Repl(runtime, options, console=console, input=input, output=output)
    except LLMError as exc:
        for note in runtime.notices(verbose=True, daily=False):
            console.print(Text(note, "qd.notice"))
        console.print(Text(f"qwen-dev: {exc}", "qd.error"))
        return exit_codes.for_error(exc)
    error = repl.open_session()
    if error is not None:
        await repl.close()
        console.print(Text(f"qwen-dev: {error}", "qd.error"))
        return exit_codes.USAGE_ERROR
    return await repl.run()
