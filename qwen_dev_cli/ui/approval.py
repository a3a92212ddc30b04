"""Asking the user before a tool call changes something: the REPL's ``Approver``.

A write shows its unified diff, coloured; a command shows itself, where it runs and
how risky it looks. The answer is one key: ``y`` yes, ``n`` no (then an optional
reason the model is told), and ``a``: for a write, yes and stop asking for edits (the
session goes on in auto-edit); for a command, always (this command, for the rest of
the session; offered for low and medium risk only). For commands also ``w`` yes with
network (this run of it may reach the network from its sandbox) and ``e`` edit the
command before running it. Enter, Esc and Ctrl-C mean no. The choice is echoed
(``→ yes``), so the screen shows what was decided.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from prompt_toolkit import PromptSession
from prompt_toolkit.key_binding import KeyBindings
from prompt_toolkit.keys import Keys
from rich.table import Table
from rich.text import Text

from ..agent.turn import ApprovalDecision
from .safe_text import printable
from .symbols import symbols_for

if TYPE_CHECKING:
    from prompt_toolkit.input import Input
    from prompt_toolkit.key_binding import KeyPressEvent
    from prompt_toolkit.output import Output
    from rich.console import Console

    from ..agent.turn import ApprovalRequest
    from ..mcp.project import ProjectServers

_NO_KEYS = ("enter", "escape", "c-c", "c-d")
#: What each key means, echoed once it is pressed.
_CHOSEN = {
    "y": "yes",
    "n": "no",
    "w": "yes, with network access for this run",
    "e": "edit the command",
}
_ALWAYS_COMMAND = "yes, and run this same command unasked for the rest of this session"
_ALWAYS_MCP = "yes, and call this tool unasked for the rest of this session"
_ALL_EDITS = (
    "yes, and no more questions about edits: approval is auto-edit for the rest of "
    "this session (commands still ask; /approval ask to be asked again)"
)


class InteractiveApprover:
    """Shows each :class:`ApprovalRequest` and asks the user.

    Args:
        console: where the request is shown.
        pause: returns a context manager the question runs in (the REPL takes its
            live display down meanwhile).
        input, output: prompt-toolkit input and output (tests pass a pipe and a
            ``DummyOutput``); ``None``: the terminal.
        allow_edits: switches the session to auto-edit when the user answers a write
            with "yes, and stop asking for edits"; ``None``: that is not offered.
    """

    def __init__(
        self,
        console: Console,
        *,
        pause: Callable[[], AbstractContextManager[object]] = contextlib.nullcontext,
        input: Input | None = None,
        output: Output | None = None,
        allow_edits: Callable[[], None] | None = None,
    ) -> None:
        self.console = console
        self.symbols = symbols_for(console)
        self._pause = pause
        self._input = input
        self._output = output
        self._allow_edits = allow_edits

    async def approve(self, request: ApprovalRequest) -> ApprovalDecision:
        # "Always" is remembered by the agent's approval policy, which then stops asking;
        # the dialog keeps no memory of its own.
        with self._pause():
            self.console.print(request_view(request, self.symbols.warning))
            return await self._ask(request)

    async def confirm(self, title: str, diff: str, question: str) -> bool:
        """Show ``title`` and ``diff`` and ask a yes/no ``question`` (``/undo`` of a file
        the user changed since); anything but ``y`` is no."""
        with self._pause():
            view = Table.grid(padding=(0, 1))
            view.add_column()
            view.add_row(Text(printable(f"{self.symbols.warning} {title}"), "qd.title"))
            if diff:
                view.add_row(coloured_diff(diff))
            self.console.print(view)
            return await self._key(f"{question} [y]es / [n]o: ", "yn") == "y"

    async def _ask(self, request: ApprovalRequest) -> ApprovalDecision:
        always = _ALWAYS_COMMAND
        if request.kind == "command" and request.allow_always:
            question = "Run it? [y]es / [n]o / [a]lways this session / [w]ith network / [e]dit: "
            keys = "ynawe"
        elif request.kind == "command":
            question = "Run it? [y]es / [n]o / [w]ith network / [e]dit: "
            keys = "ynwe"
        elif request.kind == "mcp":
            question = "Call it? [y]es / [n]o / [a]lways this tool this session: "
            keys = "yna"
            always = _ALWAYS_MCP
        elif request.allow_always and self._allow_edits is not None:
            question = "Apply this change? [y]es / [n]o / [a]ll: yes, and stop asking for edits: "
            keys = "yna"
            always = _ALL_EDITS
        else:
            question = "Apply this change? [y]es / [n]o: "
            keys = "yn"
        choice = await self._key(question, keys, always=always)
        if choice == "y":
            return ApprovalDecision(True)
        if choice == "a":
            if request.kind == "write" and self._allow_edits is not None:
                self._allow_edits()
            return ApprovalDecision(True, always=True)
        if choice == "w" and request.command is not None:
            return ApprovalDecision(True, network=True)
        if choice == "e" and request.command is not None:
            edited = (await self._line("Command: ", request.command)).strip()
            if edited:
                return ApprovalDecision(True, edited_command=edited)
        reason = (await self._line("Why not? (optional, told to the model): ")).strip()
        return ApprovalDecision(False, reason=reason or "the user declined")

    async def _key(self, question: str, keys: str, *, always: str = _ALWAYS_COMMAND) -> str:
        """Ask ``question`` until one of ``keys`` (or a key meaning no) is pressed; the
        choice is echoed under it."""
        choice = await self._read_key(question, keys)
        said = always if choice == "a" else _CHOSEN.get(choice, choice)
        self.console.print(Text(f"{self.symbols.arrow} {said}", "qd.title"))
        return choice

    async def _read_key(self, question: str, keys: str, *, no: str = "n") -> str:
        """The key pressed; ``no`` for a key that means no (Enter, Esc, Ctrl-C/D)."""
        bindings = KeyBindings()
        for key in keys:
            bindings.add(key)(_answer(key))
        for key in _NO_KEYS:
            bindings.add(key)(_answer(no))

        @bindings.add(Keys.Any)
        def _ignore(event: KeyPressEvent) -> None:
            pass

        session: PromptSession[str] = PromptSession(
            input=self._input, output=self._output, key_bindings=bindings
        )
        return await session.prompt_async(question, handle_sigint=False)

    async def _line(self, question: str, default: str = "") -> str:
        session: PromptSession[str] = PromptSession(input=self._input, output=self._output)
        try:
            return await session.prompt_async(question, default=default, handle_sigint=False)
        except (KeyboardInterrupt, EOFError):
            return ""


def _answer(key: str) -> Callable[[KeyPressEvent], None]:
    def handler(event: KeyPressEvent) -> None:
        event.app.exit(result=key)

    return handler


def request_view(request: ApprovalRequest, warning: str = "⚠") -> Table:
    """The request as the user sees it before answering (``warning``: its mark)."""
    view = Table.grid(padding=(0, 1))
    view.add_column()
    view.add_row(Text(printable(f"{warning} {request.tool}: {request.summary}"), "qd.title"))
    if request.kind == "command":
        facts = Table.grid(padding=(0, 2))
        facts.add_column()
        facts.add_column()
        command = Text(printable(request.command or ""), "qd.name")
        facts.add_row(Text("command", "qd.muted"), command)
        facts.add_row(Text("in", "qd.muted"), Text(printable(request.cwd or ".")))
        risk = Text(request.risk, f"qd.risk.{request.risk}")
        if request.risk_reasons:
            risk.append(f"  ({'; '.join(request.risk_reasons)})", "qd.muted")
        facts.add_row(Text("risk", "qd.muted"), risk)
        view.add_row(facts)
    if request.diff:
        view.add_row(coloured_diff(request.diff))
    return view


def coloured_diff(diff: str) -> Text:
    """A unified diff, its headers, additions, removals and hunk headers each styled."""
    text = Text()
    for line in diff.splitlines():
        if line.startswith(("+++", "---")):
            style = "qd.diff.header"
        elif line.startswith("+"):
            style = "qd.diff.add"
        elif line.startswith("-"):
            style = "qd.diff.del"
        elif line.startswith("@@"):
            style = "qd.diff.hunk"
        else:
            style = ""
        text.append(printable(line) + "\n", style)
    text.rstrip()
    return text


async def approve_project_servers(
    project: ProjectServers,
    console: Console,
    *,
    input: Input | None = None,
    output: Output | None = None,
) -> bool | None:
    """Before the REPL starts: show each command (or URL) a project's ``.mcp.json``
    would start, outside the sandbox, and ask once (the answer is remembered for this
    exact file by the caller). ``None``: Enter, Esc or Ctrl-C, a no for this session
    only, not to be remembered."""
    symbols = symbols_for(console)
    view = Table.grid(padding=(0, 2))
    view.add_column()
    view.add_column()
    for name, command in project.commands():
        view.add_row(Text(printable(name), "qd.name"), Text(printable(command)))
    console.print(
        Text(
            printable(
                f"{symbols.warning} This project's {project.path.name} ({project.path}) "
                "would start these MCP servers, outside the sandbox:"
            ),
            "qd.title",
        )
    )
    console.print(view)
    for note in project.notes:
        console.print(Text(printable(f"  {note}"), "qd.muted"))
    approver = InteractiveApprover(console, input=input, output=output)
    question = "Start them? [y]es / [n]o (remembered until the file changes): "
    choice = await approver._read_key(question, "yn", no="")
    said = {"y": "yes", "n": "no"}.get(choice, "not now (asked again next time)")
    console.print(Text(f"{symbols.arrow} {said}", "qd.title"))
    return {"y": True, "n": False}.get(choice)
