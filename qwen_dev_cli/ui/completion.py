"""Tab completion in the REPL: slash commands (with their help as the hint), their
arguments (provider names, approval modes, session ids...), and workspace paths
after ``@``."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from prompt_toolkit.completion import Completer, Completion

from .mentions import list_paths

if TYPE_CHECKING:
    from prompt_toolkit.completion import CompleteEvent
    from prompt_toolkit.document import Document

_COMMAND = re.compile(r"^/[\w-]*$")
_COMMAND_ARGUMENT = re.compile(r"^/([\w-]+)\s+(\S*)$")
_AT_PATH = re.compile(r"(?:^|\s)@([^\s@]*)$")


class CommandCatalog(Protocol):
    """What the completer needs to know of the slash commands."""

    def summaries(self) -> list[tuple[str, str]]:
        """``(name, one-line help)`` of each command, names without the slash."""
        ...

    def argument_choices(self, name: str) -> list[str]:
        """Values the argument of command ``name`` may take (empty: free text)."""
        ...


class ReplCompleter(Completer):
    """Completes ``/commands``, their first argument, and ``@paths`` under ``root``.

    Args:
        commands: the slash commands.
        root: the workspace folder that ``@`` paths are relative to.
    """

    def __init__(self, commands: CommandCatalog, root: Path) -> None:
        self.commands = commands
        self.root = root

    def get_completions(
        self, document: Document, complete_event: CompleteEvent
    ) -> Iterable[Completion]:
        before = document.text_before_cursor
        if _COMMAND.match(before):
            yield from self._command_names(before[1:])
            return
        argument = _COMMAND_ARGUMENT.match(before)
        if argument:
            yield from self._arguments(argument.group(1), argument.group(2))
            return
        mention = _AT_PATH.search(before)
        if mention:
            yield from self._paths(mention.group(1))

    def _command_names(self, typed: str) -> Iterable[Completion]:
        for name, summary in self.commands.summaries():
            if name.startswith(typed):
                yield Completion("/" + name, start_position=-len(typed) - 1, display_meta=summary)

    def _arguments(self, command: str, typed: str) -> Iterable[Completion]:
        for choice in self.commands.argument_choices(command):
            if choice.startswith(typed):
                yield Completion(choice, start_position=-len(typed))

    def _paths(self, typed: str) -> Iterable[Completion]:
        for entry in list_paths(self.root, typed):
            name = entry.path.rstrip("/").rpartition("/")[2] + ("/" if entry.is_dir else "")
            yield Completion(entry.path, start_position=-len(typed), display=name)
