"""The checkpoint driver shared by the REPL and the headless runs (issue 25): real git
on a real folder; what the user is told when a checkpoint cannot be taken, in each
mode."""

from __future__ import annotations

import shutil
import sys
import threading
from pathlib import Path

import pytest

from qwen_dev_cli.checkpoints import ShadowRepo
from qwen_dev_cli.session.store import Session, SessionStore
from qwen_dev_cli.session.turns import turn_marks
from qwen_dev_cli.ui import checkpointing
from qwen_dev_cli.ui.checkpointing import Checkpoints

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "a.txt").write_text("alpha\n")
    return root


def open_session(tmp_path: Path, workspace: Path) -> tuple[SessionStore, Session]:
    store = SessionStore(tmp_path / "sessions")
    return store, store.create(workspace, kind="ask")


async def one_turn(checkpoints: Checkpoints, store: SessionStore, session: Session) -> None:
    await checkpoints.turn_started(session, "change things\nsecond line")
    await checkpoints.before_command("sed -i s/a/b/ a.txt")
    await checkpoints.before_command("rm a.txt")
    await checkpoints.turn_ended()


@pytest.mark.parametrize("headless", [False, True])
async def test_without_git_the_turn_is_noted_unprotected_said_once_headless(
    tmp_path: Path, workspace: Path, headless: bool
) -> None:
    said: list[str] = []
    checkpoints = Checkpoints(workspace, tmp_path / "cp", said.append, headless=headless)
    checkpoints.repo = ShadowRepo(workspace, tmp_path / "cp", git=str(tmp_path / "no-git"))
    store, session = open_session(tmp_path, workspace)
    await one_turn(checkpoints, store, session)
    await one_turn(checkpoints, store, session)
    checkpoints.close()
    session.close()
    if headless:
        assert len(said) == 1
        assert said[0].startswith("no checkpoint before this turn (cannot run git")
    else:  # the REPL's behaviour, unchanged: each missing checkpoint said, briefly again
        assert len(said) == 6
        assert said[1] == "no checkpoint before this command (as before); it runs unprotected"
    marks = turn_marks(store.load(session.id).events)
    assert [(m.number, m.checkpoint) for m in marks] == [(1, None), (2, None)]
    assert all(m.unprotected for m in marks)
    assert marks[0].commands == ["sed -i s/a/b/ a.txt", "rm a.txt"]


@needs_git
async def test_a_headless_checkpoint_slower_than_its_patience_is_given_up_for_the_run(
    tmp_path: Path, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(checkpointing, "HEADLESS_PATIENCE", 0.2)

    release = threading.Event()
    calls: list[Path] = []

    def slow(path: Path) -> bool:  # a huge first checkpoint, hashing for ever
        calls.append(path)
        release.wait(30)
        return True

    said: list[str] = []
    checkpoints = Checkpoints(workspace, tmp_path / "cp", said.append, headless=True)
    checkpoints.repo = ShadowRepo(workspace, tmp_path / "cp", readable=slow)
    store, session = open_session(tmp_path, workspace)
    await one_turn(checkpoints, store, session)
    checkpoints.close()  # does not wait for the abandoned checkpoint
    session.close()
    release.set()
    assert said == [
        "no checkpoint before this turn (recording the workspace took more than 0.2s); "
        "it goes on unprotected: /rewind cannot restore files to before it"
    ]
    assert calls == [workspace / "a.txt"]  # the later calls did not start another
    (mark,) = turn_marks(store.load(session.id).events)
    assert mark.checkpoint is None


@needs_git
async def test_headless_checkpoints_are_the_repls_when_they_can_be_taken(
    tmp_path: Path, workspace: Path
) -> None:
    said: list[str] = []
    checkpoints = Checkpoints(workspace, tmp_path / "cp", said.append, headless=True)
    store, session = open_session(tmp_path, workspace)
    await checkpoints.turn_started(session, "change a.txt")
    (workspace / "a.txt").write_text("ALPHA\n")
    await checkpoints.turn_ended()
    checkpoints.close()
    session.close()
    assert said == []
    (mark,) = turn_marks(store.load(session.id).events)
    assert mark.checkpoint is not None
    assert mark.end is not None
    deltas = checkpoints.repo.changes(mark.checkpoint, mark.end)
    assert [(d.path, d.status) for d in deltas] == [("a.txt", "modified")]


def test_the_driver_imports_no_terminal_library(tmp_path: Path) -> None:
    import subprocess

    probe = (
        "import sys, qwen_dev_cli.ui.checkpointing\n"
        "print([m for m in ('prompt_toolkit', 'rich') if m in sys.modules])"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
