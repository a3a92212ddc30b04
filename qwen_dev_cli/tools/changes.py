"""The session's file changes, so that the last one a tool made can be undone.

Every write a tool makes goes through :meth:`ChangeLog.write`, which keeps the exact
bytes the file had before (or that it did not exist). :meth:`ChangeLog.undo_last`
puts them back, most recent change first: the REPL's ``/undo``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal


@dataclass(frozen=True)
class FileChange:
    """One write a tool made.

    Args:
        path: the resolved file.
        display: the path as shown to the user (relative to the workspace).
        before: the previous bytes, ``None`` when the file did not exist.
        after: the bytes written.
        created_dirs: folders created for the file, outermost first.
        tool: the tool that wrote it.
    """

    path: Path
    display: str
    before: bytes | None
    after: bytes
    created_dirs: tuple[Path, ...] = ()
    tool: str = ""


@dataclass(frozen=True)
class UndoneChange:
    """What :meth:`ChangeLog.undo_last` did.

    Args:
        change: the change that was reverted.
        action: ``restored`` (previous content back) or ``deleted`` (the file was new).
        lost_edits: the file had been changed since the tool wrote it; those later
            changes are gone too.
    """

    change: FileChange
    action: Literal["restored", "deleted"]
    lost_edits: bool

    def describe(self) -> str:
        what = "deleted new file" if self.action == "deleted" else "restored"
        note = " (later edits to it were discarded)" if self.lost_edits else ""
        return f"{what} {self.change.display}{note}"


class ChangeLog:
    """The file changes tools made in this session, oldest first."""

    def __init__(self) -> None:
        self._changes: list[FileChange] = []

    def __len__(self) -> int:
        return len(self._changes)

    @property
    def changes(self) -> list[FileChange]:
        return list(self._changes)

    def write(self, path: Path, content: str, *, display: str = "", tool: str = "") -> FileChange:
        """Write ``content`` (UTF-8) to ``path``, remembering what was there."""
        before = path.read_bytes() if path.exists() else None
        created = _missing_parents(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        after = content.encode("utf-8")
        write_atomically(path, after)
        change = FileChange(path, display or str(path), before, after, created, tool)
        self._changes.append(change)
        return change

    def undo_last(self) -> UndoneChange | None:
        """Revert the most recent change; ``None`` when there is nothing to undo."""
        if not self._changes:
            return None
        change = self._changes.pop()
        current = change.path.read_bytes() if change.path.is_file() else None
        lost = current != change.after
        if change.before is None:
            change.path.unlink(missing_ok=True)
            for folder in reversed(change.created_dirs):
                _remove_if_empty(folder)
            return UndoneChange(change, "deleted", lost)
        change.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(change.path, change.before)
        return UndoneChange(change, "restored", lost)


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path``'s content in one step: a crash, Ctrl-C or a full disk midway
    leaves the old file, never a truncated one. Keeps the file's permissions."""
    mode = path.stat().st_mode & 0o7777 if path.exists() else None
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        if mode is not None:
            os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _missing_parents(path: Path) -> tuple[Path, ...]:
    missing: list[Path] = []
    folder = path.parent
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    return tuple(reversed(missing))


def _remove_if_empty(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not empty (something else lives there), or gone
        folder.rmdir()
