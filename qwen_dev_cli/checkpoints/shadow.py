"""Checkpoints of a workspace in a shadow git repository under ``QWEN_DEV_HOME``.

One repository per workspace (``checkpoints/<key>/``, a bare repository with its own
index), one ref per session (``refs/sessions/<id>``), one commit per checkpoint. A
checkpoint asks git which paths differ from the index (``ls-files -m -o -d
--exclude-standard``: the index's stat data makes this incremental, so an unchanged
10,000-file workspace costs a few tens of milliseconds), looks at only those, updates
the index with them (``update-index``), and writes the tree (``write-tree``, whose
cached subtrees are reused) and a commit (``commit-tree``, ``update-ref``). Nothing
changed since the session's last checkpoint: that commit is the checkpoint again.

What is recorded is what git would track: the workspace's ``.gitignore`` files (and
its ``.git/info/exclude``) are honoured, symbolic links are recorded as links (never
followed), and a file over the size limit, one that cannot be read, a nested git
repository or a socket is skipped; the checkpoint lists what it skipped and why, and
a restore leaves those paths alone. The workspace need not be a git repository; when
it is one (a folder, a worktree or a submodule), its ``.git`` is never touched
(:mod:`.git`).

Two processes in one workspace take turns: a checkpoint holds an exclusive lock on
the shadow repository (:class:`~.git.CheckpointBusy` after a wait).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import stat
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..tools.changes import write_atomically
from .git import ADD_TIMEOUT, DEFAULT_TIMEOUT, CheckpointBusy, CheckpointError, Git, find_git

#: Files larger than this are not recorded (bytes): 10 MiB.
DEFAULT_MAX_FILE_BYTES = 10 * 1024 * 1024
#: Paths one checkpoint may have to look at (a first checkpoint: every file); past it
#: the workspace is too large to record (a home folder, say), and turns go on without.
MAX_PATHS = 250_000
#: Bytes of new or changed files one checkpoint may record.
MAX_NEW_BYTES = 2 << 30
#: How long a checkpoint waits for another process's (seconds).
DEFAULT_LOCK_WAIT = 10.0
#: New checkpoints before the shadow repository is packed: their trees and commits are
#: written loose (a disk block each), their files into a small pack each.
PACK_EVERY = 16

#: Highest-precedence attributes: no line-ending, filter or encoding conversion, so a
#: restore gives back exactly the recorded bytes whatever the workspace's .gitattributes.
_ATTRIBUTES = "* -text -filter -ident !eol !working-tree-encoding !diff !merge\n"
_REF_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
#: A checkpoint's id: a commit's full hexadecimal name (SHA-1 or SHA-256). Ids come
#: back from session files, which are data: anything else (``--output=FILE``, which
#: ``diff-tree`` would take as an option and truncate FILE with, or revision syntax)
#: is refused before git sees it.
_COMMIT_ID = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")


@dataclass(frozen=True)
class Skipped:
    """A path a checkpoint did not record, and why (``larger than 10 MiB``...)."""

    path: str
    reason: str


@dataclass(frozen=True)
class Checkpoint:
    """The workspace as it was at one moment.

    Args:
        commit: the shadow repository's commit.
        tree: its tree (equal trees: equal workspaces).
        skipped: paths not recorded, with the reason.
    """

    commit: str
    tree: str
    skipped: tuple[Skipped, ...] = ()

    @property
    def skipped_paths(self) -> frozenset[str]:
        return frozenset(item.path for item in self.skipped)


@dataclass(frozen=True)
class FileDelta:
    """One path that differs between two checkpoints: ``added``, ``deleted``,
    ``modified`` (content, mode or type) as seen going from the first to the second."""

    path: str
    status: str


def workspace_key(workspace: Path) -> str:
    """The folder name of ``workspace``'s shadow repository: its name, for people, and
    a hash of its resolved path."""
    resolved = str(workspace.resolve())
    digest = hashlib.sha256(resolved.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    name = _REF_UNSAFE.sub("_", workspace.resolve().name)[:40] or "root"
    return f"{name}-{digest}"


class ShadowRepo:
    """The checkpoints of one workspace.

    Args:
        workspace: the folder recorded.
        root: where shadow repositories live (``QWEN_DEV_HOME/checkpoints``).
        max_file_bytes: files larger than this are skipped.
        lock_wait: how long to wait for another process's checkpoint (seconds).
        git: the git executable (default: ``git`` on ``PATH``).
        readable: whether a file can be read; default: whether it opens.
        exclude: places never recorded (nor restored) when inside the workspace: the
            user's credential stores and qwen-dev's own folder (the shadow repositories
            themselves are always left out).
        timeout: seconds one git call may take (most take milliseconds).
    """

    def __init__(
        self,
        workspace: Path,
        root: Path,
        *,
        max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
        lock_wait: float = DEFAULT_LOCK_WAIT,
        git: str | None = None,
        readable: Callable[[Path], bool] | None = None,
        exclude: Iterable[Path] = (),
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.workspace = workspace.resolve()
        self.path = root / workspace_key(self.workspace)
        self.max_file_bytes = max_file_bytes
        self.lock_wait = lock_wait
        self._executable = git
        self._readable = readable or _readable
        self._exclude = (root, *exclude)
        self._timeout = timeout
        self._git: Git | None = None
        self._exclude_patterns: tuple[str, ...] = ()
        #: Lock files of the refs this object updates (a session's: only its process
        #: writes it), removed when found stale.
        self._ref_locks: set[str] = set()
        self._last: dict[str, Checkpoint] = {}
        self._thread_lock = threading.Lock()
        self._packing: threading.Thread | None = None

    # --- taking -------------------------------------------------------------------------

    def take(self, session: str, label: str) -> Checkpoint:
        """Record the workspace now as the next checkpoint of ``session``.

        Raises:
            CheckpointError: git is missing or failed, the disk is full or read-only.
            CheckpointBusy: another process kept the lock past ``lock_wait``.
        """
        self._ref_locks.add(f"{session_ref(session)}.lock")
        with self._locked():
            git = self._ready()
            skipped = self._update_index(git)
            tree = git.text("write-tree")
            last = self._last_of(git, session)
            if last is not None and last.tree == tree and last.skipped == skipped:
                return last
            message = label.strip() or "checkpoint"
            if skipped:
                body = [[item.path, item.reason] for item in skipped]
                message += "\n\n" + json.dumps({"skipped": body}, ensure_ascii=False)
            parent = ["-p", last.commit] if last is not None else []
            commit = git.run(
                "commit-tree", tree, *parent, input=message.encode("utf-8", "surrogateescape")
            )
            sha = commit.decode("ascii").strip()
            git.run("update-ref", session_ref(session), sha)
            checkpoint = Checkpoint(sha, tree, skipped)
            self._last[session] = checkpoint
            due = self._count_unpacked()
        if due:
            self._pack()
        return checkpoint

    def latest(self, session: str) -> Checkpoint | None:
        """The latest checkpoint of ``session``, ``None`` before its first."""
        return self._last_of(self._ready(), session)

    def checkpoint(self, commit: str) -> Checkpoint:
        """The recorded checkpoint ``commit`` (its tree and skipped paths)."""
        git = self._ready()
        raw = git.run("cat-file", "commit", commit_id(commit)).decode("utf-8", "surrogateescape")
        head, _, message = raw.partition("\n\n")
        tree = next((line.split()[1] for line in head.splitlines() if line.startswith("tree ")), "")
        if not tree:
            raise CheckpointError(f"checkpoint {commit[:12]} has no tree")
        return Checkpoint(commit, tree, _skipped_in(message))

    def close(self) -> None:
        """Wait for a background packing to end."""
        packing, self._packing = self._packing, None
        if packing is not None:
            packing.join()

    # --- comparing ----------------------------------------------------------------------

    def changes(self, old: str, new: str) -> list[FileDelta]:
        """The paths that differ from checkpoint ``old`` to checkpoint ``new``."""
        old, new = commit_id(old), commit_id(new)
        if old == new:
            return []
        raw = self._ready().run("diff-tree", "-r", "-z", "--no-renames", "--name-status", old, new)
        fields = raw.split(b"\0")
        deltas = []
        for status, path in zip(fields[0::2], fields[1::2], strict=False):
            if not status:
                continue
            name = path.decode("utf-8", "surrogateescape")
            deltas.append(FileDelta(name, _STATUS.get(status[:1], "modified")))
        return deltas

    def patch(self, old: str, new: str, *, max_lines: int = 400) -> str:
        """The unified diff from ``old`` to ``new`` (binary files named, not shown),
        cut after ``max_lines`` lines, saying so."""
        old, new = commit_id(old), commit_id(new)
        if old == new:
            return ""
        raw = self._ready().run("diff-tree", "-r", "-p", "--no-renames", "--no-color", old, new)
        lines = raw.decode("utf-8", "replace").splitlines()
        if len(lines) > max_lines:
            cut = len(lines) - max_lines
            lines = [*lines[:max_lines], f"... ({cut} more lines of diff not shown)"]
        return "\n".join(lines)

    # --- internals ----------------------------------------------------------------------

    def git(self) -> Git:
        """The git of this shadow repository, created on first use."""
        return self._ready()

    def _ready(self) -> Git:
        if self._git is not None and (self.path / "HEAD").is_file():
            return self._git
        self._last.clear()  # new, or removed meanwhile (its sessions were all pruned)
        executable = self._executable or find_git()
        if executable is None:
            raise CheckpointError("git is not installed (checkpoints need it)")
        git = Git(executable, self.path, self.workspace, self.path / "index", timeout=self._timeout)
        if not (self.path / "HEAD").is_file():
            self._create(git)
        self._write_excludes()
        self._git = git
        return git

    def _write_excludes(self) -> None:
        """The excluded places inside the workspace, as anchored patterns in the shadow
        repository's ``info/exclude`` (read with the workspace's ``.gitignore``)."""
        lines = []
        for place in self._exclude:
            with contextlib.suppress(OSError, RuntimeError, ValueError):
                relative = place.resolve().relative_to(self.workspace)
                if relative.parts:
                    lines.append("/" + _glob_escape(relative.as_posix()))
        # Also given to `ls-files` on its command line, whose patterns come before any
        # .gitignore's: in a home folder, a ".gitignore" saying "!.ssh" would otherwise
        # bring the private places back (info/exclude comes after the .gitignore files).
        self._exclude_patterns = tuple(lines)
        try:
            (self.path / "info").mkdir(exist_ok=True)
            # In one step: another process's git may be reading it right now.
            patterns = "".join(f"{line}\n" for line in lines).encode("utf-8")
            write_atomically(self.path / "info" / "exclude", patterns)
            # Checked each time, not only at creation: a process killed right after
            # `git init` left a repository without them, and the workspace's own
            # .gitattributes would then change what a restore writes.
            attributes = self.path / "info" / "attributes"
            if not _holds(attributes, _ATTRIBUTES.encode("utf-8")):
                write_atomically(attributes, _ATTRIBUTES.encode("utf-8"))
        except OSError as exc:
            raise CheckpointError(f"cannot write {self.path}: {exc.strerror or exc}") from exc

    def _create(self, git: Git) -> None:
        try:
            _private_folder(self.path)
        except OSError as exc:
            raise CheckpointError(f"cannot create {self.path}: {exc.strerror or exc}") from exc
        init = Git(git.executable, self.path, self.path, self.path / "index")
        init.run("init", "--bare", "--quiet", "--template=", str(self.path))
        try:
            info = self.path / "info"
            info.mkdir(exist_ok=True)
            write_atomically(info / "attributes", _ATTRIBUTES.encode("utf-8"))
            (self.path / "workspace").write_text(f"{self.workspace}\n", encoding="utf-8")
        except OSError as exc:
            raise CheckpointError(f"cannot write {self.path}: {exc.strerror or exc}") from exc

    def _excludes(self) -> tuple[str, ...]:
        """The workspace's own ``.git/info/exclude`` (a plain repository's), read as
        patterns like its ``.gitignore`` files."""
        dot_git = self.workspace / ".git"
        exclude = dot_git / "info" / "exclude"
        with contextlib.suppress(OSError):
            # Only a file in the repository itself: a linked .git or info folder would
            # have patterns read from wherever it leads.
            linked = dot_git.is_symlink() or (dot_git / "info").is_symlink()
            if stat.S_ISREG(exclude.lstat().st_mode) and not linked:
                return ("-c", f"core.excludesFile={exclude}")
        return ("-c", f"core.excludesFile={os.devnull}")

    def _update_index(self, git: Git) -> tuple[Skipped, ...]:
        """Bring the shadow index to the workspace; what was skipped."""
        excluded = [f"--exclude={pattern}" for pattern in self._exclude_patterns]
        listed = git.run(
            *self._excludes(), "ls-files", "-z", "-m", "-o", "-d", "--exclude-standard", *excluded
        )
        paths = sorted({p for p in listed.split(b"\0") if p})
        if len(paths) > MAX_PATHS:
            raise CheckpointError(
                f"{len(paths):,} files to record, more than the {MAX_PATHS:,} a checkpoint "
                "takes (is the workspace a whole home folder? a .gitignore can narrow it)"
            )
        new_bytes = 0
        adds: list[bytes] = []
        removes: list[bytes] = []
        skipped: list[Skipped] = []
        for raw in paths:
            name = raw.decode("utf-8", "surrogateescape")
            reason = self._why_skipped(name)
            if reason is None:
                adds.append(raw)
                with contextlib.suppress(OSError):
                    new_bytes += (self.workspace / name).lstat().st_size
                if new_bytes > MAX_NEW_BYTES:
                    raise CheckpointError(
                        f"more than {_size(MAX_NEW_BYTES)} of new or changed files to record"
                    )
            elif reason == "":
                removes.append(raw)
            else:
                removes.append(raw.rstrip(b"/"))
                skipped.append(Skipped(name.rstrip("/"), reason))
        if removes:
            git.run("update-index", "-z", "--force-remove", "--stdin", input=_nul(removes))
        if adds:
            self._add(git, adds, skipped)
        return tuple(sorted(skipped, key=lambda s: s.path))

    def _add(self, git: Git, adds: list[bytes], skipped: list[Skipped]) -> None:
        """``update-index --add`` the paths; when git cannot read one after all (it
        changed meanwhile), each is added alone and the unreadable ones skipped."""
        # Above bigFileThreshold git streams blobs straight into one pack (bulk
        # check-in): a first checkpoint of 10,000 files is one pack, not 10,000 files.
        options = (
            *("-c", "core.bigFileThreshold=1"),
            *("update-index", "-z", "--add", "--remove", "--replace", "--stdin"),
        )
        try:
            git.run(*options, input=_nul(adds), timeout=ADD_TIMEOUT)
            return
        except CheckpointError:
            pass
        for raw in adds:
            try:
                git.run(*options, input=_nul([raw]), timeout=ADD_TIMEOUT)
            except CheckpointError as exc:
                name = raw.decode("utf-8", "surrogateescape")
                git.run("update-index", "-z", "--force-remove", "--stdin", input=_nul([raw]))
                skipped.append(Skipped(name, f"unreadable ({exc})"))

    def _why_skipped(self, name: str) -> str | None:
        """``None``: record the path; ``""``: it is gone (remove it from the index);
        otherwise why it is skipped."""
        if name.endswith("/"):
            return "a git repository inside the workspace"
        path = self.workspace / name
        try:
            info = path.lstat()
        except (FileNotFoundError, NotADirectoryError):  # a folder on its way is a file now
            return ""
        except OSError as exc:
            return f"unreadable ({exc.strerror})"
        if stat.S_ISLNK(info.st_mode):
            return None
        if stat.S_ISDIR(info.st_mode):
            return ""  # was a file; what it holds now is listed on its own
        if not stat.S_ISREG(info.st_mode):
            return "not a regular file"
        if info.st_size > self.max_file_bytes:
            return f"larger than {_size(self.max_file_bytes)} ({_size(info.st_size)})"
        if not self._readable(path):
            return "unreadable (permission denied)"
        return None

    def _last_of(self, git: Git, session: str) -> Checkpoint | None:
        if session in self._last:
            return self._last[session]
        found = git.run("rev-parse", "--quiet", "--verify", session_ref(session), check=False)
        commit = found.decode("ascii", "replace").strip()
        if not commit:
            return None
        last = self.checkpoint(commit)
        self._last[session] = last
        return last

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with self._thread_lock:
            try:
                _private_folder(self.path)
                fd = os.open(self.path / "qwen-dev.lock", os.O_RDWR | os.O_CREAT, 0o600)
            except OSError as exc:
                raise CheckpointError(f"cannot open {self.path}: {exc.strerror or exc}") from exc
            try:
                deadline = time.monotonic() + self.lock_wait
                while True:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:
                        if time.monotonic() >= deadline:
                            raise CheckpointBusy(
                                "another qwen-dev in this folder is taking a checkpoint "
                                f"(waited {self.lock_wait:g}s)"
                            ) from None
                        time.sleep(0.05)
                # Every git call that writes the index, or a session's ref, runs under
                # this lock: a lock file of git's found now was left by a git that was
                # killed (stopped at its timeout, or with the process), and would make
                # every later checkpoint of the workspace fail.
                for stale in ("index.lock", *self._ref_locks):
                    with contextlib.suppress(OSError):
                        (self.path / stale).unlink()
                yield
            finally:
                os.close(fd)

    def _count_unpacked(self) -> bool:
        """One more checkpoint written loose; whether it is time to pack. Counted in
        the repository (under its lock), not in this process: a headless ``ask`` takes a
        few checkpoints and exits, and its successors must still pack one day."""
        counter = self.path / "qwen-dev-unpacked"
        try:
            count = int(counter.read_text(encoding="ascii").strip() or 0)
        except (OSError, ValueError):
            count = 0
        count = max(0, count) + 1
        due = count >= PACK_EVERY
        with contextlib.suppress(OSError):
            write_atomically(counter, b"0" if due else str(count).encode("ascii"))
        return due

    def _pack(self) -> None:
        """In the background: the loose objects packed, and the small packs rolled up
        geometrically (cheap: the big first pack is left as it is)."""
        if self._packing is not None and self._packing.is_alive():
            return
        git = self._ready()

        def pack() -> None:
            with contextlib.suppress(CheckpointError), self._locked():
                git.run(
                    *("repack", "-d", "-q", "--geometric=2", "--no-write-bitmap-index"),
                    timeout=ADD_TIMEOUT,
                )

        self._packing = threading.Thread(target=pack, name="checkpoint-pack", daemon=True)
        self._packing.start()


_STATUS = {b"A": "added", b"D": "deleted", b"M": "modified", b"T": "modified"}


def session_ref(session: str) -> str:
    """The ref that holds ``session``'s checkpoints."""
    return f"refs/sessions/{_REF_UNSAFE.sub('_', session) or 'session'}"


