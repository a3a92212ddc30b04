"""Threat: a cloned repository holds an executable ``git`` or ``bwrap`` at its root,
and the user's ``PATH`` has a relative entry (a stray ``:`` at either end means the
current folder, which is the workspace). qwen-dev runs git on its own before every turn
(checkpoints) and bubblewrap at start-up (the sandbox probe): it must never run the
workspace's. Real processes: the planted programs leave a mark when run."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from qwen_dev_cli.checkpoints import ShadowRepo, find_git
from qwen_dev_cli.tools.git_guard import frozen_places
from qwen_dev_cli.tools.sandbox import Bubblewrap, probe


def plant(workspace: Path, name: str, mark: Path) -> None:
    program = workspace / name
    program.write_text(f"#!/bin/sh\necho run >> {mark}\nexit 0\n")
    program.chmod(0o755)


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "README.md").write_text("# project\n")
    monkeypatch.chdir(ws)
    # An empty entry first: the current folder is searched before the system's.
    monkeypatch.setenv("PATH", os.pathsep + os.environ["PATH"] + os.pathsep)
    return ws


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_checkpoints_never_run_a_git_the_workspace_holds(workspace: Path, tmp_path: Path) -> None:
    mark = tmp_path / "ran"
    plant(workspace, "git", mark)
    git = find_git()
    assert git is not None
    assert Path(git).is_absolute()
    assert Path(git).parent != workspace
    repo = ShadowRepo(workspace, tmp_path / "home" / "checkpoints")
    checkpoint = repo.take("s1", "one")
    repo.close()
    assert len(checkpoint.commit) == 40
    assert not mark.exists()


def test_the_sandbox_probe_never_runs_a_bwrap_the_workspace_holds(
    workspace: Path, tmp_path: Path
) -> None:
    mark = tmp_path / "ran"
    plant(workspace, "bwrap", mark)
    status = probe("linux")
    assert not mark.exists()
    if isinstance(status.sandbox, Bubblewrap):
        assert Path(status.sandbox.executable).is_absolute()
        assert Path(status.sandbox.executable).parent != workspace


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_reading_the_workspace_git_config_never_runs_its_git(
    workspace: Path, tmp_path: Path
) -> None:
    mark = tmp_path / "ran"
    plant(workspace, "git", mark)
    (workspace / ".git").mkdir()
    (workspace / ".git" / "config").write_text("[include]\n\tpath = extra\n")
    frozen_places(workspace)
    assert not mark.exists()


async def test_an_mcp_server_named_by_a_bare_command_is_never_the_workspaces(
    workspace: Path, tmp_path: Path
) -> None:
    # The user's own servers ("npx ...") start in every workspace, unasked.
    from qwen_dev_cli.mcp.stdio import stdio_transport

    mark = tmp_path / "ran"
    plant(workspace, "planted-mcp", mark)
    problems: list[str] = []
    with (tmp_path / "err.log").open("wb") as errlog, pytest.raises(OSError, match="PATH"):
        async with stdio_transport(
            "planted-mcp",
            [],
            env={"PATH": os.environ["PATH"]},
            cwd=None,
            errlog=errlog,
            on_problem=problems.append,
        ):
            pass
    assert not mark.exists()
