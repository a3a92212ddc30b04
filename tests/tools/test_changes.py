"""The change log keeps previous contents, and undo puts them back."""

from __future__ import annotations

from pathlib import Path

import pytest

from qwen_dev_cli.tools import (
    ChangeLog,
    FileChangedSince,
    OutsideWorkspace,
    UndoNeedsConfirmation,
    Workspace,
)
from qwen_dev_cli.tools.changes import BACKUP_INFIX, save_backup
from qwen_dev_cli.tools.write import plan_write


def test_undo_restores_the_previous_bytes_exactly(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    original = b"caf\xe9 \r\n\x00raw"
    path.write_bytes(original)
    log = ChangeLog()
    log.write(path, "new content\n", display="a.txt", tool="write_file")
    assert path.read_text() == "new content\n"
    undone = log.undo_last()
    assert undone is not None
    assert undone.action == "restored"
    assert undone.backup is None
    assert undone.describe() == "restored a.txt"
    assert path.read_bytes() == original


def test_undo_of_a_new_file_deletes_it_and_the_folders_made_for_it(tmp_path: Path) -> None:
    (tmp_path / "keep").mkdir()
    log = ChangeLog()
    log.write(tmp_path / "keep" / "new" / "deep" / "f.py", "x = 1\n", display="f.py")
    undone = log.undo_last()
    assert undone is not None
    assert undone.action == "deleted"
    assert undone.describe() == "deleted new file f.py"
    assert not (tmp_path / "keep" / "new").exists()
    assert (tmp_path / "keep").is_dir()


def test_undo_goes_back_one_change_at_a_time(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_text("v1")
    log = ChangeLog()
    log.write(path, "v2")
    log.write(path, "v3")
    assert len(log) == 2
    log.undo_last()
    assert path.read_text() == "v2"
    log.undo_last()
    assert path.read_text() == "v1"
    assert log.undo_last() is None


def test_undo_without_asking_refuses_to_replace_later_edits(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_text("v1")
    log = ChangeLog()
    log.write(path, "v2", display="a.txt", tool="write_file")
    path.write_text("the user's own edit")
    with pytest.raises(UndoNeedsConfirmation, match="no terminal to confirm"):
        log.undo_last()
    assert path.read_text() == "the user's own edit"
    assert len(log) == 1


def test_a_confirmed_undo_keeps_later_edits_in_a_backup(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_text("v1\n")
    log = ChangeLog()
    log.write(path, "v2\n", display="a.txt")
    path.write_text("the user's own edit\n")
    plan = log.plan_undo()
    assert plan is not None
    assert plan.edited
    assert "-the user's own edit\n+v1\n" in plan.diff()
    undone = log.undo(plan)
    assert path.read_text() == "v1\n"
    assert undone.backup is not None
    assert undone.backup.parent == tmp_path
    assert undone.backup.name.startswith("a.txt" + BACKUP_INFIX)
    assert undone.backup.read_text() == "the user's own edit\n"
    assert "saved in a.txt.qwen-dev-backup-" in undone.describe()


def test_an_undo_decided_on_a_file_that_changed_again_does_nothing(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_text("v1")
    log = ChangeLog()
    log.write(path, "v2", display="a.txt")
    path.write_text("edit one")
    plan = log.plan_undo()
    assert plan is not None
    path.write_text("edit two, made while the question was on screen")
    with pytest.raises(FileChangedSince):
        log.undo(plan)
    assert path.read_text() == "edit two, made while the question was on screen"
    assert len(log) == 1


def test_backups_never_replace_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    first = save_backup(path, b"one", now=0)
    second = save_backup(path, b"two", now=0)
    assert first != second
    assert (first.read_bytes(), second.read_bytes()) == (b"one", b"two")
    assert first.stat().st_mode & 0o777 == 0o600


def test_apply_writes_only_over_the_content_it_was_planned_on(
    workspace: Workspace, root: Path
) -> None:
    path = root / "a.txt"
    path.write_text("old\n")
    plan = plan_write(path, "a.txt", "old\n", "new\n", original=b"old\n")
    path.write_text("the user's edit\n")
    log = ChangeLog()
    with pytest.raises(FileChangedSince, match="changed after this change was planned"):
        log.apply(plan, workspace=workspace)
    assert path.read_text() == "the user's edit\n"
    path.write_text("old\n")
    change = log.apply(plan, workspace=workspace, tool="write_file")
    assert path.read_text() == "new\n"
    assert change.workspace is workspace


def test_apply_rechecks_confinement_when_it_writes(
    workspace: Workspace, root: Path, tmp_path: Path
) -> None:
    (root / "d").mkdir()
    plan = plan_write(root / "d" / "f.txt", "d/f.txt", None, "x\n", original=None)
    (root / "d").rmdir()
    (root / "d").symlink_to(tmp_path / "outside")
    with pytest.raises(OutsideWorkspace):
        ChangeLog().apply(plan, workspace=workspace)
    assert not (tmp_path / "outside" / "f.txt").exists()


def test_a_folder_that_gained_other_files_is_kept(tmp_path: Path) -> None:
    log = ChangeLog()
    log.write(tmp_path / "new" / "a.txt", "a")
    (tmp_path / "new" / "b.txt").write_text("someone else's")
    log.undo_last()
    assert not (tmp_path / "new" / "a.txt").exists()
    assert (tmp_path / "new" / "b.txt").exists()


def test_a_write_keeps_the_file_mode_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "run.sh"
    target.write_text("echo one\n", encoding="utf-8")
    target.chmod(0o750)
    ChangeLog().write(target, "echo two\n")
    assert target.read_text(encoding="utf-8") == "echo two\n"
    assert target.stat().st_mode & 0o777 == 0o750
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.sh"]
