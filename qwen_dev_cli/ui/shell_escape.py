"""``!command`` in the REPL: the user's own shell command, run at once.

The peers' habit (Gemini CLI, Claude Code, Qwen Code): a line starting with ``!`` is a
command for the shell, not a message. It runs as the model's ``run_command`` would, in
the workspace and in the OS sandbox (no network unless allowed, the private places
covered, the providers' keys hidden), but without asking: the user typed it. Its
output is shown, and added to the conversation as a user message, so the next
question can be about it ("why does this test fail?").

Without a sandbox (no bubblewrap, or one that cannot run here) the command still runs,
as the user's own shell would run it, but never silently: a notice first says that it
has the user's whole access and that its output goes to the model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text

from ..tools.base import CommandPlan
from ..tools.command import RUN_COMMAND, run_shell
from ..tools.sandbox import detect_sandbox
from .safe_text import printable
from .symbols import symbols_for

if TYPE_CHECKING:
    from collections.abc import Callable

    from rich.console import Console

    from ..core import Message
    from ..tools import ToolContext

#: What starts a shell escape.
PREFIX = "!"
#: Output lines shown in the terminal (all of it, up to the cap, goes to the model).
SHOWN_LINES = 200


def shell_command(line: str) -> str | None:
    """The command of a ``!command`` line (``None``: not one). ``!`` alone is none."""
    stripped = line.strip()
    if not stripped.startswith(PREFIX):
        return None
    command = stripped[len(PREFIX) :].strip()
    return command or None


async def run_user_command(
    command: str,
    context: ToolContext,
    console: Console,
    redact: Callable[[str], str] | None = None,
) -> Message:
    """Run ``command`` in the workspace and its sandbox, show its output, and return the
    message that brings it into the conversation."""
    plan = RUN_COMMAND.plan({"command": command}, context)
    assert isinstance(plan, CommandPlan)  # run_command plans commands
    found = detect_sandbox()
    if found.sandbox is None:
        console.print(
            Text(
                f"runs without an OS sandbox ({printable(found.detail)}): with all your "
                "access (your private files, the network), and its output goes to the model",
                "qd.notice",
            )
        )
    result = await run_shell(
        plan.command,
        plan.cwd,
        plan.timeout,
        context.output_cap,
        context.hidden_env,
        writable=context.workspace.root,
        network=context.allow_network,
        private=context.workspace.private,
        sandbox=found.sandbox,
    )
    text = result.for_model()
    if redact is not None:
        text = redact(text)
    symbols = symbols_for(console)
    status = "ok" if result.ok else "failed"
    console.print(Text(f"{symbols.tool} ! {printable(command)} {symbols.dot} {status}", "qd.tool"))
    lines = text.splitlines()[1:] or ["(no output)"]  # the first: the exit code, said above
    shown = lines[:SHOWN_LINES]
    if len(lines) > len(shown):
        shown.append(f"[{len(lines) - len(shown)} more lines given to the model]")
    console.print(Text(printable("\n".join(shown))))
    if not result.ok:
        console.print(Text(text.splitlines()[0], "qd.muted"))
    return context_message(command, text)


def context_message(command: str, output: str) -> Message:
    """The user's command and its outcome, as the model reads it (the command first:
    it is also what the session's title shows, when it opens the conversation)."""
    return {
        "role": "user",
        "content": (
            f"$ {command}\n{output}\n\n[I ran this shell command myself, in the workspace; "
            "its output is here for context: no need to run it again.]"
        ),
    }
