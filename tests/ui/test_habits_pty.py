"""The peers' habits in a real terminal (issue 24, item 3): Esc stops an answer as
Ctrl-C does, Shift+Tab cycles the approval mode on the status bar, ``!command`` runs
and its output joins the conversation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from faultserver import DEFAULT_TEXT, FaultServerProcess, Outcome

from .test_repl_pty import LONG_ANSWER, PROMPT, sessions, spawn, write_config
from .test_statusbar_pty import settled_line, spawn_on_screen

pytestmark = pytest.mark.slow

ESC = "\x1b"
SHIFT_TAB = "\x1b[Z"


@pytest.fixture
def server() -> Iterator[FaultServerProcess]:
    with FaultServerProcess() as srv:
        yield srv


def test_esc_stops_an_answer_and_keeps_what_was_said(
    server: FaultServerProcess, tmp_path: Path, qwen_home: Path
) -> None:
    server.configure(default=Outcome.ok(LONG_ANSWER, chunk_delay=0.05))
    child = spawn(tmp_path, server)
    child.sendline("talk slowly")
    child.expect_exact("word3 ")
    child.send(ESC)
    child.expect_exact("⏹ interrupted: what was said so far is kept")
    child.expect("lab CLOSED")  # back at the prompt
    server.configure(default=Outcome.ok())
    child.sendline("and now?")
    child.expect_exact(DEFAULT_TEXT)
    assert child.leave() == 0
    (events,) = sessions(qwen_home)
    interrupted = [e for e in events if e["type"] == "message" and e.get("interrupted")]
    assert len(interrupted) == 1


def test_keys_typed_during_an_answer_reach_the_next_prompt(
    server: FaultServerProcess, tmp_path: Path
) -> None:
    server.configure(default=Outcome.ok(LONG_ANSWER, chunk_delay=0.02))
    child = spawn(tmp_path, server)
    child.sendline("talk slowly")
    child.expect_exact("word3 ")
    child.send("typed ahead")
    child.expect_exact("word399")  # the answer ran to its end: no key stopped it
    child.expect(PROMPT)
    child.expect_exact("typed ahead")  # on the next prompt's line
    assert child.leave("\x15/exit\r") == 0


def test_shift_tab_cycles_the_approval_mode_shown_on_the_status_bar(
    server: FaultServerProcess, tmp_path: Path
) -> None:
    config = write_config(tmp_path, server).read_text(encoding="utf-8")
    child, screen = spawn_on_screen(tmp_path, config, 120)
    assert "approval ask" in settled_line(child, screen, "approval")
    child.send(SHIFT_TAB)
    assert "approval auto-edit" in settled_line(child, screen, "approval auto-edit")
    child.send(SHIFT_TAB)
    assert "approval yolo" in settled_line(child, screen, "approval yolo")
    child.sendline("/approval")
    child.expect_exact("approval: yolo")
    assert child.leave() == 0


def test_a_bang_command_is_run_shown_and_given_to_the_model(
    server: FaultServerProcess, tmp_path: Path
) -> None:
    child = spawn(tmp_path, server)
    child.sendline("!echo hello-from-$((6 * 7))")
    child.expect_exact("hello-from-42")
    child.expect(PROMPT)
    child.sendline("what did it print?")
    child.expect_exact(DEFAULT_TEXT)
    assert child.leave() == 0
    sent = server.requests()[-1]["json"]["messages"]
    assert "hello-from-42" in sent[1]["content"]
    assert sent[2]["content"] == "what did it print?"
