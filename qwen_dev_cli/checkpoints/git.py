"""Running ``git`` on the shadow repository, and nothing of the user's.

Every call names our git folder and the workspace explicitly (``--git-dir``,
``--work-tree``), so git never looks for a repository itself: the workspace's own
``.git`` (a folder, or a file in a worktree or submodule) is never read, written,
locked or run. The environment is rebuilt from nothing but ``PATH``: no ``GIT_*``
variable of the user's (``GIT_DIR``, ``GIT_INDEX_FILE``, ``GIT_CONFIG_*``...) reaches
git, there is no system or global configuration, and hooks and the file-system
monitor are switched off on the command line, so a hostile cloned repository, or a
hostile environment, cannot make our git calls run anything.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

from ..tools.executables import absolute_path, find_program


class CheckpointError(Exception):
    """A checkpoint could not be taken or restored (git missing or failing, a full or
    read-only disk...). The turn goes on without one; the message says why."""


class CheckpointTimeout(CheckpointError):
    """A git call took too long and was stopped (a named pipe where git reads a
    ``.gitignore``, a hung network disk): the next one would most likely hang too."""


class CheckpointBusy(CheckpointError):
    """Another qwen-dev holds this workspace's checkpoint lock for too long."""


#: Settings given on every command line (they win over any configuration file):
#: nothing git could run on our behalf, no automatic garbage collection, no line-ending
#: or encoding conversion (a checkpoint restores the bytes it recorded).
SAFE_CONFIG: tuple[tuple[str, str], ...] = (
    ("core.hooksPath", os.devnull),
    ("core.fsmonitor", "false"),
    ("core.autocrlf", "false"),
    ("core.safecrlf", "false"),
    ("core.symlinks", "true"),
    ("core.fileMode", "true"),
    ("core.ignoreCase", "false"),
    ("core.quotePath", "false"),
    ("core.pager", "cat"),
    ("core.sshCommand", "false"),
    ("core.askPass", "false"),
    ("credential.helper", ""),
    ("diff.external", ""),
    ("gc.auto", "0"),
    ("maintenance.auto", "false"),
    ("commit.gpgSign", "false"),
    ("protocol.allow", "never"),
)

#: Seconds one git call may take before it is stopped: git reads every ``.gitignore``
#: it meets, and one that is a named pipe would block it for ever.
DEFAULT_TIMEOUT = 60.0
#: For adding files (a first checkpoint hashes every file).
ADD_TIMEOUT = 600.0

_IDENTITY = {
    "GIT_AUTHOR_NAME": "qwen-dev",
    "GIT_AUTHOR_EMAIL": "checkpoints@qwen-dev.invalid",
    "GIT_COMMITTER_NAME": "qwen-dev",
    "GIT_COMMITTER_EMAIL": "checkpoints@qwen-dev.invalid",
}


def find_git() -> str | None:
    """The ``git`` executable on ``PATH`` (its absolute entries: never one the workspace
    holds), or ``None``."""
    return find_program("git")


def clean_environment(git_dir: Path, index: Path) -> dict[str, str]:
    """The environment every git call runs in: ``PATH`` and a locale from the user's,
    the rest ours (no ``GIT_*`` variable of the user's survives)."""
    env = {
        "PATH": absolute_path(),
        "LC_ALL": "C",
        "HOME": str(git_dir),
        "XDG_CONFIG_HOME": str(git_dir),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_ATTR_NOSYSTEM": "1",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_OPTIONAL_LOCKS": "0",
        "GIT_INDEX_FILE": str(index),
    }
    env.update(_IDENTITY)
    return env


class Git:
    """``git`` on one shadow repository and one workspace.

    Args:
        executable: the git binary.
        git_dir: the shadow repository (under ``QWEN_DEV_HOME``).
        work_tree: the workspace.
        index: the index file the calls use (``GIT_INDEX_FILE``).
        timeout: seconds a call may take unless it says otherwise.
    """

    def __init__(
        self,
        executable: str,
        git_dir: Path,
        work_tree: Path,
        index: Path,
        *,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.executable = executable
        self.timeout = timeout
        self.git_dir = git_dir
        self.work_tree = work_tree
        self.env = clean_environment(git_dir, index)

    def with_index(self, index: Path) -> Git:
        """The same repository with another index file (a restore's scratch index)."""
        return Git(self.executable, self.git_dir, self.work_tree, index, timeout=self.timeout)

    def command(self, args: Sequence[str]) -> list[str]:
        line = [self.executable]
        if args[:1] != ("init",):
            line += [f"--git-dir={self.git_dir}", f"--work-tree={self.work_tree}"]
        line += ["--no-replace-objects", "--literal-pathspecs"]
        for key, value in SAFE_CONFIG:
            line += ["-c", f"{key}={value}"]
        return [*line, *args]

    def run(
        self,
        *args: str,
        input: bytes | None = None,
        check: bool = True,
        timeout: float | None = None,
    ) -> bytes:
        """Run ``git ARGS`` in the workspace; its standard output. CheckpointError when
        git cannot be started, takes longer than ``timeout`` seconds (default: the
        instance's; it is killed then) or (with ``check``) fails."""
        timeout = self.timeout if timeout is None else timeout
        try:
            done = subprocess.run(
                self.command(tuple(args)),
                input=input,
                capture_output=True,
                cwd=self.work_tree,
                env=self.env,
                check=False,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired as exc:
            raise CheckpointTimeout(
                f"git {_verb(args)} took more than {timeout:g}s and was stopped (a .gitignore "
                "that is a named pipe, or a very slow disk?)"
            ) from exc
        except OSError as exc:
            raise CheckpointError(f"cannot run git: {exc.strerror or exc}") from exc
        if check and done.returncode != 0:
            message = done.stderr.decode("utf-8", "replace").strip().splitlines()
            last = message[-1] if message else f"exit status {done.returncode}"
            raise CheckpointError(f"git {_verb(args)} failed: {last}")
        return done.stdout

    def text(self, *args: str) -> str:
        return self.run(*args).decode("utf-8", "surrogateescape").strip()


def _verb(args: Sequence[str]) -> str:
    """The git command of ``args`` (past the ``-c KEY=VALUE`` before it), for messages."""
    rest = list(args)
    while rest[:1] == ["-c"]:
        rest = rest[2:]
    return rest[0] if rest else "(nothing)"
