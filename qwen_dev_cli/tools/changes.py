"""The session's file changes, so that the last one a tool made can be undone.

Every write a tool makes goes through :meth:`ChangeLog.apply`, which keeps the exact
bytes the file had before (or that it did not exist), and writes only if the file
still has the bytes the change was planned (and its diff shown) against; otherwise
:class:`FileChangedSince`. Both it and undo check confinement again
(:meth:`~qwen_dev_cli.tools.workspace.Workspace.recheck`) at the moment they write: a
folder swapped for a link to elsewhere since is refused.

Undo is two steps, so the REPL can ask in between: :meth:`ChangeLog.plan_undo` says
what the file is now and whether someone changed it after the tool wrote it;
:meth:`ChangeLog.undo` reverts it, first saving such later edits next to the file as
``<name>.qwen-dev-backup-<timestamp>``. :meth:`ChangeLog.undo_last`, for callers that
cannot ask, refuses to touch a file changed since.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from .base import ToolError
from .diff import unified_diff
from .read import decode_text, looks_binary, read_regular_bytes

if TYPE_CHECKING:
    from .base import WritePlan
    from .workspace import Workspace

#: Inserted between a file's name and a timestamp to name the copy of edits an undo
#: would otherwise discard.
BACKUP_INFIX = ".qwen-dev-backup-"


class FileChangedSince(ToolError):
    """The file is no longer what the change was planned (and shown) against."""


class UndoNeedsConfirmation(ToolError):
    """Undoing would replace edits made after the tool's write, and nobody can be asked."""


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
        workspace: the confinement root, checked again on undo (``None``: the caller
            confines).
    """

    path: Path
    display: str
    before: bytes | None
    after: bytes
    created_dirs: tuple[Path, ...] = ()
    tool: str = ""
    workspace: Workspace | None = None


@dataclass(frozen=True)
class UndoPlan:
    """What undoing the last change would do, worked out but not done.

    Args:
        change: the change to revert.
        current: the file's bytes now (``None``: it does not exist).
    """

    change: FileChange
    current: bytes | None

    @property
    def edited(self) -> bool:
        """Whether the file was changed (or removed) after the tool wrote it."""
        return self.current != self.change.after

    def diff(self) -> str:
        """The unified diff from the file as it is now to the file after the undo."""
        change = self.change
        return unified_diff(_as_text(self.current), _as_text(change.before), change.display)


@dataclass(frozen=True)
class UndoneChange:
    """What :meth:`ChangeLog.undo` did.

    Args:
        change: the change that was reverted.
        action: ``restored`` (previous content back) or ``deleted`` (the file was new).
        backup: where the edits made after the tool's write were saved, if any.
    """

    change: FileChange
    action: Literal["restored", "deleted"]
    backup: Path | None = None

    def describe(self) -> str:
        what = "deleted new file" if self.action == "deleted" else "restored"
        note = f" (your later edits are saved in {self.backup.name})" if self.backup else ""
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

    def apply(self, plan: WritePlan, *, workspace: Workspace, tool: str = "") -> FileChange:
        """Carry out an approved plan: confinement checked again now, and written only
        if the file still has the bytes the plan (and the diff the user saw) started
        from; :class:`FileChangedSince` otherwise, with nothing written."""
        path = workspace.recheck(plan.path)
        if current_bytes(path, plan.display) != plan.original:
            raise FileChangedSince(
                f"{plan.display} changed after this change was planned (the user or "
                "another program edited it); nothing was written"
            )
        return self._write(path, plan.content, display=plan.display, tool=tool, workspace=workspace)

    def write(self, path: Path, content: str, *, display: str = "", tool: str = "") -> FileChange:
        """Write ``content`` (UTF-8) to ``path``, remembering what was there; no check
        of what it was (see :meth:`apply`)."""
        return self._write(path, content, display=display or str(path), tool=tool, workspace=None)

    def _write(
        self, path: Path, content: str, *, display: str, tool: str, workspace: Workspace | None
    ) -> FileChange:
        before = current_bytes(path, display)
        created = _missing_parents(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        after = content.encode("utf-8")
        write_atomically(path, after)
        change = FileChange(path, display, before, after, created, tool, workspace)
        self._changes.append(change)
        return change

    def plan_undo(self) -> UndoPlan | None:
        """What undoing the latest change would do (``None``: nothing to undo); a
        ToolError when its file now resolves elsewhere (e.g. outside the workspace)."""
        if not self._changes:
            return None
        change = self._changes[-1]
        path = _recheck(change)
        return UndoPlan(change, current_bytes(path, change.display))

    def undo(self, plan: UndoPlan) -> UndoneChange:
        """Revert the change of ``plan`` (from :meth:`plan_undo`). When the file was
        edited after the tool's write, those edits are first saved to a backup file
        beside it. :class:`FileChangedSince` when the file changed again after
        ``plan`` was made (nothing is done then)."""
        if not self._changes or self._changes[-1] is not plan.change:
            raise ToolError("the change to undo is no longer the latest; nothing was undone")
        change = plan.change
        path = _recheck(change)
        current = current_bytes(path, change.display)
        if current != plan.current:
            raise FileChangedSince(
                f"{change.display} changed again while the undo was being decided; "
                "nothing was undone"
            )
        backup = save_backup(path, current) if plan.edited and current is not None else None
        self._changes.pop()
        if change.before is None:
            path.unlink(missing_ok=True)
            for folder in reversed(change.created_dirs):
                _remove_if_empty(folder, change.workspace)
            return UndoneChange(change, "deleted", backup)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, change.before)
        return UndoneChange(change, "restored", backup)

    def undo_last(self) -> UndoneChange | None:
        """Revert the latest change where nobody can be asked: refused
        (:class:`UndoNeedsConfirmation`) when the file was changed after the tool wrote
        it. ``None`` when there is nothing to undo."""
        plan = self.plan_undo()
        if plan is None:
            return None
        if plan.edited:
            raise UndoNeedsConfirmation(
                f"{plan.change.display} was changed after {plan.change.tool or 'the tool'} "
                "wrote it; undoing would replace those edits and there is no terminal to "
                "confirm that, so nothing was undone"
            )
        return self.undo(plan)


def current_bytes(path: Path, display: str) -> bytes | None:
    """A file's bytes now, ``None`` when it does not exist (never opens a FIFO or a
    device: those are a ToolError)."""
    if not os.path.lexists(path):
        return None
    return read_regular_bytes(path, display, limit=_NO_LIMIT)


_NO_LIMIT = 1 << 62


def save_backup(path: Path, data: bytes, now: float | None = None) -> Path:
    """Write ``data`` to a new file beside ``path``, named after it and the time;
    never replaces an existing file (nor follows a link planted under that name)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    for attempt in range(1000):
        suffix = "" if attempt == 0 else f"-{attempt}"
        backup = path.with_name(f"{path.name}{BACKUP_INFIX}{stamp}{suffix}")
        try:
            fd = os.open(backup, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            continue
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        return backup
    raise ToolError(f"cannot find a free backup name beside {path.name}")


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


def _recheck(change: FileChange) -> Path:
    return change.path if change.workspace is None else change.workspace.recheck(change.path)


def _as_text(data: bytes | None) -> str | None:
    if data is None:
        return None
    return "(binary content)\n" if looks_binary(data) else decode_text(data)[0]


def _missing_parents(path: Path) -> tuple[Path, ...]:
    missing: list[Path] = []
    folder = path.parent
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    return tuple(reversed(missing))


def _remove_if_empty(folder: Path, workspace: Workspace | None) -> None:
    with contextlib.suppress(OSError, ToolError):  # not empty, gone, or now elsewhere
        if workspace is not None:
            workspace.recheck(folder)
        folder.rmdir()
