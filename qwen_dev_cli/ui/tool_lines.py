"""What ``ask`` ran, one stderr line per tool call, when no terminal watches (text mode):
a CI log then shows what happened to the workspace.

    qwen-dev: ran run_command: make test (exit 0)
    qwen-dev: edited src/a.py (+3 -1)
    qwen-dev: ran read_file: src/a.py
    qwen-dev: read_file failed: Error: no such file: b.py

Denied calls are not "ran": the denial report says them, with how to allow them.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, TextIO

from ..agent.turn import FileChanged, ToolCallFinished, ToolCallStarted
from ..session.summary import clip

if TYPE_CHECKING:
    from typing import Any

    from ..agent.turn import AgentEvent

_EXIT = re.compile(r"exit code (-?\d+)")


def diff_counts(diff: str) -> tuple[int, int]:
    """Lines added and removed by a unified diff (its headers not counted)."""
    added = removed = 0
    for line in diff.splitlines():
        if line.startswith("+") and not line.startswith("+++"):
            added += 1
        elif line.startswith("-") and not line.startswith("---"):
            removed += 1
    return added, removed


def _target(arguments: dict[str, Any]) -> str:
    for key in ("command", "path", "pattern", "query", "url"):
        value = arguments.get(key)
        if isinstance(value, str):
            return clip(" ".join(value.split()), 100)
    return ""


class ToolLines:
    """An event sink writing one line to ``err`` per tool call that ran."""

    def __init__(self, err: TextIO) -> None:
        self.err = err
        self._calls: dict[str, dict[str, Any]] = {}
        self._edited: set[str] = set()

    def __call__(self, event: AgentEvent) -> None:
        if isinstance(event, ToolCallStarted):
            self._calls[event.call_id] = event.arguments
        elif isinstance(event, FileChanged):
            added, removed = diff_counts(event.diff)
            self._edited.add(event.call_id)
            self._say(f"edited {event.path} (+{added} -{removed})")
        elif isinstance(event, ToolCallFinished):
            arguments = self._calls.pop(event.call_id, {})
            if event.call_id in self._edited or event.status == "denied":
                self._edited.discard(event.call_id)
                return
            target = _target(arguments)
            call = f"{event.name}: {target}" if target else event.name
            # A command that ran says how it ended, whatever the status.
            command = isinstance(arguments.get("command"), str)
            found = _EXIT.match(event.output) if command else None
            if found:
                self._say(f"ran {call} (exit {found.group(1)})")
            elif command and event.output.startswith("timed out"):
                self._say(f"ran {call} (timed out)")
            elif event.status == "error":
                first = event.output.strip().splitlines()[0] if event.output.strip() else ""
                self._say(f"{call} failed: {clip(first, 100)}")
            else:
                self._say(f"ran {call}")

    def _say(self, line: str) -> None:
        self.err.write(f"qwen-dev: {line}\n")
        self.err.flush()
