"""The REPL in a real pseudo-terminal (pexpect), against the fault server in its own
process: what a person at the keyboard sees and does."""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pexpect
import pytest

from faultserver import DEFAULT_TEXT, FaultServerProcess, Outcome

pytestmark = pytest.mark.slow

PROMPT = "› "
LONG_ANSWER = " ".join(f"word{n}" for n in range(400))


@pytest.fixture
def server() -> Iterator[FaultServerProcess]:
    with FaultServerProcess() as srv:
        yield srv


def write_config(tmp_path: Path, srv: FaultServerProcess) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f"""
provider_order = ["lab"]

[providers.lab]
base_url = "{srv.base_url}"
model = "fault-model"
timeout = 60

[retry]
max_retries = 1
base_delay = 0.01
max_delay = 0.02

[circuit_breaker]
failure_threshold = 2
recovery_timeout = 600
""",
        encoding="utf-8",
    )
    return path


class Terminal:
    """A pexpect child that answers the terminal's cursor-position requests, as a real
    terminal does (prompt-toolkit draws its bottom toolbar only once it knows where
    the cursor is)."""

    CPR_REQUEST = "\x1b[6n"

    def __init__(self, child: pexpect.spawn) -> None:
        self.child = child

    def expect(self, pattern: str) -> None:
        self._expect(pattern, exact=False)

    def expect_exact(self, text: str) -> None:
        self._expect(text, exact=True)

    def _expect(self, pattern: str, *, exact: bool) -> None:
        while True:
            if exact:
                found = self.child.expect_exact([pattern, self.CPR_REQUEST])
            else:
                found = self.child.expect([pattern, re.escape(self.CPR_REQUEST)])
            if found == 0:
                return
            self.child.send("\x1b[1;1R")

    def send(self, text: str) -> None:
        self.child.send(text)

    def sendline(self, text: str) -> None:
        self.child.sendline(text)

    def sendintr(self) -> None:
        self.child.sendintr()

    def leave(self, how: str = "/exit\r") -> int:
        """Leave (``/exit``, or Ctrl-D with ``"\x04"``); the exit status."""
        self.child.send(how)
        while self.child.expect([pexpect.EOF, re.escape(self.CPR_REQUEST)]) == 1:
            self.child.send("\x1b[1;1R")
        self.child.close()
        status: int | None = self.child.exitstatus  # pexpect is untyped
        assert status is not None
        return status


def spawn(tmp_path: Path, srv: FaultServerProcess, *args: str) -> Terminal:
    env = {**os.environ, "TERM": "xterm-256color"}
    workspace = tmp_path / "ws"
    workspace.mkdir(exist_ok=True)
    child = pexpect.spawn(
        sys.executable,
        ["-m", "qwen_dev_cli", "--config", str(write_config(tmp_path, srv)), *args],
        cwd=str(workspace),
        env=env,
        dimensions=(40, 160),
        encoding="utf-8",
        timeout=30,
    )
    terminal = Terminal(child)
    terminal.expect("lab CLOSED")  # the status bar is up: the prompt is ready
    return terminal


def sessions(home: Path) -> list[list[dict[str, Any]]]:
    """The events of each session file."""
    files = sorted((home / "sessions").glob("*.jsonl"))
    return [[json.loads(line) for line in f.read_text().splitlines()] for f in files]


def test_a_question_is_answered_as_it_streams_and_exit_leaves_with_0(
    server: FaultServerProcess, tmp_path: Path
) -> None:
    child = spawn(tmp_path, server)
    child.sendline("hello")
    child.expect_exact(DEFAULT_TEXT)
    child.expect_exact("─ lab · fault-model")
    child.expect(PROMPT)
    assert server.requests()[-1]["stream"] is True
    assert child.leave() == 0


def test_status_bar_goes_from_closed_to_open_after_an_outage(
    server: FaultServerProcess, tmp_path: Path
) -> None:
    child = spawn(tmp_path, server)  # spawn waited for "lab CLOSED"
    server.configure(default=Outcome.status(503))
    child.sendline("are you there?")
    child.expect("all providers failed")
    child.expect(r"lab OPEN \d+s")
    child.sendline("/status")
    child.expect(r"OPEN \(trial in \d+\.\ds\)")
    assert child.leave() == 0


