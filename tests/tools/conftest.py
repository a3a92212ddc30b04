from __future__ import annotations

from pathlib import Path

import pytest

from qwen_dev_cli.tools import ToolContext, Workspace


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """An empty workspace folder, with a sibling folder "outside" it."""
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.txt").write_text("top secret\n")
    path = tmp_path / "ws"
    path.mkdir()
    return path


@pytest.fixture
def workspace(root: Path) -> Workspace:
    return Workspace(root)


@pytest.fixture
def ctx(workspace: Workspace, tmp_path: Path) -> ToolContext:
    return ToolContext(workspace, home=tmp_path / "home")
