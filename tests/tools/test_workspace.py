"""Confinement: every path resolves inside the workspace, symlinks included."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from qwen_dev_cli.tools import OutsideWorkspace, ToolError, Workspace


def test_relative_and_absolute_paths_inside_resolve(workspace: Workspace, root: Path) -> None:
    (root / "src").mkdir()
    assert workspace.resolve("src/app.py") == root / "src" / "app.py"
    assert workspace.resolve(str(root / "src")) == root / "src"
    assert workspace.resolve(".") == root
    assert workspace.resolve("src/../README.md") == root / "README.md"


@pytest.mark.parametrize("path", ["../outside/secret.txt", "/etc/passwd", "~/.ssh/id_rsa", ".."])
def test_paths_outside_are_refused(workspace: Workspace, path: str) -> None:
    with pytest.raises(OutsideWorkspace, match="outside the workspace"):
        workspace.resolve(path)


def test_a_symlink_out_of_the_workspace_is_refused(workspace: Workspace, root: Path) -> None:
    (root / "link").symlink_to(root.parent / "outside")
    (root / "file-link").symlink_to(root.parent / "outside" / "secret.txt")
    for path in ("link/secret.txt", "link", "file-link", "link/new.txt"):
        with pytest.raises(OutsideWorkspace, match="symbolic link"):
            workspace.resolve(path)


def test_a_dangling_symlink_pointing_out_is_refused(workspace: Workspace, root: Path) -> None:
    (root / "trap").symlink_to(root.parent / "outside" / "not-yet.txt")
    with pytest.raises(OutsideWorkspace):
        workspace.resolve("trap")


def test_a_symlink_within_the_workspace_is_followed(workspace: Workspace, root: Path) -> None:
    (root / "real").mkdir()
    (root / "alias").symlink_to(root / "real")
    assert workspace.resolve("alias/x.py") == root / "real" / "x.py"


def test_a_workspace_reached_through_a_symlink_works(tmp_path: Path, root: Path) -> None:
    (tmp_path / "ws-link").symlink_to(root)
    workspace = Workspace(tmp_path / "ws-link")
    assert workspace.root == root
    assert workspace.resolve(str(tmp_path / "ws-link" / "a.py")) == root / "a.py"


def test_symlink_loops_and_bad_paths_are_tool_errors(workspace: Workspace, root: Path) -> None:
    os.symlink("loop-b", root / "loop-a")
    os.symlink("loop-a", root / "loop-b")
    with pytest.raises(ToolError):
        workspace.resolve("loop-a/x")
    with pytest.raises(ToolError, match="empty"):
        workspace.resolve("  ")
    with pytest.raises(ToolError, match="NUL"):
        workspace.resolve("a\0b")


def test_display_is_relative_to_the_root(workspace: Workspace, root: Path) -> None:
    assert workspace.display(root / "src" / "a.py") == "src/a.py"
    assert workspace.display(root) == "."
