"""Where git, run later outside the sandbox, takes commands from: kept read-only inside.

A sandboxed command may change the workspace, and that includes its git folder. Some
of what lives there is not data but code that git runs for the user afterwards, outside
the sandbox and with the user's whole environment: ``core.fsmonitor`` or an alias in
``.git/config``, a hook in ``.git/hooks``, a filter named in ``.git/info/attributes``,
a config file pulled in by ``include.path``, a hooks folder named by
``core.hooksPath`` (husky keeps hooks in the worktree). A git-aware shell prompt runs
``git status`` as soon as the user is back at it: writing one line there would be an
escape from the sandbox.

So the sandbox keeps those places read-only, and pins the git folder (a mount point
cannot be renamed, so ``mv .git x`` cannot swap it for another). Objects, refs, the
index and the logs stay writable: the model can still ``git add``, ``commit``,
``branch``, ``stash``; it cannot change the repository's configuration or its hooks.

Covered: the workspace's own repository (a ``.git`` folder, or a ``.git`` file pointing
elsewhere, which is then read-only itself) and its submodules' repositories under
``.git/modules``; and, when the workspace holds the home folder, the user's own git
configuration and shell start-up files. Not covered: a repository the command creates
where there was none, and repositories nested deeper in the workspace (see README).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from .executables import find_program

#: What, inside a git folder, git reads commands or code from.
_GIT_CODE = ("config", "config.worktree", "hooks", "info")
#: Folders git takes code from that must exist to be kept read-only (made if missing).
_GIT_CODE_FOLDERS = ("hooks", "info")
#: In the home folder: files a shell or git runs from later (only when writable).
_HOME_CODE = (
    ".gitconfig",
    ".config/git",
    ".bashrc",
    ".bash_profile",
    ".bash_login",
    ".profile",
    ".zshrc",
    ".zshenv",
    ".zprofile",
    ".zlogin",
    ".config/fish",
)
#: Configuration keys whose value names a file or folder git will read code from.
_PATH_KEYS = ("core.hookspath",)
_GIT_SECONDS = 5.0


@dataclass
class Frozen:
    """What the sandbox must keep as it is.

    Args:
        pins: folders bound onto themselves (they cannot be renamed or replaced).
        read_only: existing files and folders bound read-only.
        made: folders that did not exist and are laid read-only (and empty) there.
    """

    pins: list[Path] = field(default_factory=list)
    read_only: list[Path] = field(default_factory=list)
    made: list[Path] = field(default_factory=list)


def frozen_places(root: Path, home: Path | None = None) -> Frozen:
    """What to keep read-only below ``root``, the writable root of a sandboxed command."""
    frozen = Frozen()
    dot = root / ".git"
    if dot.is_symlink() or dot.is_file():
        frozen.read_only.append(dot)  # a pointer re-pointed would name another config
    elif dot.is_dir():
        frozen.pins.append(dot)
        for git_dir in [dot, *_submodule_repositories(dot)]:
            _freeze_repository(git_dir, root, frozen)
    home = home or Path.home()
    if home == root or home.is_relative_to(root):
        for name in _HOME_CODE:
            place = home / name
            if place.exists() and not place.is_symlink():
                frozen.read_only.append(place)
    return frozen


def _submodule_repositories(dot: Path) -> list[Path]:
    """The git folders of submodules (``.git/modules/NAME``, nested), bounded."""
    found: list[Path] = []
    modules = dot / "modules"
    if not modules.is_dir():
        return found
    for config in sorted(modules.rglob("config"))[:200]:
        if (config.parent / "HEAD").is_file() and not config.parent.is_symlink():
            found.append(config.parent)
    return found


def _freeze_repository(git_dir: Path, root: Path, frozen: Frozen) -> None:
    for name in _GIT_CODE:
        place = git_dir / name
        if place.is_symlink():
            # A link (hooks -> ../.githooks): what it leads to is frozen when it lies in
            # the root; the link itself cannot be bound, so the command's end checks it
            # was not replaced (:func:`restore_redirects`).
            try:
                target = place.resolve()
            except (OSError, RuntimeError):
                continue
            if target.is_relative_to(root) and target.exists():
                frozen.read_only.append(target)
            continue
        if place.exists():
            frozen.read_only.append(place)
        elif name in _GIT_CODE_FOLDERS:
            frozen.made.append(place)
    config = git_dir / "config"
    if config.is_file():
        for place in _named_by(config):
            target = place if place.is_absolute() else (git_dir.parent / place)
            try:
                target = target.resolve()
            except (OSError, RuntimeError):
                continue
            if target.is_relative_to(root) and target.exists():
                frozen.read_only.append(target)


def _named_by(config: Path) -> list[Path]:
    """Files and folders ``config`` (and what it includes) takes code from: its
    ``core.hooksPath`` and every included file. git itself reads them, so that the
    answer is git's; it is asked only when the file mentions either (cheap otherwise)."""
    try:
        text = config.read_text(encoding="utf-8", errors="replace").lower()
    except OSError:
        return []
    if "include" not in text and "hookspath" not in text:
        return []
    git = find_program("git")  # never one the workspace holds
    if git is None:
        return []
    try:
        listed = subprocess.run(
            [git, "config", "--file", str(config), "--includes", "--show-origin", "--list"],
            capture_output=True,
            text=True,
            timeout=_GIT_SECONDS,
            check=False,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    places: list[Path] = []
    for line in listed.splitlines():
        origin, _, entry = line.partition("\t")
        if origin.startswith("file:"):
            places.append(Path(origin.removeprefix("file:")))
        key, _, value = entry.partition("=")
        if key.lower() in _PATH_KEYS and value:
            places.append(Path(value).expanduser())
    return places


# --- what the sandbox cannot bind: checked after each command -----------------------

#: Kinds of state a watched place can be in, compared before and after a command.
_State = tuple[str, bytes]
#: The most bytes of a watched file compared and kept (commondir holds one path).
_MOST_KEPT = 4096


def redirect_snapshot(root: Path) -> dict[Path, _State]:
    """What could send git to code elsewhere and cannot be made read-only in the
    sandbox: ``commondir`` (git takes config and hooks from the folder it names; the
    git folder must stay writable for commits, so it could be created) and code places
    that are links. Compared after the command by :func:`restore_redirects`."""
    dot = root / ".git"
    if dot.is_symlink() or not dot.is_dir():
        return {}
    watched = [dot / "commondir", *sorted((dot / "worktrees").glob("*/commondir"))[:100]]
    watched += [dot / name for name in _GIT_CODE if (dot / name).is_symlink()]
    return {place: _state(place) for place in watched}


def restore_redirects(root: Path, before: dict[Path, _State]) -> list[str]:
    """Put back what a command changed among the places :func:`redirect_snapshot` saw
    (and any ``commondir`` it created); one line for the model and the user each."""
    after = redirect_snapshot(root)
    notes: list[str] = []
    for place in sorted(set(before) | set(after)):
        was = before.get(place, ("none", b""))
        now = _state(place)
        if now == was:
            continue
        try:
            _remove(place)
            if was[0] == "link":
                os.symlink(was[1].decode("utf-8", "surrogateescape"), place)
            elif was[0] == "file":
                place.write_bytes(was[1])
        except OSError as exc:
            notes.append(f"{place}: changed by the command and could not be put back: {exc}")
            continue
        shown = place.relative_to(root) if place.is_relative_to(root) else place
        notes.append(
            f"qwen-dev: put back {shown}, which the command changed: git would have taken "
            "code from elsewhere when you next run it"
        )
    return notes


def _state(place: Path) -> _State:
    try:
        if place.is_symlink():
            return ("link", os.readlink(place).encode("utf-8", "surrogateescape"))
        if place.is_file():
            with place.open("rb") as handle:
                return ("file", handle.read(_MOST_KEPT + 1))
        if place.exists():
            return ("other", b"")
    except OSError:
        return ("unreadable", b"")
    return ("none", b"")


def _remove(place: Path) -> None:
    if place.is_dir() and not place.is_symlink():
        shutil.rmtree(place)
    elif place.is_symlink() or place.exists():
        place.unlink()
