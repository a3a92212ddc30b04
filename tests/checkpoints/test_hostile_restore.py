"""Review of issue 25 with hostile inputs: a commit id read from a session file is never
an option of git's, and a restore never deletes what no checkpoint holds (a folder of
skipped or ignored files, or a file, standing where the checkpoint had something else):
it is moved aside. Real git on real folders."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from qwen_dev_cli.checkpoints import CheckpointError, ShadowRepo, plan_restore, restore

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "README.md").write_text("# project\n")
    (ws / ".gitignore").write_text("*.log\n")
    return ws


@pytest.fixture
def repo(workspace: Path, tmp_path: Path) -> Iterator[ShadowRepo]:
    shadow = ShadowRepo(workspace, tmp_path / "home" / "checkpoints", max_file_bytes=100)
    yield shadow
    shadow.close()


@pytest.mark.parametrize("where", ["changes", "patch", "checkpoint", "plan"])
def test_a_commit_id_that_is_an_option_is_refused_and_writes_nothing(
    workspace: Path, repo: ShadowRepo, tmp_path: Path, where: str
) -> None:
    # A session file's checkpoint field is data: "--output=FILE" given to diff-tree
    # would truncate FILE (any file of the user's) when /rewind lists the turns.
    first = repo.take("s1", "one").commit
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    hostile = f"--output={victim}"
    calls: dict[str, Callable[[], object]] = {
        "changes": lambda: repo.changes(hostile, first),
        "patch": lambda: repo.patch(first, hostile),
        "checkpoint": lambda: repo.checkpoint(hostile),
        "plan": lambda: plan_restore(repo, "s1", hostile),
    }
    with pytest.raises(CheckpointError, match="not a checkpoint"):
        calls[where]()
    assert victim.read_text() == "precious\n"
    with pytest.raises(CheckpointError, match="not a checkpoint"):
        repo.changes("HEAD~1", first)  # revision syntax is not an id either
    assert repo.changes(first, first) == []


def aside(workspace: Path, name: str) -> Path:
    (found,) = workspace.glob(f"{name}.qwen-dev-backup-*")
    return found


def test_a_folder_of_unrecorded_files_where_a_file_was_is_moved_aside(
    workspace: Path, repo: ShadowRepo
) -> None:
    (workspace / "build").write_text("a file\n")
    first = repo.take("s1", "one").commit
    (workspace / "build").unlink()
    (workspace / "build").mkdir()
    (workspace / "build" / "big.bin").write_bytes(b"x" * 1000)  # too large: skipped
    (workspace / "build" / "run.log").write_text("ignored\n")  # ignored
    repo.take("s1", "two")
    result = restore(repo, "s1", plan_restore(repo, "s1", first))
    assert (workspace / "build").read_text() == "a file\n"
    kept = aside(workspace, "build")
    assert (kept / "big.bin").read_bytes() == b"x" * 1000
    assert (kept / "run.log").read_text() == "ignored\n"
    assert result.moved == [("build", kept.name)]
    assert result.refused == []


def test_an_unrecorded_file_where_a_folder_was_is_moved_aside(
    workspace: Path, repo: ShadowRepo
) -> None:
    (workspace / "data").mkdir()
    (workspace / "data" / "a.txt").write_text("a\n")
    first = repo.take("s1", "one").commit
    shutil.rmtree(workspace / "data")
    (workspace / "data").write_bytes(b"y" * 1000)  # too large to record
    repo.take("s1", "two")
    result = restore(repo, "s1", plan_restore(repo, "s1", first))
    assert (workspace / "data" / "a.txt").read_text() == "a\n"
    assert aside(workspace, "data").read_bytes() == b"y" * 1000
    assert [name for name, _ in result.moved] == ["data"]


def test_an_ignored_file_where_a_recorded_file_comes_back_is_moved_aside(
    workspace: Path, repo: ShadowRepo
) -> None:
    (workspace / "notes.txt").write_text("recorded\n")
    first = repo.take("s1", "one").commit
    (workspace / "notes.txt").unlink()
    repo.take("s1", "two")
    # Written again once ignored: no checkpoint records it now (a file still tracked
    # would be, ignored or not).
    (workspace / ".gitignore").write_text("*.log\nnotes.txt\n")
    (workspace / "notes.txt").write_text("the user's own, ignored now\n")
    repo.take("s1", "three")
    restore(repo, "s1", plan_restore(repo, "s1", first))
    assert (workspace / "notes.txt").read_text() == "recorded\n"
    assert aside(workspace, "notes.txt").read_text() == "the user's own, ignored now\n"
    assert (workspace / ".gitignore").read_text() == "*.log\n"


def test_what_the_restore_may_replace_still_goes_back(workspace: Path, repo: ShadowRepo) -> None:
    # Only what no checkpoint holds is moved aside: a recorded file, an empty folder
    # and a link standing in the way are replaced as before.
    (workspace / "a").write_text("a\n")
    (workspace / "b").write_text("b\n")
    (workspace / "c").mkdir()
    (workspace / "c" / "x").write_text("x\n")
    first = repo.take("s1", "one").commit
    (workspace / "a").unlink()
    (workspace / "a").mkdir()  # empty
    (workspace / "b").unlink()
    (workspace / "b").symlink_to("/etc/passwd")
    shutil.rmtree(workspace / "c")
    (workspace / "c").write_text("recorded file where a folder was\n")
    repo.take("s1", "two")
    result = restore(repo, "s1", plan_restore(repo, "s1", first))
    assert result.refused == []
    assert result.moved == []
    assert (workspace / "a").read_text() == "a\n"
    assert not (workspace / "b").is_symlink()
    assert (workspace / "b").read_text() == "b\n"
    assert (workspace / "c" / "x").read_text() == "x\n"


def test_the_backup_of_an_edit_in_a_folder_a_link_replaces_is_kept(
    workspace: Path, repo: ShadowRepo, tmp_path: Path
) -> None:
    # The edit is backed up beside itself, in the folder; git then deleted that folder
    # (backup included) to put the link back, after saying the edit was kept.
    outside = tmp_path / "outside"
    outside.mkdir()
    (workspace / "out").symlink_to(outside)
    first = repo.take("s1", "one").commit
    (workspace / "out").unlink()
    (workspace / "out").mkdir()
    (workspace / "out" / "mine.txt").write_text("my edit\n")
    result = restore(repo, "s1", plan_restore(repo, "s1", first))
    assert (workspace / "out").readlink() == outside
    (backup_name,) = [b for n, b in result.backups if n == "out/mine.txt"]
    assert (aside(workspace, "out") / backup_name).read_text() == "my edit\n"


def test_a_gitignore_cannot_bring_the_private_places_back(tmp_path: Path) -> None:
    # A home folder as the workspace: its .gitignore ("!.ssh") comes before the shadow
    # repository's info/exclude, so the private places were recorded after all.
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_ed25519").write_text("PRIVATE KEY\n")
    (home / "notes.txt").write_text("notes\n")
    (home / ".gitignore").write_text("!.ssh\n!.ssh/**\n!.qwen-dev\n!.qwen-dev/**\n")
    repo = ShadowRepo(home, home / ".qwen-dev" / "checkpoints", exclude=[home / ".ssh"])
    first = repo.take("s1", "one")
    second = repo.take("s1", "two")
    repo.close()
    for checkpoint in (first, second):
        names = repo.git().text("ls-tree", "-r", "--name-only", checkpoint.commit).split("\n")
        assert sorted(names) == [".gitignore", "notes.txt"]


def test_a_git_killed_mid_checkpoint_does_not_stop_every_later_one(
    workspace: Path, repo: ShadowRepo
) -> None:
    # A git call stopped at its timeout (or killed with the process) leaves its
    # index.lock: every later checkpoint of the workspace failed, in every session.
    import subprocess
    import time

    repo.take("s1", "one")
    git = repo.git()
    stuck = subprocess.Popen(
        git.command(("update-index", "-z", "--add", "--stdin")),
        stdin=subprocess.PIPE,
        cwd=workspace,
        env=git.env,
    )
    lock = repo.path / "index.lock"
    deadline = time.monotonic() + 30
    while not lock.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    stuck.kill()
    stuck.wait()
    assert lock.exists()
    (workspace / "README.md").write_text("# changed\n")
    second = repo.take("s1", "two")
    assert repo.git().text("show", f"{second.commit}:README.md") == "# changed"


def test_the_attributes_that_keep_bytes_as_they_are_are_there_whatever_happened(
    workspace: Path, tmp_path: Path
) -> None:
    # Written once, after `git init`: a process killed between the two left a shadow
    # repository without them for good, and the workspace's .gitattributes then changed
    # what a restore writes (LF files given back with CRLF).
    root = tmp_path / "home" / "checkpoints"
    ShadowRepo(workspace, root).take("s0", "created")
    first = ShadowRepo(workspace, root)
    (first.path / "info" / "attributes").unlink()  # as a kill right after init leaves it
    (workspace / ".gitattributes").write_text("* text eol=crlf\n")
    (workspace / "lf.txt").write_bytes(b"one\ntwo\n")
    repo = ShadowRepo(workspace, root)
    start = repo.take("s1", "one").commit
    (workspace / "lf.txt").write_bytes(b"changed\n")
    restore(repo, "s1", plan_restore(repo, "s1", start))
    assert (workspace / "lf.txt").read_bytes() == b"one\ntwo\n"
