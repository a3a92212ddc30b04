"""``@path`` mentions: workspace files the user points at are attached to the message,
and whatever is not attached as written is said."""

from __future__ import annotations

from pathlib import Path

import pytest

from qwen_dev_cli.agent.context import ContextBudget
from qwen_dev_cli.tools import Workspace
from qwen_dev_cli.ui import mentions
from qwen_dev_cli.ui.mentions import MAX_ATTACH_BYTES, attach_mentions, list_paths


def test_a_mentioned_file_is_attached(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("print('hi')\n")
    result = attach_mentions("what does @app.py do?", tmp_path)
    assert result.attached == ("app.py",)
    assert result.warnings == ()
    assert result.text.startswith("what does @app.py do?\n\nFile `app.py`:\n```\nprint('hi')\n```")


def test_trailing_punctuation_is_not_part_of_the_path(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("x = 1\n")
    assert attach_mentions("look at @a.py, please", tmp_path).attached == ("a.py",)


def test_emails_and_repeats_are_left_alone(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("x = 1\n")
    result = attach_mentions("mail me@a.py, @a.py twice: @a.py", tmp_path)
    assert result.attached == ("a.py",)
    assert result.text.count("File `a.py`") == 1
    assert result.warnings == ()


def test_folders_and_missing_files_are_not_attached_and_each_is_said(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    result = attach_mentions("@src and @missing.py", tmp_path)
    assert result.attached == ()
    assert result.text == "@src and @missing.py"
    [folder, missing] = result.warnings
    assert folder.startswith("@src: a folder")
    assert missing == "@missing.py: no such file in the workspace; not attached"


def test_nothing_outside_the_workspace_is_read_and_the_user_is_told(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    (tmp_path / "secret.txt").write_text("key\n")
    (root / "link").symlink_to(tmp_path / "secret.txt")
    result = attach_mentions(f"@../secret.txt and @link and @{tmp_path}/secret.txt", root)
    assert result.attached == ()
    assert "key" not in result.text
    assert len(result.warnings) == 3
    assert all("outside the workspace" in w for w in result.warnings)


def test_confinement_is_the_workspaces(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One rule, one home: mentions ask Workspace.resolve, as the tools do."""
    (tmp_path / "a.py").write_text("x = 1\n")
    asked: list[str] = []
    original = Workspace.resolve

    def resolve(self: Workspace, path: str) -> Path:
        asked.append(str(path))
        return original(self, path)

    monkeypatch.setattr(Workspace, "resolve", resolve)
    attach_mentions("@a.py", tmp_path)
    list_paths(tmp_path, "sub/")
    assert asked == ["a.py", "sub"]


def test_binary_files_are_refused_with_a_warning(tmp_path: Path) -> None:
    (tmp_path / "blob.bin").write_bytes(b"\x00\x01\x02")
    result = attach_mentions("@blob.bin", tmp_path)
    assert result.attached == ()
    assert result.warnings == ("@blob.bin: looks binary; not attached",)


def test_without_a_budget_big_files_are_cut_at_the_byte_cap_and_said(tmp_path: Path) -> None:
    (tmp_path / "big.txt").write_text("y" * (MAX_ATTACH_BYTES + 10))
    result = attach_mentions("@big.txt", tmp_path)
    assert result.attached == ("big.txt",)
    assert "[... cut at 64 KiB" in result.text
    assert result.warnings == ("@big.txt: larger than 64 KiB: only its first 64 KiB are attached",)


def test_a_file_taking_a_large_share_of_the_window_is_attached_with_a_warning(
    tmp_path: Path,
) -> None:
    budget = ContextBudget.of(32768, 4096, "lab")
    (tmp_path / "mid.log").write_text("z" * 4 * 9000)  # ~9,000 tokens: 27% of the window
    result = attach_mentions("@mid.log", tmp_path, budget=budget)
    assert result.attached == ("mid.log",)
    [warning] = result.warnings
    assert "27% of the 32,768-token context window of lab" in warning
    assert "compacted sooner" in warning


def test_a_file_larger_than_the_window_allows_is_cut_to_fit_with_a_message(
    tmp_path: Path,
) -> None:
    budget = ContextBudget.of(8192, None, "lab")
    (tmp_path / "huge.log").write_text("line\n" * 12_000)  # 60 KB, ~15,000 tokens
    result = attach_mentions("@huge.log", tmp_path, budget=budget)
    assert result.attached == ("huge.log",)
    [warning] = result.warnings
    assert warning.startswith("@huge.log is ~14,999 tokens; attached files may take ~")
    assert "8,192-token context window of lab: only its first" in warning
    assert "cut here: the rest does not fit the context window" in result.text
    room = int(budget.prompt_limit * mentions.ROOM_SHARE)
    assert len(result.text) // 4 <= room + 100


def test_once_the_room_is_spent_further_files_are_refused(tmp_path: Path) -> None:
    budget = ContextBudget.of(8192, None, "lab")
    (tmp_path / "a.log").write_text("a" * 60_000)
    (tmp_path / "b.py").write_text("b = 1\n" * 100)
    result = attach_mentions("@a.log @b.py", tmp_path, budget=budget)
    assert result.attached == ("a.log",)
    assert result.warnings[-1].startswith("@b.py is ~149 tokens; attached files may take")
    assert result.warnings[-1].endswith("the files before it took them; not attached")


def test_paths_are_offered_inside_the_workspace_only(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    (root / "src").mkdir(parents=True)
    (root / "src" / "app.py").write_text("")
    (root / "out").symlink_to(tmp_path, target_is_directory=True)
    assert [e.path for e in list_paths(root, "src/a")] == ["src/app.py"]
    assert list_paths(root, "out/") == []
    assert list_paths(root, "../") == []
