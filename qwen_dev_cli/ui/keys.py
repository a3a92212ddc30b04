"""The REPL's prompt: its keys, persistent history, completion and status toolbar.

Enter sends. Alt+Enter (Esc then Enter, on terminals without an Alt key) starts a new
line; pasted text keeps its newlines and stays one message (prompt-toolkit turns
bracketed paste into one insertion). Ctrl-C clears a line being typed, and on an
empty line raises ``KeyboardInterrupt`` so the REPL can say how to leave; Ctrl-D on an
empty line leaves (prompt-toolkit's ``EOFError``).

Ctrl-U kills from the cursor back to the start of the whole message, not of its current
line: in readline (bash, python) the line being edited is the whole entry, recalled
multi-line ones included, so Ctrl-U at the end of a recalled entry empties it and
Ctrl-Y brings it back. prompt-toolkit's own Ctrl-U stops at the newline before the
cursor, which left a recalled multi-line message mostly in place.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from prompt_toolkit import PromptSession
from prompt_toolkit.filters import Condition
from prompt_toolkit.history import FileHistory, History, InMemoryHistory
from prompt_toolkit.key_binding import KeyBindings

from .theme import prompt_style

if TYPE_CHECKING:
    from pathlib import Path

    from prompt_toolkit.completion import Completer
    from prompt_toolkit.input import Input
    from prompt_toolkit.key_binding import KeyPressEvent
    from prompt_toolkit.output import Output

    from .statusbar import StatusBar

#: The hint shown after Ctrl-C on an empty prompt.
LEAVE_HINT = "(to leave, press Ctrl-D or type /exit)"
#: How often the idle prompt redraws its status bar (seconds).
TOOLBAR_REFRESH = 0.25


log = logging.getLogger(__name__)


class _QuietFileHistory(FileHistory):
    """A history file that a full disk cannot turn into a crash at the prompt."""

    def store_string(self, string: str) -> None:
        try:
            super().store_string(string)
        except OSError as exc:
            log.info("input history not saved: %s", exc)


def repl_prompt(
    history: Path,
    completer: Completer,
    status: StatusBar,
    *,
    input: Input | None = None,
    output: Output | None = None,
) -> PromptSession[str]:
    """The prompt: history kept in ``history`` (created private), the status bar as its
    bottom toolbar, redrawn every :data:`TOOLBAR_REFRESH` seconds."""
    kept: History
    try:
        history.parent.mkdir(parents=True, exist_ok=True)
        if not history.exists():
            history.touch(mode=0o600)
        kept = _QuietFileHistory(os.fspath(history))
    except OSError as exc:  # a read-only or full home: this session's history only
        log.info("input history not kept in %s: %s", history, exc)
        kept = InMemoryHistory()
    return PromptSession(
        message=[("class:qd.prompt", f"{status.symbols.prompt} ")],
        prompt_continuation=lambda width, line, wrap: " " * width,
        history=kept,
        completer=completer,
        complete_while_typing=True,
        key_bindings=repl_key_bindings(),
        bottom_toolbar=status.toolbar,
        refresh_interval=TOOLBAR_REFRESH,
        style=prompt_style(),
        input=input,
        output=output,
    )


def repl_key_bindings() -> KeyBindings:
    bindings = KeyBindings()

    @bindings.add("escape", "enter")
    def _newline(event: KeyPressEvent) -> None:
        event.current_buffer.insert_text("\n")

    @bindings.add("c-u")
    def _kill_to_start(event: KeyPressEvent) -> None:
        buffer = event.current_buffer
        killed = buffer.delete_before_cursor(count=buffer.cursor_position)
        if killed:
            event.app.clipboard.set_text(killed)

    @bindings.add("c-c")
    def _interrupt(event: KeyPressEvent) -> None:
        buffer = event.current_buffer
        if buffer.text:
            buffer.reset()
        else:
            event.app.exit(exception=KeyboardInterrupt(), style="class:aborting")

    _add_rewind_key(bindings)
    return bindings


def approval_keys(cycle: Callable[[], None]) -> KeyBindings:
    """Shift+Tab cycles the approval mode (``cycle``), as in the peers' prompts."""
    bindings = KeyBindings()

    @bindings.add("s-tab")
    def _cycle_approval(event: KeyPressEvent) -> None:
        cycle()
        event.app.invalidate()  # the status bar shows the new mode at once

    return bindings


#: What Esc Esc at an empty prompt runs.
REWIND_COMMAND = "/rewind"


def _add_rewind_key(bindings: KeyBindings) -> None:
    """Esc Esc at an empty prompt: ``/rewind``, as in Claude Code and Gemini CLI."""

    @bindings.add("escape", "escape", filter=Condition(_prompt_is_empty))
    def _rewind(event: KeyPressEvent) -> None:
        event.app.exit(result=REWIND_COMMAND)


def _prompt_is_empty() -> bool:
    from prompt_toolkit.application.current import get_app

    return not get_app().current_buffer.text
