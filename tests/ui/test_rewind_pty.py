"""``/rewind`` and ``--resume ID --at N`` in a real pseudo-terminal, against the fault
server scripted to edit a file, run ``sed -i``, delete a file and create one: each
turn rewound to, the workspace compared byte for byte, the user's own ``.git`` hashed
before and after."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from faultserver import FaultServerProcess, Outcome
from tests.checkpoints.trees import TreeState, hash_folder, tree_state
from tests.ui.test_repl_pty import PROMPT, Terminal, sessions, spawn, tool_call

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed"),
]

#: Each turn: the prompt, the tool call the model makes, and its closing words.
TURNS = [
    ("edit a.txt", tool_call("edit_file", path="a.txt", search="alpha", replace="ALPHA"), "one"),
    ("sed b.txt", tool_call("run_command", command="sed -i s/beta/BETA/ b.txt"), "two"),
    ("remove c.txt", tool_call("run_command", command="rm c.txt"), "three"),
    ("create d.txt", tool_call("write_file", path="d.txt", content="delta\n"), "four"),
]


@pytest.fixture
def server() -> Iterator[FaultServerProcess]:
    with FaultServerProcess() as srv:
        yield srv


def user_repository(workspace: Path) -> None:
    workspace.mkdir(exist_ok=True)
    (workspace / "a.txt").write_text("alpha\n")
    (workspace / "b.txt").write_text("beta\n")
    (workspace / "c.txt").write_text("gamma\n")
    (workspace / ".gitignore").write_text("*.log\n")
    env = {"PATH": os.environ["PATH"], "HOME": str(workspace), "GIT_CONFIG_NOSYSTEM": "1"}
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "user's own"]):
        subprocess.run(
            ["git", "-c", "user.name=u", "-c", "user.email=u@u", *args],
            cwd=workspace,
            env=env,
            check=True,
            capture_output=True,
        )


def run_turns(child: Terminal, server: FaultServerProcess, workspace: Path) -> list[TreeState]:
    """The four turns, in yolo (commands in the sandbox, unasked); the tree before each."""
    outcomes = []
    for _prompt, call, words in TURNS:
        outcomes += [Outcome.ok(tool_calls=[call]), Outcome.ok(f"Done turn {words}.")]
    server.script(*outcomes)
    before = []
    for prompt, _call, words in TURNS:
        before.append(tree_state(workspace))
        child.sendline(prompt)
        child.expect_exact(f"Done turn {words}.")
        child.expect(PROMPT)
    return before


def test_rewind_to_each_turn_restores_the_tree_byte_for_byte(
    server: FaultServerProcess, tmp_path: Path
) -> None:
    workspace = tmp_path / "ws"
    user_repository(workspace)
    (workspace / "notes.log").write_text("ignored\n")
    git_before = hash_folder(workspace / ".git")
    child = spawn(tmp_path, server, "--approval", "yolo")
    before = run_turns(child, server, workspace)
    assert (workspace / "b.txt").read_text() == "BETA\n"  # sed ran, in the sandbox
    assert not (workspace / "c.txt").exists()
    child.sendline("/rewind")
    child.expect_exact("sed -i s/beta/BETA/ b.txt")  # the commands of turn 2, listed
    child.expect_exact("1: c.txt")  # turn 3's files changed
    child.expect_exact("Rewind to before which turn?")
    child.sendline("9")
    child.expect_exact("choose one of the turns listed: 1, 2, 3, 4")
    child.sendline("")
    child.expect_exact("nothing rewound")
    for number in (4, 3, 2, 1):
        child.sendline("/rewind")
        child.expect_exact("Rewind to before which turn?")
        child.sendline(str(number))
        child.expect_exact(f"going back to before turn {number}")  # the diff comes first
        child.expect_exact("[f]iles only")
        child.send("f")
        child.expect_exact("restored")
        child.expect(PROMPT)
        assert tree_state(workspace) == before[number - 1], f"before turn {number}"
    assert (workspace / "notes.log").read_text() == "ignored\n"
    assert hash_folder(workspace / ".git") == git_before
    assert child.leave() == 0


def test_rewinding_both_goes_back_in_the_conversation_and_resume_at_opens_before_a_turn(
    server: FaultServerProcess, tmp_path: Path, qwen_home: Path
) -> None:
    workspace = tmp_path / "ws"
    user_repository(workspace)
    child = spawn(tmp_path, server, "--approval", "yolo")
    before = run_turns(child, server, workspace)
    (workspace / "a.txt").write_text("my own edit\n")  # after the last checkpoint
    child.send("\x1b\x1b")  # Esc Esc at the empty prompt
    child.expect_exact("Rewind to before which turn?")
    child.sendline("2")
    child.expect_exact("-my own edit")
    child.expect_exact("kept in a backup file beside it")
    child.send("b")
    child.expect_exact("conversation: back to before turn 2")
    child.expect(PROMPT)
    [backup] = workspace.glob("a.txt.qwen-dev-backup-*")
    assert backup.read_text() == "my own edit\n"
    backup.unlink()
    assert tree_state(workspace) == before[1]
    server.script(Outcome.ok("Fresh start."))
    child.sendline("next question")
    child.expect_exact("Fresh start.")
    child.expect(PROMPT)
    sent = server.requests()[-1]["json"]["messages"]
    assert [m["content"] for m in sent if m["role"] == "user"] == ["edit a.txt", "next question"]
    assert child.leave() == 0

    (events,) = sessions(qwen_home)
    session_id = events[0]["id"]
    resumed = spawn(tmp_path, server, "--resume", session_id, "--at", "1")
    server.script(Outcome.ok("From the top."))
    resumed.sendline("again")
    resumed.expect_exact("From the top.")
    resumed.expect(PROMPT)
    sent = server.requests()[-1]["json"]["messages"]
    assert [m["content"] for m in sent if m["role"] == "user"] == ["again"]
    # ...and /rewind from there restores the files of before turn 1.
    resumed.sendline("/rewind")
    resumed.expect_exact("Rewind to before which turn?")
    resumed.sendline("1")
    resumed.expect_exact("[f]iles only")
    resumed.send("f")
    resumed.expect_exact("restored")
    resumed.expect(PROMPT)
    assert tree_state(workspace) == before[0]
    assert resumed.leave() == 0
    (events,) = sessions(qwen_home)
    rewinds = [(e["turn"], len(e["view"])) for e in events if e["type"] == "rewind"]
    assert rewinds == [(2, 4), (1, 0)]  # /rewind both to turn 2, then --at 1


def test_on_a_full_disk_the_turn_goes_on_unprotected_and_says_so(
    server: FaultServerProcess, tmp_path: Path, qwen_home: Path
) -> None:
    from tests.checkpoints.test_shadow import tiny_disk

    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "data.bin").write_bytes(os.urandom(1_000_000))
    with tiny_disk(qwen_home / "checkpoints", "200k"):
        child = spawn(tmp_path, server)
        server.script(Outcome.ok("Answered all the same."))
        child.sendline("hello")
        child.expect_exact("no checkpoint before this turn")
        child.expect_exact("it goes on unprotected")
        child.expect_exact("Answered all the same.")
        child.expect(PROMPT)
        child.sendline("/rewind")
        child.expect_exact("(no checkpoint)")
        child.expect_exact("Rewind to before which turn?")
        child.sendline("1")
        child.expect_exact("no checkpoint was taken before turn 1")
        child.expect_exact("Restore the [c]onversation / [n]othing")
        child.send("n")
        child.expect_exact("nothing rewound")
        child.expect(PROMPT)
        assert child.leave() == 0


def test_two_sessions_in_one_folder_each_keep_their_checkpoints(
    server: FaultServerProcess, tmp_path: Path
) -> None:
    workspace = tmp_path / "ws"
    user_repository(workspace)
    one = spawn(tmp_path, server, "--approval", "yolo")
    two = spawn(tmp_path, server, "--approval", "yolo")
    server.script(
        Outcome.ok(tool_calls=[tool_call("write_file", path="one.txt", content="1\n")]),
        Outcome.ok("First wrote."),
        Outcome.ok(tool_calls=[tool_call("write_file", path="two.txt", content="2\n")]),
        Outcome.ok("Second wrote."),
    )
    one.sendline("write one")
    one.expect_exact("First wrote.")
    one.expect(PROMPT)
    two.sendline("write two")
    two.expect_exact("Second wrote.")
    two.expect(PROMPT)
    # The second session's turn 1 started with one.txt already there: going back to it
    # removes two.txt only.
    two.sendline("/rewind")
    two.expect_exact("Rewind to before which turn?")
    two.sendline("1")
    two.expect_exact("[f]iles only")
    two.send("f")
    two.expect_exact("restored")
    two.expect(PROMPT)
    assert (workspace / "one.txt").exists()
    assert not (workspace / "two.txt").exists()
    assert one.leave() == 0
    assert two.leave() == 0