def test_metrics_prints_the_table(server: FaultServerProcess, tmp_path: Path) -> None:
    child = spawn(tmp_path, server)
    child.sendline("hello")
    child.expect_exact(DEFAULT_TEXT)
    child.sendline("/metrics")
    for label in ("requests", "success rate", "latency p50", "latency p95", "retries"):
        child.expect_exact(label)
    child.expect_exact("rate-limited waits")
    child.expect_exact("breaker blocks")
    child.expect_exact("failovers")
    cell = r"(?:\s|│|\x1b\[[\d;]*m)+"  # borders, padding and colour between cells
    child.expect(cell.join(["lab", "1", "0", "CLOSED"]))  # success, failure, state
    assert child.leave() == 0


def test_ctrl_c_cancels_a_hanging_request_and_the_prompt_comes_back(
    server: FaultServerProcess, tmp_path: Path
) -> None:
    child = spawn(tmp_path, server)
    server.configure(default=Outcome.hang())
    child.sendline("this will hang")
    child.expect(r"working [1-9]\d*s")  # the footer keeps refreshing while it hangs
    child.sendintr()
    child.expect_exact("⏹ interrupted")
    child.expect("lab CLOSED")  # back at the prompt, its status bar drawn again
    server.configure(default=Outcome.ok())
    child.sendline("and now?")
    child.expect_exact(DEFAULT_TEXT)
    assert child.leave() == 0


def test_ctrl_c_mid_answer_keeps_what_was_said(
    server: FaultServerProcess, tmp_path: Path, qwen_home: Path
) -> None:
    server.configure(default=Outcome.ok(LONG_ANSWER, chunk_delay=0.05))
    child = spawn(tmp_path, server)
    child.sendline("talk slowly")
    child.expect_exact("word3 ")
    child.sendintr()
    child.expect_exact("⏹ interrupted: what was said so far is kept")
    assert child.leave() == 0
    (events,) = sessions(qwen_home)
    messages = [e for e in events if e["type"] == "message"]
    last = messages[-1]
    assert last["interrupted"] is True
    content = last["message"]["content"]
    assert content.startswith("word0 word1 word2 word3")
    assert len(content) < len(LONG_ANSWER)


def test_ctrl_c_on_an_empty_prompt_hints_and_ctrl_d_leaves(
    server: FaultServerProcess, tmp_path: Path
) -> None:
    child = spawn(tmp_path, server)
    child.sendintr()
    child.expect_exact("to leave, press Ctrl-D or type /exit")
    assert child.leave("\x04") == 0


def test_continue_resumes_with_history(
    server: FaultServerProcess, tmp_path: Path, qwen_home: Path
) -> None:
    child = spawn(tmp_path, server)
    child.sendline("my name is Ada")
    child.expect_exact(DEFAULT_TEXT)
    assert child.leave() == 0
    again = spawn(tmp_path, server, "--continue")
    again.sendline("what is my name?")
    again.expect_exact("─ lab · fault-model")
    assert again.leave() == 0
    sent = server.requests()[-1]["json"]["messages"]
    assert [m["content"] for m in sent[1:]] == ["my name is Ada", DEFAULT_TEXT, "what is my name?"]
    assert len(sessions(qwen_home)) == 1


def test_alt_enter_writes_a_second_line_into_the_same_message(
    server: FaultServerProcess, tmp_path: Path
) -> None:
    child = spawn(tmp_path, server)
    child.send("first line")
    child.send("\x1b\r")
    child.send("second line\r")
    child.expect_exact(DEFAULT_TEXT)
    assert server.requests()[-1]["json"]["messages"][-1]["content"] == "first line\nsecond line"
    assert child.leave() == 0


