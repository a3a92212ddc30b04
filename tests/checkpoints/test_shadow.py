"""Checkpoints in the shadow repository: taken, compared and restored with the real
git, on real folders (a plain folder, a repository, a worktree), and the bad inputs
the issue lists."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from qwen_dev_cli.checkpoints import (
    CheckpointBusy,
    CheckpointError,
    CheckpointTimeout,
    ShadowRepo,
    plan_restore,
    restore,
)
from qwen_dev_cli.checkpoints.shadow import PACK_EVERY
from tests.checkpoints.trees import hash_folder, tree_state

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    (ws / "src" / "pkg").mkdir(parents=True)
    (ws / "src" / "pkg" / "a.py").write_text("print('a')\n")
    (ws / "src" / "b.txt").write_bytes(b"line one\r\nline two\r\n")  # CRLF kept as is
    (ws / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (ws / "run.sh").chmod(0o755)
    (ws / "README.md").write_text("# project\n")
    return ws


@pytest.fixture
def repo(workspace: Path, tmp_path: Path) -> Iterator[ShadowRepo]:
    shadow = ShadowRepo(workspace, tmp_path / "home" / "checkpoints")
    yield shadow
    shadow.close()


def git(cwd: Path, *args: str) -> str:
    env = {"PATH": os.environ["PATH"], "HOME": str(cwd), "GIT_CONFIG_NOSYSTEM": "1"}
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def rewind(repo: ShadowRepo, session: str, commit: str) -> None:
    restore(repo, session, plan_restore(repo, session, commit))


def test_each_checkpoint_restores_its_tree_byte_for_byte(workspace: Path, repo: ShadowRepo) -> None:
    states = []
    commits: list[str] = []

    def record() -> None:
        states.append(tree_state(workspace))
        commits.append(repo.take("s1", f"turn {len(commits) + 1}").commit)

    record()
    (workspace / "src" / "pkg" / "a.py").write_text("print('A')\n")  # an edit
    (workspace / "README.md").unlink()  # a deletion
    (workspace / "new" / "deep").mkdir(parents=True)
    (workspace / "new" / "deep" / "c.bin").write_bytes(bytes(range(256)) * 3)  # a creation
    record()
    (workspace / "run.sh").chmod(0o644)  # a mode change
    (workspace / "src" / "b.txt").unlink()
    (workspace / "src" / "b.txt").symlink_to("pkg/a.py")  # a file turned into a link
    shutil.rmtree(workspace / "new")
    (workspace / "new").write_text("now a file\n")  # a folder turned into a file
    record()
    final = tree_state(workspace)
    latest = repo.latest("s1")
    assert latest is not None
    for state, commit in zip(states, commits, strict=True):
        rewind(repo, "s1", commit)
        assert tree_state(workspace) == state
    # ...and forward again: the workspace before the first rewind was recorded too.
    rewind(repo, "s1", latest.commit)
    assert tree_state(workspace) == final
    assert "before rewind" in git_log(repo, "s1-rewinds")
    assert "after rewind" in git_log(repo, "s1")


def git_log(repo: ShadowRepo, session: str) -> str:
    return repo.git().text("log", "--format=%s", f"refs/sessions/{session}")


def test_nothing_changed_is_the_same_checkpoint(workspace: Path, repo: ShadowRepo) -> None:
    first = repo.take("s1", "one")
    assert repo.take("s1", "two") == first
    (workspace / "README.md").write_text("# changed\n")
    assert repo.take("s1", "three").commit != first.commit
    # A second process (a new ShadowRepo) finds the session's latest through its ref.
    again = ShadowRepo(workspace, repo.path.parent)
    assert again.latest("s1") == repo.latest("s1")


def test_short_lived_processes_still_get_the_repository_packed(
    workspace: Path, tmp_path: Path
) -> None:
    """Each headless ``ask`` takes a checkpoint or two and exits: the count of loose
    checkpoints lives in the repository, so the sixteenth packs whoever takes it."""
    home = tmp_path / "home" / "checkpoints"

    def loose() -> int:
        counts = ShadowRepo(workspace, home).git().text("count-objects", "-v").splitlines()
        return int(dict(line.split(": ") for line in counts)["count"])

    for n in range(PACK_EVERY - 1):
        (workspace / "README.md").write_text(f"# edit {n}\n")
        one = ShadowRepo(workspace, home)  # a process of its own
        one.take(f"s{n}", "turn")
        one.close()
    before = loose()
    assert before >= 2 * (PACK_EVERY - 1)  # a tree and a commit each, at least
    (workspace / "README.md").write_text("# the last edit\n")
    last = ShadowRepo(workspace, home)
    last.take("s-last", "turn")
    last.close()  # waits for the packing it started
    assert loose() == 0


def test_an_info_folder_linked_elsewhere_is_not_read(
    workspace: Path, repo: ShadowRepo, tmp_path: Path
) -> None:
    git(workspace, "init", "-q")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "exclude").write_text("*.md\n")
    shutil.rmtree(workspace / ".git" / "info")
    (workspace / ".git" / "info").symlink_to(elsewhere)
    first = repo.take("s1", "one")
    listed = repo.git().text("ls-tree", "-r", "--name-only", first.commit).splitlines()
    assert "README.md" in listed  # the patterns the link led to were not applied


def test_gitignore_and_info_exclude_are_honoured_and_ignored_files_are_left_alone(
    workspace: Path, repo: ShadowRepo
) -> None:
    git(workspace, "init", "-q")
    (workspace / ".gitignore").write_text("build/\n*.log\n")
    (workspace / ".git" / "info" / "exclude").write_text("secret.txt\n")
    (workspace / "build").mkdir()
    (workspace / "build" / "out.o").write_bytes(b"\x7fELF")
    (workspace / "debug.log").write_text("log\n")
    (workspace / "secret.txt").write_text("s\n")
    first = repo.take("s1", "one")
    listed = repo.git().text("ls-tree", "-r", "--name-only", first.commit).splitlines()
    assert "build/out.o" not in listed
    assert "debug.log" not in listed
    assert "secret.txt" not in listed
    assert ".gitignore" in listed
    assert not any(name.startswith(".git/") for name in listed)
    (workspace / "debug.log").write_text("more log\n")
    (workspace / "README.md").write_text("changed\n")
    rewind(repo, "s1", first.commit)
    assert (workspace / "debug.log").read_text() == "more log\n"  # ignored: untouched
    assert (workspace / "README.md").read_text() == "# project\n"


def test_symlinks_are_recorded_as_links_and_never_followed(
    workspace: Path, repo: ShadowRepo, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.txt").write_text("keep me\n")
    (workspace / "out").symlink_to(outside)
    (workspace / "out-file").symlink_to(outside / "precious.txt")
    first = repo.take("s1", "one")
    entries = repo.git().text("ls-tree", "-r", first.commit)
    assert "120000" in next(line for line in entries.splitlines() if line.endswith("\tout"))
    assert "precious" not in repo.git().text("ls-tree", "-r", "--name-only", first.commit)
    # The link is replaced by a folder with a file, then the checkpoint restored.
    (workspace / "out").unlink()
    (workspace / "out").mkdir()
    (workspace / "out" / "precious.txt").write_text("inside now\n")
    (workspace / "out-file").unlink()
    rewind(repo, "s1", first.commit)
    assert os.readlink(workspace / "out") == str(outside)
    assert (outside / "precious.txt").read_text() == "keep me\n"
    # Restoring a file under a folder that is now a link leading out writes inside.
    (workspace / "src").rename(workspace / "src-moved")
    (workspace / "src").symlink_to(outside)
    rewind(repo, "s1", first.commit)
    assert sorted(p.name for p in outside.iterdir()) == ["precious.txt"]
    assert (workspace / "src" / "pkg" / "a.py").read_text() == "print('a')\n"


def test_large_files_are_skipped_listed_and_left_alone(workspace: Path, tmp_path: Path) -> None:
    repo = ShadowRepo(workspace, tmp_path / "home", max_file_bytes=1000)
    (workspace / "big.bin").write_bytes(b"x" * 5000)
    first = repo.take("s1", "one")
    assert [(s.path, s.reason.split(" (")[0]) for s in first.skipped] == [
        ("big.bin", "larger than 1000 bytes")
    ]
    assert repo.checkpoint(first.commit).skipped == first.skipped  # kept in the commit
    (workspace / "big.bin").write_bytes(b"y" * 6000)
    (workspace / "README.md").write_text("changed\n")
    plan = plan_restore(repo, "s1", first.commit)
    assert [d.path for d in plan.deltas] == ["README.md"]
    restore(repo, "s1", plan)
    assert (workspace / "big.bin").read_bytes() == b"y" * 6000
    # A recorded file that grows past the limit is skipped from then on, not kept stale.
    (workspace / "src" / "b.txt").write_bytes(b"z" * 2000)
    grown = repo.take("s1", "two")
    assert "src/b.txt" in grown.skipped_paths
    assert "src/b.txt" not in repo.git().text("ls-tree", "-r", "--name-only", grown.commit)


def test_a_2_gb_file_is_skipped_without_being_read(workspace: Path, repo: ShadowRepo) -> None:
    huge = workspace / "disk.img"
    with huge.open("wb") as handle:  # sparse: 2 GiB long, no disk used
        handle.truncate(2 << 30)
    checkpoint = repo.take("s1", "one")
    assert [s.path for s in checkpoint.skipped] == ["disk.img"]
    assert "2 GiB" in checkpoint.skipped[0].reason


def test_a_nested_repository_is_skipped_and_a_fifo_ignored(
    workspace: Path, repo: ShadowRepo
) -> None:
    nested = workspace / "vendor" / "lib"
    nested.mkdir(parents=True)
    git(nested, "init", "-q")
    (nested / "x.c").write_text("int x;\n")
    os.mkfifo(workspace / "pipe")
    checkpoint = repo.take("s1", "one")
    reasons = {s.path: s.reason for s in checkpoint.skipped}
    assert reasons == {"vendor/lib": "a git repository inside the workspace"}
    listed = repo.git().text("ls-tree", "-r", "--name-only", checkpoint.commit).splitlines()
    assert "pipe" not in listed
    assert not any(name.startswith("vendor/") for name in listed)


def test_the_users_git_is_never_touched_even_when_hostile(
    workspace: Path, repo: ShadowRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    git(workspace, "init", "-q")
    git(workspace, "add", "-A")
    git(workspace, "commit", "-q", "-m", "first")
    marker = tmp_path / "pwned"
    hook = f"#!/bin/sh\ntouch {marker}\n"
    for name in ("pre-commit", "post-commit", "post-checkout", "reference-transaction"):
        (workspace / ".git" / "hooks" / name).write_text(hook)
        (workspace / ".git" / "hooks" / name).chmod(0o755)
    with (workspace / ".git" / "config").open("a") as config:
        config.write(f"[core]\n\tfsmonitor = touch {marker}\n\thooksPath = .git/hooks\n")
        config.write(f'[filter "x"]\n\tclean = touch {marker}\n\tsmudge = touch {marker}\n')
    (workspace / ".gitattributes").write_text("* filter=x\n*.txt text eol=lf\n")
    # The user's environment points git at their repository: our calls ignore it.
    monkeypatch.setenv("GIT_DIR", str(workspace / ".git"))
    monkeypatch.setenv("GIT_INDEX_FILE", str(workspace / ".git" / "index"))
    monkeypatch.setenv("GIT_CONFIG_PARAMETERS", f"'core.fsmonitor'='touch {marker}'")
    before = hash_folder(workspace / ".git")
    first = repo.take("s1", "one")
    (workspace / "src" / "b.txt").write_text("changed\n")
    (workspace / "new.txt").write_text("new\n")
    repo.take("s1", "two")
    rewind(repo, "s1", first.commit)
    assert hash_folder(workspace / ".git") == before
    assert not marker.exists()
    assert (workspace / "src" / "b.txt").read_bytes() == b"line one\r\nline two\r\n"
    assert not (workspace / "new.txt").exists()


def test_a_worktree_workspace_works_and_its_repository_is_untouched(
    tmp_path: Path,
) -> None:
    main = tmp_path / "main"
    main.mkdir()
    (main / "f.txt").write_text("one\n")
    git(main, "init", "-q")
    git(main, "add", "-A")
    git(main, "commit", "-q", "-m", "first")
    worktree = tmp_path / "wt"
    git(main, "worktree", "add", "-q", str(worktree))
    assert (worktree / ".git").is_file()
    before = hash_folder(main / ".git")
    repo = ShadowRepo(worktree, tmp_path / "home")
    first = repo.take("s1", "one")
    assert ".git" not in repo.git().text("ls-tree", "--name-only", first.commit).splitlines()
    (worktree / "f.txt").write_text("two\n")
    (worktree / "g.txt").write_text("new\n")
    rewind(repo, "s1", first.commit)
    assert (worktree / "f.txt").read_text() == "one\n"
    assert not (worktree / "g.txt").exists()
    assert (worktree / ".git").is_file()
    assert hash_folder(main / ".git") == before


def test_edits_made_since_the_latest_checkpoint_are_kept_as_backups(
    workspace: Path, repo: ShadowRepo
) -> None:
    first = repo.take("s1", "turn 1")
    (workspace / "README.md").write_text("the turn's edit\n")
    repo.take("s1", "end of turn 1")
    (workspace / "README.md").write_text("my own edit\n")  # no checkpoint has this
    plan = plan_restore(repo, "s1", first.commit)
    assert plan.edited == {"README.md"}
    assert "-my own edit" in plan.diff
    assert "+# project" in plan.diff
    result = restore(repo, "s1", plan)
    (name, backup) = result.backups[0]
    assert name == "README.md"
    assert (workspace / backup).read_text() == "my own edit\n"
    assert (workspace / "README.md").read_text() == "# project\n"


def test_two_sessions_in_one_folder_take_turns_and_keep_their_own_history(
    workspace: Path, tmp_path: Path
) -> None:
    root = tmp_path / "home"
    one, two = ShadowRepo(workspace, root), ShadowRepo(workspace, root)
    errors: list[BaseException] = []

    def work(repo: ShadowRepo, session: str) -> None:
        try:
            for n in range(10):
                (workspace / f"{session}.txt").write_text(f"{n}\n")
                repo.take(session, f"{session} {n}")
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(r, s)) for r, s in ((one, "a"), (two, "b"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for repo, session in ((one, "a"), (two, "b")):
        log = repo.git().text("log", "--format=%s", f"refs/sessions/{session}").splitlines()
        assert log[0] == f"{session} 9"


def test_a_lock_held_too_long_is_checkpoint_busy(workspace: Path, repo: ShadowRepo) -> None:
    repo.take("s1", "one")
    other = ShadowRepo(workspace, repo.path.parent, lock_wait=0.2)
    fd = os.open(repo.path / "qwen-dev.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with pytest.raises(CheckpointBusy, match="another qwen-dev"):
            other.take("s2", "two")
    finally:
        os.close(fd)
    assert other.take("s2", "two").commit


def test_a_missing_git_is_a_checkpoint_error(workspace: Path, tmp_path: Path) -> None:
    repo = ShadowRepo(workspace, tmp_path / "home", git=str(tmp_path / "no-git"))
    with pytest.raises(CheckpointError, match="cannot run git"):
        repo.take("s1", "one")


@contextlib.contextmanager
def tiny_disk(path: Path, size: str) -> Iterator[None]:
    path.mkdir(parents=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (not root)")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_a_full_disk_is_a_checkpoint_error_and_the_workspace_is_untouched(
    workspace: Path, tmp_path: Path
) -> None:
    disk = tmp_path / "full"
    with tiny_disk(disk, "200k"):
        (workspace / "data.bin").write_bytes(os.urandom(1_000_000))
        state = tree_state(workspace)
        repo = ShadowRepo(workspace, disk)
        with pytest.raises(CheckpointError):
            repo.take("s1", "one")
        repo.close()
        assert tree_state(workspace) == state


@pytest.mark.skipif(sys.platform != "linux", reason="forks and drops to an unprivileged user")
def test_unreadable_files_are_skipped() -> None:
    # As root every file is readable: the checkpoint is taken in a child as nobody.
    base = Path(tempfile.mkdtemp(prefix="qd-unreadable-"))
    try:
        base.chmod(0o777)
        ws = base / "ws"
        ws.mkdir()
        ws.chmod(0o777)
        (ws / "ok.txt").write_text("fine\n")
        (ws / "locked.txt").write_text("secret\n")
        (ws / "locked.txt").chmod(0o000)
        reading, writing = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: report and leave, whatever happens
            code = 1
            try:
                os.close(reading)
                if os.geteuid() == 0:
                    os.setgid(65534)
                    os.setuid(65534)
                checkpoint = ShadowRepo(ws, base / "home").take("s", "one")
                report = repr([(s.path, s.reason) for s in checkpoint.skipped])
                os.write(writing, report.encode())
                code = 0
            finally:
                os._exit(code)
        os.close(writing)
        with os.fdopen(reading, "rb") as pipe:
            report = pipe.read().decode()
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert report == "[('locked.txt', 'unreadable (permission denied)')]"
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.slow
def test_100k_files(tmp_path: Path) -> None:
    ws = tmp_path / "many"
    for n in range(100):
        folder = ws / f"d{n}"
        folder.mkdir(parents=True)
        for m in range(1000):
            (folder / f"f{m}.txt").write_text(f"{n} {m}\n")
    repo = ShadowRepo(ws, tmp_path / "home")
    first = repo.take("s1", "one")
    (ws / "d5" / "f5.txt").write_text("changed\n")
    (ws / "d7" / "f7.txt").unlink()
    second = repo.take("s1", "two")
    assert {(d.path, d.status) for d in repo.changes(first.commit, second.commit)} == {
        ("d5/f5.txt", "modified"),
        ("d7/f7.txt", "deleted"),
    }
    rewind(repo, "s1", first.commit)
    assert (ws / "d7" / "f7.txt").read_text() == "7 7\n"
    repo.close()


def test_private_places_and_the_shadow_repositories_inside_the_workspace_are_left_out(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"  # the workspace is a whole home folder
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_ed25519").write_text("PRIVATE KEY\n")
    (home / "odd [name]").mkdir()
    (home / "odd [name]" / "x").write_text("x\n")
    (home / "notes.txt").write_text("notes\n")
    state = home / ".local" / "share" / "qwen-dev"
    repo = ShadowRepo(
        home, state / "checkpoints", exclude=(state, home / ".ssh", home / "odd [name]")
    )
    first = repo.take("s1", "one")
    second = repo.take("s1", "two")  # the first one's objects are not recorded in turn
    assert second == first
    listed = repo.git().text("ls-tree", "-r", "--name-only", first.commit).splitlines()
    assert listed == ["notes.txt"]
    (home / ".ssh" / "id_ed25519").write_text("ROTATED\n")
    rewind(repo, "s1", first.commit)
    assert (home / ".ssh" / "id_ed25519").read_text() == "ROTATED\n"
    repo.close()


def test_a_workspace_too_large_to_record_is_a_checkpoint_error(
    workspace: Path, repo: ShadowRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    from qwen_dev_cli.checkpoints import shadow

    monkeypatch.setattr(shadow, "MAX_PATHS", 3)
    with pytest.raises(CheckpointError, match="4 files to record, more than the 3"):
        repo.take("s1", "one")


def test_a_gitignore_that_is_a_named_pipe_stops_git_in_time(
    workspace: Path, tmp_path: Path
) -> None:
    os.mkfifo(workspace / "src" / ".gitignore")  # git would wait on it for ever
    repo = ShadowRepo(workspace, tmp_path / "home", timeout=2)
    with pytest.raises(CheckpointTimeout, match="took more than 2s and was stopped"):
        repo.take("s1", "one")


def test_the_shadow_repositories_are_private_to_the_user(workspace: Path, repo: ShadowRepo) -> None:
    repo.take("s1", "one")
    for folder in (repo.path.parent, repo.path):
        assert folder.stat().st_mode & 0o777 == 0o700


def test_checkpoints_of_sessions_that_are_gone_are_let_go(workspace: Path, tmp_path: Path) -> None:
    import time

    from qwen_dev_cli.checkpoints import prune_checkpoints

    root = tmp_path / "home"
    repo = ShadowRepo(workspace, root)
    kept = repo.take("kept", "one")
    (workspace / "only-in-gone.txt").write_text("x\n")
    gone = repo.take("gone", "two")
    repo.close()
    # Fresh refs are never let go: the session may have been made after the listing.
    assert prune_checkpoints(root, ["kept"]) == 0
    later = time.time() + 2 * 86_400
    assert prune_checkpoints(root, ["kept"], now=later) == 1
    refs = repo.git().text("for-each-ref", "--format=%(refname)").splitlines()
    assert refs == ["refs/sessions/kept"]
    assert repo.git().run("cat-file", "-e", kept.commit, check=False) == b""
    missing = subprocess.run(
        repo.git().command(["cat-file", "-e", gone.commit]),
        cwd=workspace,
        env=repo.git().env,
        check=False,
        capture_output=True,
    )
    assert missing.returncode != 0  # collected
    # No session left: the shadow repository goes, and a new one is made when needed.
    assert prune_checkpoints(root, [], now=later) == 1
    assert not repo.path.exists()
    assert repo.take("kept", "again").commit


def test_a_submodule_workspace_works_and_its_repositories_are_untouched(
    tmp_path: Path,
) -> None:
    library = tmp_path / "library"
    library.mkdir()
    (library / "lib.c").write_text("int lib;\n")
    git(library, "init", "-q")
    git(library, "add", "-A")
    git(library, "commit", "-q", "-m", "lib")
    outer = tmp_path / "outer"
    outer.mkdir()
    git(outer, "init", "-q")
    git(outer, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(library), "sub")
    git(outer, "commit", "-q", "-m", "with sub")
    workspace = outer / "sub"
    assert (workspace / ".git").is_file()  # gitdir: ../.git/modules/sub
    before = hash_folder(outer / ".git")
    repo = ShadowRepo(workspace, tmp_path / "home")
    first = repo.take("s1", "one")
    (workspace / "lib.c").write_text("int changed;\n")
    (workspace / "new.c").write_text("int new;\n")
    rewind(repo, "s1", first.commit)
    assert (workspace / "lib.c").read_text() == "int lib;\n"
    assert not (workspace / "new.c").exists()
    assert hash_folder(outer / ".git") == before  # modules/sub included
    repo.close()