def commit_id(text: str) -> str:
    """``text`` if it is a checkpoint's id (a full commit name); CheckpointError if not."""
    if not _COMMIT_ID.fullmatch(text):
        raise CheckpointError(f"not a checkpoint: {text[:60]!r}")
    return text


def _private_folder(path: Path) -> None:
    """Create ``path`` and its parent (the folder of all shadow repositories) readable by
    the user only: they hold copies of the workspaces' files, ``.env`` files included."""
    for folder in (path.parent, path):
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        with contextlib.suppress(OSError):
            if folder.stat().st_mode & 0o077:
                folder.chmod(0o700)


def _holds(path: Path, data: bytes) -> bool:
    """Whether ``path`` is a regular file holding exactly ``data``."""
    try:
        return stat.S_ISREG(path.lstat().st_mode) and path.read_bytes() == data
    except OSError:
        return False


def _glob_escape(text: str) -> str:
    return re.sub(r"([\\*?\[\] ])", r"\\\1", text)


def _nul(paths: list[bytes]) -> bytes:
    return b"".join(p + b"\0" for p in paths)


def _skipped_in(message: str) -> tuple[Skipped, ...]:
    for block in message.split("\n\n")[1:]:
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            data = json.loads(block)
            return tuple(Skipped(str(p), str(r)) for p, r in data.get("skipped", []))
    return ()


def _readable(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except OSError:
        return False
    os.close(fd)
    return True


def _size(count: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}".replace(".0 ", " ")
    return f"{count} bytes"
