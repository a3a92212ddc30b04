"""Where git takes code from, found for the sandbox to keep read-only (the sandbox
itself, with real bubblewrap and git, is tested in tests/security/test_git_escape.py)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from qwen_dev_cli.tools.git_guard import frozen_places
from qwen_dev_cli.tools.sandbox import Bubblewrap, Seatbelt


def test_a_git_file_pointing_elsewhere_is_read_only_itself(tmp_path: Path) -> None:
    root = tmp_path / "linked"
    root.mkdir()
    (root / ".git").write_text("gitdir: /somewhere/.git/worktrees/linked\n")
    assert frozen_places(root).read_only == [root / ".git"]


def test_no_repository_no_cover_and_missing_code_folders_are_laid(tmp_path: Path) -> None:
    assert frozen_places(tmp_path).read_only == []
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "config").write_text("[core]\n")
    frozen = frozen_places(tmp_path)
    assert frozen.pins == [tmp_path / ".git"]
    assert frozen.read_only == [tmp_path / ".git" / "config"]
    assert frozen.made == [tmp_path / ".git" / "hooks", tmp_path / ".git" / "info"]


def test_the_home_folders_start_up_files_only_when_the_workspace_holds_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".config" / "git").mkdir(parents=True)
    (home / ".bashrc").write_text("alias ll='ls -l'\n")
    (home / ".gitconfig").write_text("[user]\n")
    assert frozen_places(tmp_path / "elsewhere", home).read_only == []
    kept = frozen_places(home, home).read_only
    assert set(kept) == {home / ".gitconfig", home / ".config" / "git", home / ".bashrc"}


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_both_sandboxes_are_told(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    config = tmp_path / ".git" / "config"
    argv = Bubblewrap("bwrap").argv("true", cwd=tmp_path, writable=tmp_path, network=False)
    joined = " ".join(argv)
    assert f"--bind {tmp_path / '.git'} {tmp_path / '.git'}" in joined
    assert f"--ro-bind {config} {config}" in joined
    assert joined.index(f"--bind {tmp_path} ") < joined.index(f"--ro-bind {config}")
    profile = Seatbelt().argv("true", cwd=tmp_path, writable=tmp_path, network=False)
    assert f"FROZEN0={config}" in profile
    assert '(deny file-write* (subpath (param "FROZEN0")))' in profile[2]
