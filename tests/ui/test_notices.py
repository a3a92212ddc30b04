"""Start-up notices: the offline one comes once a day through a NoticeLog."""

from __future__ import annotations

from pathlib import Path

from qwen_dev_cli.ui.notices import DAY, NoticeLog, workspace_notice


def test_a_notice_is_due_again_a_day_after_it_was_shown(tmp_path: Path) -> None:
    now = [1000.0]
    log = NoticeLog(tmp_path / "notices.json", get_time=lambda: now[0])
    assert log.due("offline")
    log.shown("offline")
    assert not log.due("offline")
    assert log.due("another")
    now[0] += DAY - 1
    assert not NoticeLog(tmp_path / "notices.json", get_time=lambda: now[0]).due("offline")
    now[0] += 1
    assert log.due("offline")


def test_an_unwritable_or_broken_file_only_costs_the_notice_again(tmp_path: Path) -> None:
    broken = tmp_path / "notices.json"
    broken.write_text("{not json")
    assert NoticeLog(broken).due("offline")
    blocked = tmp_path / "file" / "notices.json"
    (tmp_path / "file").write_text("")  # a file where the folder should be
    log = NoticeLog(blocked)
    log.shown("offline")  # no error
    assert log.due("offline")


def test_a_workspace_that_is_or_holds_the_home_folder_is_said(tmp_path: Path) -> None:
    home = tmp_path / "home" / "ada"
    (home / "project").mkdir(parents=True)
    said = workspace_notice(home, home)
    assert said is not None
    assert said.startswith("the workspace is your home folder")
    wider = workspace_notice(tmp_path / "home", home)
    assert wider is not None
    assert "which holds your home folder" in wider
    assert workspace_notice(home / "project", home) is None
    assert workspace_notice(tmp_path / "elsewhere", home) is None
