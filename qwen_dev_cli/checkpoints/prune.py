"""Checkpoints of sessions that are gone are let go, so the shadow repositories do not
grow for ever.

Sessions are pruned after ``[sessions] retention_days`` (and ``sessions delete``
removes one); their refs in every shadow repository then go too, and git's garbage
collection frees what no other session still holds. Objects younger than an hour are
kept (``gc --prune``), so a checkpoint being written by another process at
that moment is never cut from under it. A shadow repository left without any session is
removed whole, unless another process holds its lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import time
from collections.abc import Iterable
from pathlib import Path

from .git import ADD_TIMEOUT, CheckpointError, Git, find_git
from .shadow import session_ref

#: How long a session's ref must have been untouched before it can be let go.
QUIET_SECONDS = 86_400.0


def prune_checkpoints(
    root: Path, sessions: Iterable[str], *, git: str | None = None, now: float | None = None
) -> int:
    """Let go of the checkpoints under ``root`` of every session not in ``sessions``
    (the ids that still exist); returns how many sessions' checkpoints went."""
    executable = git or find_git()
    if executable is None or not root.is_dir():
        return 0
    names = list(sessions)
    keep = {session_ref(s) for s in names} | {session_ref(f"{s}-rewinds") for s in names}
    removed = 0
    for repository in sorted(root.iterdir()):
        if not (repository / "HEAD").is_file():
            continue
        with contextlib.suppress(CheckpointError, OSError):
            git_of = Git(executable, repository, repository, repository / "index")
            removed += _prune_one(git_of, keep, time.time() if now is None else now)
    return removed


def _prune_one(git: Git, keep: set[str], now: float) -> int:
    listed = git.text("for-each-ref", "--format=%(committerdate:unix) %(refname)", "refs/sessions/")
    refs: list[tuple[float, str]] = []
    for line in listed.splitlines():
        when, _, ref = line.partition(" ")
        with contextlib.suppress(ValueError):
            refs.append((float(when), ref))
    # A session created by another process after the caller listed the sessions has a
    # fresh ref: only refs untouched for a day can be a pruned session's.
    gone = [ref for when, ref in refs if ref not in keep and now - when > QUIET_SECONDS]
    if not gone:
        return 0
    if len(gone) == len(refs) and _remove_unless_locked(git.git_dir):
        return sum(1 for ref in gone if not ref.endswith("-rewinds"))
    for ref in gone:
        git.run("update-ref", "-d", ref)
    # Objects of the last hour stay: another process may be writing a checkpoint.
    git.run("gc", "--quiet", f"--prune=@{int(now - 3600)}", timeout=ADD_TIMEOUT)
    return sum(1 for ref in gone if not ref.endswith("-rewinds"))


def _remove_unless_locked(repository: Path) -> bool:
    """Remove a shadow repository no session holds, unless a process has it open."""
    fd = os.open(repository / "qwen-dev.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        shutil.rmtree(repository, ignore_errors=True)
        return True
    finally:
        os.close(fd)
