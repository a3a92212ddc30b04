"""Putting the workspace back as a checkpoint recorded it.

Two steps, so the REPL can show what will change before anything does:
:func:`plan_restore` records the workspace as it is now (a checkpoint too, so even
what the restore replaces can be had back) and works out every path that differs
from the target; :func:`restore` carries that out. Files are written by git from the
target's tree (``read-tree`` into a scratch index, ``checkout-index``: links come back
as links, executable bits as they were, and a link standing where a folder should be
is replaced, never written through); paths the target did not have are deleted, and
folders left empty by that removed. Paths skipped at either end (too large,
unreadable) are left as they are.

A file changed since the session's latest checkpoint (the user's own edit, which no
checkpoint holds) that the restore would replace or delete is first copied beside
itself as ``<name>.qwen-dev-backup-<time>``, as ``/undo`` does. Something no
checkpoint holds standing where a file goes back (a folder of skipped or ignored files
where a file was, a file too large to record where a folder was) is moved aside under
such a name: git would delete it to make way.
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..tools.changes import BACKUP_INFIX, save_backup
from .shadow import Checkpoint, FileDelta, ShadowRepo, Skipped, commit_id


@dataclass(frozen=True)
class RestorePlan:
    """What restoring ``target`` would do, worked out but not done.

    Args:
        target: the checkpoint to go back to.
        now: the workspace as it was when the plan was made (recorded).
        deltas: each path that changes, as seen from now to the target.
        edited: those of them changed since the session's latest checkpoint before
            ``now`` (kept as backups before they are replaced).
        left_alone: paths that differ but were skipped at either end.
        diff: the unified diff from now to the target.
    """

    target: Checkpoint
    now: Checkpoint
    deltas: tuple[FileDelta, ...]
    edited: frozenset[str]
    left_alone: tuple[Skipped, ...]
    diff: str

    @property
    def empty(self) -> bool:
        return not self.deltas


@dataclass
class RestoreResult:
    """What :func:`restore` did."""

    written: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    #: (path, backup file name) of each edit kept aside.
    backups: list[tuple[str, str]] = field(default_factory=list)
    #: (path, new name) of what stood in a restored file's way, no checkpoint holding
    #: it, moved aside.
    moved: list[tuple[str, str]] = field(default_factory=list)
    #: Paths not touched, and why (a link in the way...).
    refused: list[Skipped] = field(default_factory=list)


def plan_restore(repo: ShadowRepo, session: str, target_commit: str) -> RestorePlan:
    """Record the workspace now (a checkpoint beside ``session``'s, ``<session>-rewinds``)
    and work out what going back to ``target_commit`` changes."""
    commit_id(target_commit)  # from a session file: checked before anything is done
    latest = repo.latest(session)
    # Kept under a ref of its own: a rewind looked at and cancelled leaves the session's
    # latest checkpoint as it was, so edits made since still count as the user's.
    now = repo.take(f"{session}-rewinds", "before rewind")
    target = repo.checkpoint(target_commit)
    exempt = now.skipped_paths | target.skipped_paths
    every = repo.changes(now.commit, target.commit)
    deltas = tuple(d for d in every if d.path not in exempt)
    differing = {d.path for d in every}
    left = tuple(
        {s.path: s for s in (*now.skipped, *target.skipped) if s.path in differing}.values()
    )
    changed_since = (
        {d.path for d in repo.changes(latest.commit, now.commit)} if latest is not None else set()
    )
    edited = frozenset(d.path for d in deltas if d.path in changed_since)
    return RestorePlan(target, now, deltas, edited, left, repo.patch(now.commit, target.commit))


def restore(repo: ShadowRepo, session: str, plan: RestorePlan) -> RestoreResult:
    """Carry out ``plan``: backups of edited files first, then deletions, then writes;
    a checkpoint of the result last (so later edits are told from restored files)."""
    result = RestoreResult()
    workspace = repo.workspace
    for delta in plan.deltas:
        if delta.path in plan.edited:
            _back_up(workspace, delta.path, result)
    writes: list[FileDelta] = []
    for delta in plan.deltas:
        if delta.status == "deleted":
            _delete(workspace, delta.path, result)
        else:
            writes.append(delta)
    writes = [d for d in writes if _clear_way(workspace, d, plan.now.tree, repo, result)]
    if writes:
        names = [d.path for d in writes]
        _write(repo, plan.target, names)
        result.written.extend(names)
    repo.take(session, "after rewind")
    return result


def _clear_way(
    workspace: Path, delta: FileDelta, now_tree: str, repo: ShadowRepo, result: RestoreResult
) -> bool:
    """Make way for ``delta``'s file: something no checkpoint holds standing where it
    goes back is moved aside, beside itself, as ``<name>.qwen-dev-backup-<time>``
    (git's ``checkout-index -f`` would delete it, a folder with all it holds, skipped
    and ignored files and the backups just made included). In the way: a folder that
    is not empty where the file goes; a regular file where a folder goes, or where a
    file the recording of now did not have comes back (an ignored file), unless that
    recording holds it. A link is replaced, never written through: it holds no data.
    False when the way could not be cleared (the path is left, and said)."""
    parts = Path(delta.path).parts
    for depth in range(1, len(parts) + 1):
        name = "/".join(parts[:depth])
        path = workspace / name
        try:
            info = path.lstat()
        except FileNotFoundError:
            return True
        except OSError as exc:
            result.refused.append(Skipped(delta.path, f"cannot look at {name}: {exc.strerror}"))
            return False
        last = depth == len(parts)
        if stat.S_ISDIR(info.st_mode):
            if not last:
                continue
            with contextlib.suppress(OSError), os.scandir(path) as entries:
                if next(entries, None) is None:
                    return True
        elif stat.S_ISLNK(info.st_mode) or (last and delta.status != "added"):
            return True  # a link, or a file the restore's own checkpoint holds
        elif _recorded(repo, now_tree, name):
            return True
        try:
            aside = _move_aside(path)
        except OSError as exc:
            why = f"{name} is in its way and cannot be moved aside: {exc.strerror or exc}"
            result.refused.append(Skipped(delta.path, why))
            return False
        result.moved.append((name, aside.name))
        return True
    return True


def _move_aside(path: Path) -> Path:
    """Rename ``path`` to a free ``<name>.qwen-dev-backup-<time>`` beside it."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for attempt in range(1000):
        suffix = "" if attempt == 0 else f"-{attempt}"
        aside = path.with_name(f"{path.name}{BACKUP_INFIX}{stamp}{suffix}")
        if not os.path.lexists(aside):
            path.rename(aside)
            return aside
    raise FileExistsError(f"no free backup name beside {path.name}")


def _recorded(repo: ShadowRepo, tree: str, name: str) -> bool:
    """Whether the tree ``tree`` holds a file at ``name``."""
    found = repo.git().run("ls-tree", "-z", "--name-only", tree, "--", name, check=False)
    return name.encode("utf-8", "surrogateescape") in found.split(b"\0")


def _back_up(workspace: Path, name: str, result: RestoreResult) -> None:
    path = workspace / name
    if _link_in_path(workspace, name):
        return
    with contextlib.suppress(OSError):
        info = path.lstat()
        if stat.S_ISREG(info.st_mode):
            backup = save_backup(path, path.read_bytes())
            result.backups.append((name, backup.name))


def _delete(workspace: Path, name: str, result: RestoreResult) -> None:
    if _link_in_path(workspace, name):
        result.refused.append(Skipped(name, "a folder on its way is a link"))
        return
    path = workspace / name
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        result.refused.append(Skipped(name, f"cannot delete it: {exc.strerror or exc}"))
        return
    result.deleted.append(name)
    folder = path.parent
    while folder != workspace and workspace in folder.parents:
        try:
            folder.rmdir()
        except OSError:
            break
        folder = folder.parent


def _write(repo: ShadowRepo, target: Checkpoint, names: list[str]) -> None:
    scratch = repo.path / f"rewind-index-{os.getpid()}"
    git = repo.git().with_index(scratch)
    try:
        git.run("read-tree", target.commit)
        paths = b"".join(n.encode("utf-8", "surrogateescape") + b"\0" for n in names)
        git.run("checkout-index", "-f", "-z", "--stdin", input=paths)
    finally:
        with contextlib.suppress(OSError):
            scratch.unlink()


def _link_in_path(workspace: Path, name: str) -> bool:
    """Whether a folder between the workspace and ``name`` is a link (deleting through
    it would delete outside the checkpoint's tree)."""
    folder = workspace
    for part in Path(name).parts[:-1]:
        folder = folder / part
        try:
            if stat.S_ISLNK(folder.lstat().st_mode):
                return True
        except OSError:
            return False
    return False