def test_not_a_terminal_points_to_ask(tmp_path: Path) -> None:
    import subprocess

    run = subprocess.run(
        [sys.executable, "-m", "qwen_dev_cli"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 2
    assert re.search(r"needs a terminal.*qwen-dev ask", run.stderr)


def tool_call(name: str, **arguments: object) -> dict[str, str]:
    return {"name": name, "arguments": json.dumps(arguments)}


def test_a_proposed_edit_shows_its_diff_y_applies_it_and_undo_restores_it(
    server: FaultServerProcess, tmp_path: Path
) -> None:
    child = spawn(tmp_path, server)
    target = tmp_path / "ws" / "app.py"
    target.write_text("print('hello')\n", encoding="utf-8")
    server.script(
        Outcome.ok(
            tool_calls=[
                tool_call(
                    "edit_file", path="app.py", search="print('hello')", replace="print('bye')"
                )
            ]
        ),
        Outcome.ok("Changed the greeting."),
    )
    child.sendline("say bye instead")
    child.expect_exact("+print('bye')")  # the diff, before anything is written
    child.expect_exact("Apply this change?")
    assert target.read_text(encoding="utf-8") == "print('hello')\n"
    child.send("y")
    child.expect_exact("→ yes")  # the choice is echoed
    child.expect_exact("Changed the greeting.")
    child.expect(PROMPT)
    assert target.read_text(encoding="utf-8") == "print('bye')\n"
    child.sendline("/undo")
    child.expect_exact("restored app.py")
    assert target.read_text(encoding="utf-8") == "print('hello')\n"
    assert child.leave() == 0


def test_a_command_answered_no_with_a_reason_does_not_run(
    server: FaultServerProcess, tmp_path: Path
) -> None:
    child = spawn(tmp_path, server)
    marker = tmp_path / "ws" / "ran.txt"
    server.script(
        Outcome.ok(tool_calls=[tool_call("run_command", command="touch ran.txt")]),
        Outcome.ok("Understood, not running it."),
    )
    child.sendline("make ran.txt")
    child.expect_exact("touch ran.txt")
    child.expect_exact("Run it?")
    child.send("n")
    child.expect_exact("Why not?")
    child.sendline("not on a Friday")
    child.expect_exact("Understood, not running it.")
    child.expect(PROMPT)
    assert not marker.exists()
    told = [m for m in server.requests()[-1]["json"]["messages"] if m["role"] == "tool"]
    assert "not on a Friday" in told[-1]["content"]
    assert child.leave() == 0


def test_sigkill_mid_answer_keeps_every_earlier_turn(
    server: FaultServerProcess, tmp_path: Path, qwen_home: Path
) -> None:
    child = spawn(tmp_path, server)
    for question in ("first question", "second question"):
        child.sendline(question)
        child.expect_exact(DEFAULT_TEXT)
        child.expect(PROMPT)
    server.configure(default=Outcome.ok(LONG_ANSWER, chunk_delay=0.05))
    child.sendline("third question")
    child.expect_exact("word3 ")
    child.child.kill(9)  # SIGKILL: no cleanup, no flush beyond what was written
    child.child.close(force=True)
    (events,) = sessions(qwen_home)
    messages = [e["message"] for e in events if e["type"] == "message"]
    assert [(m["role"], m["content"]) for m in messages] == [
        ("user", "first question"),
        ("assistant", DEFAULT_TEXT),
        ("user", "second question"),
        ("assistant", DEFAULT_TEXT),
        ("user", "third question"),
    ]
    # ...and the killed session is resumed with all of it: the model sees every turn.
    server.configure(default=Outcome.ok(DEFAULT_TEXT))
    resumed = spawn(tmp_path, server, "--continue")
    resumed.sendline("fourth question")
    resumed.expect_exact(DEFAULT_TEXT)
    resumed.expect(PROMPT)
    sent = server.requests()[-1]["json"]["messages"]
    users = [m["content"] for m in sent if m["role"] == "user"]
    assert users[-4:] == ["first question", "second question", "third question", "fourth question"]
    assert resumed.leave() == 0


def test_undo_of_a_file_edited_since_asks_with_the_diff_and_keeps_a_backup(
    server: FaultServerProcess, tmp_path: Path
) -> None:
    child = spawn(tmp_path, server)
    target = tmp_path / "ws" / "app.py"
    target.write_text("print('hello')\n", encoding="utf-8")
    server.script(
        Outcome.ok(tool_calls=[tool_call("write_file", path="app.py", content="print('bye')\n")]),
        Outcome.ok("Rewrote it."),
    )
    child.sendline("say bye")
    child.expect_exact("Apply this change?")
    child.send("y")
    child.expect_exact("Rewrote it.")
    child.expect(PROMPT)
    target.write_text("print('my own edit')\n", encoding="utf-8")
    child.sendline("/undo")
    child.expect_exact("app.py was changed after write_file wrote it")
    child.expect_exact("-print('my own edit')")
    child.expect_exact("Undo anyway?")
    assert target.read_text(encoding="utf-8") == "print('my own edit')\n"
    child.send("y")
    child.expect_exact("saved in app.py.qwen-dev-backup-")
    child.expect(PROMPT)
    assert target.read_text(encoding="utf-8") == "print('hello')\n"
    [backup] = (tmp_path / "ws").glob("app.py.qwen-dev-backup-*")
    assert backup.read_text(encoding="utf-8") == "print('my own edit')\n"
    assert child.leave() == 0


def test_yes_to_all_edits_stops_asking_for_edits_for_the_session(
    server: FaultServerProcess, tmp_path: Path
) -> None:
    child = spawn(tmp_path, server)
    workspace = tmp_path / "ws"
    server.script(
        Outcome.ok(tool_calls=[tool_call("write_file", path="a.txt", content="one\n")]),
        Outcome.ok(tool_calls=[tool_call("write_file", path="b.txt", content="two\n")]),
        Outcome.ok("Wrote both."),
    )
    child.sendline("write two files")
    child.expect_exact("[a]ll: yes, and stop asking for edits")
    child.send("a")
    child.expect_exact("approval is auto-edit for the rest of this session")
    child.expect_exact("Wrote both.")  # b.txt was written without a question
    child.expect(PROMPT)
    assert (workspace / "b.txt").read_text(encoding="utf-8") == "two\n"
    child.sendline("/approval")
    child.expect_exact("approval: auto-edit")
    assert child.leave() == 0


def test_a_command_shows_the_end_of_its_output_and_output_shows_all_of_it(
    server: FaultServerProcess, tmp_path: Path
) -> None:
    child = spawn(tmp_path, server)
    server.script(
        Outcome.ok(tool_calls=[tool_call("run_command", command="seq 101 112")]),
        Outcome.ok("Counted."),
    )
    child.sendline("count")
    child.expect_exact("Run it?")
    child.send("y")
    child.expect_exact("→ yes")
    child.expect_exact("✓ run_command ok")
    for number in range(108, 113):  # its last five lines, in order
        child.expect_exact(f"│ {number}")
        assert "107" not in child.child.before
    child.expect_exact("the last 5 of 12 lines: /output shows it all")
    child.expect_exact("Counted.")
    child.expect(PROMPT)
    child.sendline("/output")
    child.expect_exact("exit code 0")
    for number in range(101, 113):  # all of it
        child.expect_exact(f"{number}")
    assert child.leave() == 0


def test_ctrl_d_says_which_session_was_saved_and_how_to_resume_it(
    server: FaultServerProcess, tmp_path: Path
) -> None:
    child = spawn(tmp_path, server)
    child.sendline("remember 42")
    child.expect_exact(DEFAULT_TEXT)
    child.expect(PROMPT)
    child.send("\x04")
    child.expect(r"session ([\w-]+) saved · resume: qwen-dev --resume ([\w-]+)")
    match = child.child.match
    assert match is not None
    saved_id, resume_id = match.group(1), match.group(2)
    assert saved_id == resume_id
    child.child.expect(pexpect.EOF)
    again = spawn(tmp_path, server, "--resume", resume_id)
    again.sendline("what was the number?")
    again.expect_exact(DEFAULT_TEXT)
    sent = server.requests()[-1]["json"]["messages"]
    users = [m["content"] for m in sent if m["role"] == "user"]
    assert users == ["remember 42", "what was the number?"]
    assert again.leave() == 0
