"""Threat (issue 22, finding 1): a sandboxed command writes where git takes commands
from (``core.fsmonitor`` in ``.git/config``, a hook, a husky hooks folder, a config
include), and the user's next ``git status``, or a git-aware prompt as soon as
qwen-dev exits, runs the payload outside the sandbox with the provider key in its
environment.

In the sandbox those places are read-only and the git folder cannot be swapped, while
the model can still commit. Each test runs the real ``qwen-dev ask --approval yolo``,
the real bubblewrap and the real git afterwards, outside, as the user would."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from qwen_dev_cli.tools.git_guard import frozen_places

from .conftest import requires_sandbox, yolo

pytestmark = [
    pytest.mark.slow,
    requires_sandbox,
    pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed"),
]

GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
}


def git(workspace: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """git as the user runs it, outside the sandbox, after qwen-dev."""
    return subprocess.run(
        ["git", *args],
        cwd=workspace,
        capture_output=True,
        text=True,
        env={**os.environ, **GIT_ENV},
        timeout=30,
        check=False,
    )


@pytest.fixture
def repo(workspace: Path) -> Path:
    assert git(workspace, "init", "-q").returncode == 0
    assert git(workspace, "add", "app.py").returncode == 0
    assert git(workspace, "commit", "-qm", "first").returncode == 0
    return workspace


async def test_the_config_and_hooks_cannot_be_written(repo: Path, tmp_path: Path) -> None:
    outside = tmp_path / "OUTSIDE"
    attacks = [
        f"printf '[core]\\n\\tfsmonitor = \"touch {outside}; false\"\\n' >> .git/config",
        f"printf '#!/bin/sh\\ntouch {outside}\\n' > .git/hooks/pre-commit"
        " && chmod +x .git/hooks/pre-commit",
        "printf '* filter=x\\n' > .git/info/attributes",
        "mv .git .git-old && mkdir .git",
        "git config core.pager 'touch OUTSIDE-PAGER'",
    ]
    statuses, told = await yolo(repo, *attacks)
    # Each ran in the sandbox and failed there (or was refused as critical, the pager).
    assert statuses == ["error", "error", "error", "error", "denied"], told
    assert all("Read-only file system" in result for result in told[:3]), told
    assert "Device or resource busy" in told[3]
    status = git(repo, "status")
    commit = git(repo, "commit", "--allow-empty", "-qm", "by the user")
    assert status.returncode == 0, status.stderr
    assert commit.returncode == 0, commit.stderr
    assert not outside.exists()  # nothing ran outside the sandbox
    assert not (repo / "OUTSIDE-PAGER").exists()
    assert (repo / ".git" / "HEAD").is_file()  # the git folder was not swapped
    assert "fsmonitor" not in (repo / ".git" / "config").read_text()


async def test_the_model_can_still_commit_and_branch(repo: Path) -> None:
    command = (
        "echo more >> app.py && git add app.py"
        " && git -c user.name=m -c user.email=m@example.com commit -qm 'by the model'"
        " && git branch feature && git stash list && echo committed"
    )
    statuses, told = await yolo(repo, command)
    assert statuses == ["ok"]
    assert "exit code 0" in told[0], told
    assert "committed" in told[0]
    log = git(repo, "log", "--format=%s")
    assert log.stdout.splitlines()[0] == "by the model"
    assert "feature" in git(repo, "branch").stdout


async def test_a_hooks_folder_in_the_worktree_and_an_included_config_are_kept(
    repo: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "OUTSIDE"
    (repo / ".husky").mkdir()
    (repo / ".husky" / "pre-commit").write_text("#!/bin/sh\nexit 0\n")
    (repo / ".husky" / "pre-commit").chmod(0o755)
    (repo / "shared.gitconfig").write_text("[alias]\n\tst = status\n")
    assert git(repo, "config", "core.hooksPath", ".husky").returncode == 0
    assert git(repo, "config", "include.path", "../shared.gitconfig").returncode == 0
    frozen = frozen_places(repo)
    assert {repo / ".husky", repo / "shared.gitconfig"} <= set(frozen.read_only)
    attacks = [
        f"printf '#!/bin/sh\\ntouch {outside}\\n' > .husky/pre-commit",
        f"printf '[core]\\n\\tfsmonitor = \"touch {outside}; false\"\\n' >> shared.gitconfig",
    ]
    statuses, told = await yolo(repo, *attacks)
    assert statuses == ["error", "error"], told
    assert all("Read-only file system" in result for result in told), told
    assert git(repo, "status").returncode == 0
    assert git(repo, "commit", "--allow-empty", "-qm", "by the user").returncode == 0
    assert not outside.exists()


async def test_a_commondir_sending_git_elsewhere_is_put_back(repo: Path, tmp_path: Path) -> None:
    # Review finding: git takes config and hooks from the folder .git/commondir names.
    outside = tmp_path / "OUTSIDE"
    attack = (
        "mkdir evil && cp -r .git/objects .git/refs .git/HEAD evil/ && "
        f"printf '[core]\\n\\tfsmonitor = \"touch {outside}; false\"\\n' > evil/config && "
        "echo ../evil > .git/commondir && echo planted"
    )
    statuses, told = await yolo(repo, attack)
    assert statuses == ["ok"], told
    assert "put back .git/commondir" in told[0]
    assert not (repo / ".git" / "commondir").exists()
    assert git(repo, "status").returncode == 0
    assert not outside.exists()


async def test_a_hooks_folder_behind_a_link_is_kept(repo: Path, tmp_path: Path) -> None:
    # Review finding: .git/hooks -> ../.githooks was skipped as a link, and the link
    # could be swapped for a folder of the command's own.
    outside = tmp_path / "OUTSIDE"
    hooks = repo / ".git" / "hooks"
    shutil.rmtree(hooks)
    (repo / ".githooks").mkdir()
    hooks.symlink_to("../.githooks")
    hook = f"printf '#!/bin/sh\\ntouch {outside}\\n' > %s/pre-commit && chmod +x %s/pre-commit"
    statuses, told = await yolo(
        repo,
        hook % (".githooks", ".githooks"),
        "rm .git/hooks && mkdir .git/hooks && " + hook % (".git/hooks", ".git/hooks"),
    )
    assert statuses[0] == "error"
    assert "Read-only file system" in told[0]
    assert "put back .git/hooks" in told[1]
    assert hooks.is_symlink()
    assert git(repo, "commit", "--allow-empty", "-qm", "by the user").returncode == 0
    assert not outside.exists()
