"""Workspace confinement: every path a tool touches resolves inside one root.

Resolution follows symlinks (an existing link, or a dangling one, is replaced by its
target) before the check, so a link inside the workspace that points out of it is
refused like the outside path itself. This holds in every approval mode: confinement
is not a question the user is asked. What a tool planned is checked again
(:meth:`Workspace.recheck`) at the moment it is written, and when it is undone.

The user's private places (:mod:`.private`: credential stores, qwen-dev's own files)
are refused the same way when the workspace holds them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from .base import ToolError
from .private import private_places, within


class OutsideWorkspace(ToolError):
    """A path resolves outside the workspace root."""


class PrivatePath(ToolError):
    """A path is one of the user's private places, or below one."""


class Workspace:
    """The folder the assistant works in.

    Args:
        root: the workspace root; resolved (symlinks included) once, here.
        private: the user's private places (:func:`~.private.private_places`); None:
            the credential stores of the home folder.
    """

    def __init__(self, root: Path | str, private: Iterable[Path] | None = None) -> None:
        self.root = Path(root).resolve(strict=True)
        if not self.root.is_dir():
            raise NotADirectoryError(f"workspace root is not a directory: {self.root}")
        self.private = tuple(private_places(Path.home()) if private is None else private)
        # Only a place below the root can hold a path that resolves inside it; one that
        # holds the root is where the user chose to work. Usually none: no cost.
        self._private_inside = tuple(
            p for p in self.private if p != self.root and p.is_relative_to(self.root)
        )
        self._private_names: dict[Path, set[str]] = {}
        for place in self._private_inside:
            self._private_names.setdefault(place.parent, set()).add(place.name)

    def __repr__(self) -> str:
        return f"Workspace({str(self.root)!r})"

    def resolve(self, path: str | os.PathLike[str]) -> Path:
        """The real path of ``path`` (relative to the root unless absolute), or
        :class:`OutsideWorkspace` when it is not inside the root, :class:`PrivatePath`
        when it is a private place or below one."""
        raw = os.fspath(path)
        if not raw.strip():
            raise ToolError("path is empty")
        if "\0" in raw:
            raise ToolError("path contains a NUL character")
        candidate = Path(raw).expanduser()
        if not candidate.is_absolute():
            candidate = self.root / candidate
        try:
            resolved = candidate.resolve()
        except (RuntimeError, OSError) as exc:  # a symlink loop, or an unreadable link
            raise ToolError(f"cannot resolve {raw!r}: {exc}") from exc
        if not self.contains(resolved):
            via = " (through a symbolic link)" if _lexically_inside(candidate, self.root) else ""
            raise OutsideWorkspace(
                f"{raw!r} resolves to {resolved}, outside the workspace {self.root}{via}; "
                "tools only work inside the workspace"
            )
        if self.is_private(resolved):
            raise PrivatePath(
                f"{raw!r} is private to the user (credentials, or qwen-dev's own files); "
                "tools do not read or change it"
            )
        return resolved

    @property
    def holds_private(self) -> bool:
        """Whether any private place lies inside the workspace (the home folder, say)."""
        return bool(self._private_inside)

    def is_private(self, resolved: Path) -> bool:
        """Whether an already resolved path inside the root is a private place or below
        one."""
        return any(within(resolved, place) for place in self._private_inside)

    def private_names(self, folder: Path) -> set[str] | None:
        """The names in ``folder`` (met walking down from the root, links not followed)
        that are private places, or None: a walk that skips them never gets below one,
        so one lookup per folder does, not a comparison per file."""
        return self._private_names.get(folder)

    def recheck(self, resolved: Path) -> Path:
        """``resolved`` again, right before a write: :class:`OutsideWorkspace` when it now
        leads out (a folder swapped for a symbolic link since it was planned), a
        ToolError when it now leads to another file inside."""
        again = self.resolve(resolved)
        if again != resolved:
            raise ToolError(
                f"{self.display(resolved)} now resolves to {self.display(again)} (a folder "
                "on the way was replaced, e.g. by a symbolic link); nothing was changed"
            )
        return again

    def contains(self, resolved: Path) -> bool:
        """Whether an already resolved path is the root or below it."""
        return resolved == self.root or resolved.is_relative_to(self.root)

    def display(self, resolved: Path) -> str:
        """``resolved`` as the user and the model refer to it: relative to the root."""
        if resolved == self.root:
            return "."
        try:
            return resolved.relative_to(self.root).as_posix()
        except ValueError:
            return str(resolved)


def _lexically_inside(candidate: Path, root: Path) -> bool:
    normal = Path(os.path.normpath(candidate))
    return normal == root or normal.is_relative_to(root)
