"""Headless turns take checkpoints too (issue 25): ``qwen-dev ask --approval yolo`` and
``--input-format stream-json`` sessions, real processes against the fault server
scripted to edit a file, run ``sed -i``, delete a file and create one; then the session
resumed in a real pseudo-terminal (``--resume ID --at 1``) and ``/rewind`` restores the
tree byte for byte. A checkpoint that cannot be taken (the lock held by another
qwen-dev) leaves the run going on, and says so once."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from faultserver import FaultServerProcess, Outcome
from qwen_dev_cli.checkpoints import workspace_key
from tests.checkpoints.trees import TreeState, hash_folder, tree_state
from tests.ui.test_repl_pty import PROMPT, sessions, spawn, tool_call, write_config
from tests.ui.test_rewind_pty import user_repository

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed"),
]

#: Two headless turns: the tool calls each makes.
FIRST = [
    tool_call("edit_file", path="a.txt", search="alpha", replace="ALPHA"),
    tool_call("run_command", command="sed -i s/beta/BETA/ b.txt"),
]
SECOND = [
    tool_call("run_command", command="rm c.txt"),
    tool_call("write_file", path="d.txt", content="delta\n"),
]


@pytest.fixture
def server() -> Iterator[FaultServerProcess]:
    with FaultServerProcess() as srv:
        yield srv


def ask(tmp_path: Path, server: FaultServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    """``qwen-dev ask --json ARGS`` in the workspace, stderr not a terminal."""
    config = write_config(tmp_path, server)
    return subprocess.run(
        [sys.executable, "-m", "qwen_dev_cli", "ask", "--json", "--config", str(config), *args],
        cwd=tmp_path / "ws",
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def stream(
    tmp_path: Path, server: FaultServerProcess, prompts: list[str], *args: str
) -> tuple[list[dict[str, Any]], str]:
    """A stream-json session of ``prompts`` (stdin then closed): its events, stderr."""
    config = write_config(tmp_path, server)
    lines = "".join(
        json.dumps({"type": "user", "message": {"role": "user", "content": p}}) + "\n"
        for p in prompts
    )
    done = subprocess.run(
        [
            *(sys.executable, "-m", "qwen_dev_cli", "--config", str(config)),
            *("--input-format", "stream-json", "--output-format", "stream-json", *args),
        ],
        cwd=tmp_path / "ws",
        env=dict(os.environ),
        input=lines,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()], done.stderr


def rewind_files(
    tmp_path: Path, server: FaultServerProcess, session: str, number: int, *resume: str
) -> TreeState:
    """``qwen-dev --resume SESSION RESUME...`` in a pseudo-terminal, then ``/rewind``
    files only to before turn ``number``; the tree after it."""
    child = spawn(tmp_path, server, "--resume", session, *resume)
    child.sendline("/rewind")
    child.expect_exact("Rewind to before which turn?")
    child.sendline(str(number))
    child.expect_exact(f"going back to before turn {number}")  # the diff first
    child.expect_exact("[f]iles only")
    child.send("f")
    child.expect_exact("restored")
    child.expect(PROMPT)
    assert child.leave() == 0
    return tree_state(tmp_path / "ws")


def test_ask_in_yolo_is_checkpointed_and_the_repl_rewinds_it_byte_for_byte(
    server: FaultServerProcess, tmp_path: Path, qwen_home: Path
) -> None:
    workspace = tmp_path / "ws"
    user_repository(workspace)
    (workspace / "notes.log").write_text("ignored\n")
    git_before = hash_folder(workspace / ".git")
    before = [tree_state(workspace)]
    server.script(Outcome.ok(tool_calls=FIRST), Outcome.ok("Done turn one."))
    first = ask(tmp_path, server, "--approval", "yolo", "edit and sed")
    assert first.returncode == 0, first.stderr
    assert "unprotected" not in first.stderr
    session = json.loads(first.stdout)["session_id"]
    assert (workspace / "b.txt").read_text() == "BETA\n"  # sed ran, in the sandbox
    before.append(tree_state(workspace))
    server.script(Outcome.ok(tool_calls=SECOND), Outcome.ok("Done turn two."))
    second = ask(tmp_path, server, "--approval", "yolo", "--resume", session, "rm and create")
    assert second.returncode == 0, second.stderr
    assert not (workspace / "c.txt").exists()
    assert (workspace / "d.txt").read_text() == "delta\n"

    (events,) = sessions(qwen_home)
    starts = [e for e in events if e["type"] == "turn_start"]
    assert [(e["turn"], e["prompt"]) for e in starts] == [(1, "edit and sed"), (2, "rm and create")]
    assert all(e["checkpoint"] and e["unprotected"] is None for e in starts)
    marks = [e for e in events if e["type"] == "checkpoint"]
    commands = [(e["turn"], e["command"]) for e in marks if "command" in e]
    assert commands == [(1, "sed -i s/beta/BETA/ b.txt"), (2, "rm c.txt")]
    assert [e["turn"] for e in marks if e.get("at") == "end"] == [1, 2]

    assert rewind_files(tmp_path, server, session, 2) == before[1]
    assert rewind_files(tmp_path, server, session, 1, "--at", "1") == before[0]
    assert (workspace / "notes.log").read_text() == "ignored\n"
    assert hash_folder(workspace / ".git") == git_before


def test_a_stream_json_session_is_checkpointed_and_rewound(
    server: FaultServerProcess, tmp_path: Path
) -> None:
    workspace = tmp_path / "ws"
    user_repository(workspace)
    before = tree_state(workspace)
    server.script(
        Outcome.ok(tool_calls=FIRST),
        Outcome.ok("Done turn one."),
        Outcome.ok(tool_calls=SECOND),
        Outcome.ok("Done turn two."),
    )
    events, _ = stream(tmp_path, server, ["edit and sed", "rm and create"], "--approval", "yolo")
    assert not [e for e in events if e["type"] == "system" and e.get("subtype") == "warning"]
    session = events[0]["session_id"]
    assert not (workspace / "c.txt").exists()
    after_one = dict(before, **{"a.txt": ("file", b"ALPHA\n", False)})
    after_one["b.txt"] = ("file", b"BETA\n", False)
    assert rewind_files(tmp_path, server, session, 2) == after_one
    assert rewind_files(tmp_path, server, session, 1, "--at", "1") == before


@pytest.fixture
def lock_held(tmp_path: Path, qwen_home: Path) -> Iterator[None]:
    """Another qwen-dev (a REPL) in the same folder, taking a checkpoint meanwhile."""
    workspace = tmp_path / "ws"
    workspace.mkdir(exist_ok=True)
    folder = qwen_home / "checkpoints" / workspace_key(workspace)
    folder.mkdir(parents=True)
    with open(folder / "qwen-dev.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@pytest.mark.usefixtures("lock_held")
def test_ask_goes_on_unprotected_when_another_qwen_dev_holds_the_lock_and_says_so_once(
    server: FaultServerProcess, tmp_path: Path, qwen_home: Path
) -> None:
    workspace = tmp_path / "ws"
    (workspace / "b.txt").write_text("beta\n")
    server.script(
        Outcome.ok(tool_calls=[*FIRST[1:], tool_call("write_file", path="n.txt", content="n\n")]),
        Outcome.ok("Done all the same."),
    )
    run = ask(tmp_path, server, "--approval", "yolo", "sed and write")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["text"] == "Done all the same."
    assert (workspace / "b.txt").read_text() == "BETA\n"
    assert (workspace / "n.txt").read_text() == "n\n"
    said = [line for line in run.stderr.splitlines() if "unprotected" in line]
    assert len(said) == 1, run.stderr
    assert "no checkpoint before this turn" in said[0]
    assert "another qwen-dev in this folder" in said[0]
    (events,) = sessions(qwen_home)
    (start,) = [e for e in events if e["type"] == "turn_start"]
    assert start["checkpoint"] is None
    assert "another qwen-dev" in start["unprotected"]


@pytest.mark.usefixtures("lock_held")
def test_a_stream_json_session_says_unprotected_once_in_a_system_event(
    server: FaultServerProcess, tmp_path: Path
) -> None:
    server.script(
        Outcome.ok(tool_calls=[tool_call("write_file", path="n.txt", content="n\n")]),
        Outcome.ok("One."),
        Outcome.ok(tool_calls=[tool_call("run_command", command="touch m.txt")]),
        Outcome.ok("Two."),
    )
    events, stderr = stream(tmp_path, server, ["write", "touch"], "--approval", "yolo")
    warnings = [e for e in events if e["type"] == "system" and e.get("subtype") == "warning"]
    assert len(warnings) == 1, events
    assert "no checkpoint before this turn" in warnings[0]["message"]
    assert "unprotected" not in stderr
    assert [e["result"] for e in events if e["type"] == "result"] == ["One.", "Two."]
    assert (tmp_path / "ws" / "m.txt").exists()


def test_ask_in_the_default_mode_takes_no_checkpoint(
    server: FaultServerProcess, tmp_path: Path, qwen_home: Path
) -> None:
    (tmp_path / "ws").mkdir()
    server.script(Outcome.ok("Just an answer."))
    run = ask(tmp_path, server, "hello")
    assert run.returncode == 0, run.stderr
    assert not (qwen_home / "checkpoints").exists()  # nothing could change: no git run
    (events,) = sessions(qwen_home)
    assert not [e for e in events if e["type"] in ("turn_start", "checkpoint")]


def test_ask_on_a_full_disk_goes_on_unprotected_and_says_so_once(
    server: FaultServerProcess, tmp_path: Path, qwen_home: Path
) -> None:
    from tests.checkpoints.test_shadow import tiny_disk

    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "data.bin").write_bytes(os.urandom(1_000_000))
    server.script(
        Outcome.ok(tool_calls=[tool_call("run_command", command="touch m.txt")]),
        Outcome.ok("Answered all the same."),
    )
    with tiny_disk(qwen_home / "checkpoints", "200k"):
        run = ask(tmp_path, server, "--approval", "yolo", "touch")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["text"] == "Answered all the same."
    assert (workspace / "m.txt").exists()
    said = [line for line in run.stderr.splitlines() if "unprotected" in line]
    assert len(said) == 1, run.stderr
    assert said[0].startswith("qwen-dev: no checkpoint before this turn (")


async def test_a_command_the_stream_json_caller_approves_is_checkpointed_before_it_runs(
    tmp_path: Path, qwen_home: Path
) -> None:
    from faultserver import FaultServer
    from qwen_dev_cli.checkpoints import ShadowRepo
    from tests.test_cli_ask import write_config as ask_config
    from tests.test_cli_stream_input import start, user

    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "b.txt").write_text("beta\n")
    async with FaultServer() as srv:
        srv.script(
            Outcome.ok(None, tool_calls=[tool_call("run_command", command="sed -i s/b/B/ b.txt")]),
            Outcome.ok("sedded"),
        )
        qd = await start(ask_config(tmp_path / "c.toml", srv), workspace)  # approval: ask
        await qd.send(user("sed b.txt"))
        asked = await qd.until("control_request")
        assert asked["request"]["tool_name"] == "run_command"
        allow = {"behavior": "allow"}
        response = {"subtype": "success", "request_id": asked["request_id"], "response": allow}
        await qd.send({"type": "control_response", "response": response})
        assert (await qd.until("result"))["result"] == "sedded"
        assert await qd.close() == 0
    assert (workspace / "b.txt").read_text() == "Beta\n"
    (events,) = sessions(qwen_home)
    (start_event,) = [e for e in events if e["type"] == "turn_start"]
    (before,) = [e for e in events if e.get("command") == "sed -i s/b/B/ b.txt"]
    git = ShadowRepo(workspace, qwen_home / "checkpoints").git()
    for commit in (start_event["checkpoint"], before["commit"]):
        assert git.run("show", f"{commit}:b.txt") == b"beta\n"
