"""The change log keeps previous contents, and undo puts them back."""

from __future__ import annotations

from pathlib import Path

from qwen_dev_cli.tools import ChangeLog


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
    assert not undone.lost_edits
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


def test_undo_reports_later_edits_it_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_text("v1")
    log = ChangeLog()
    log.write(path, "v2", display="a.txt")
    path.write_text("the user's own edit")
    undone = log.undo_last()
    assert undone is not None
    assert undone.lost_edits
    assert "later edits" in undone.describe()
    assert path.read_text() == "v1"


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
