"""Issue 12 in the REPL, in a real pseudo-terminal: ``--continue`` resumes the latest
chat (not a later ``qwen-dev ask``), and an ``@path`` that is not attached is said."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest

from faultserver import DEFAULT_TEXT, FaultServerProcess

from .test_repl_pty import Terminal, spawn, write_config

pytestmark = pytest.mark.slow


@pytest.fixture
def server() -> Iterator[FaultServerProcess]:
    with FaultServerProcess() as srv:
        yield srv


def test_continue_resumes_the_latest_chat_not_a_later_ask(
    server: FaultServerProcess, tmp_path: Path
) -> None:
    chat = spawn(tmp_path, server)
    chat.sendline("my name is Ada")
    chat.expect_exact(DEFAULT_TEXT)
    assert chat.leave() == 0
    config = str(write_config(tmp_path, server))
    asked = subprocess.run(
        [sys.executable, "-m", "qwen_dev_cli", "ask", "--config", config, "a scripted question"],
        cwd=tmp_path / "ws",
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ),
    )
    assert asked.returncode == 0, asked.stderr

    again = spawn(tmp_path, server, "--continue")
    again.sendline("what is my name?")
    again.expect_exact("─ lab · fault-model")
    assert again.leave() == 0
    sent = server.requests()[-1]["json"]["messages"]
    contents = [m["content"] for m in sent[1:]]
    assert contents == ["my name is Ada", DEFAULT_TEXT, "what is my name?"]


def test_a_mention_that_is_not_attached_is_said(server: FaultServerProcess, tmp_path: Path) -> None:
    child = spawn(tmp_path, server)
    child.sendline("what is in @missing.py?")
    child.expect_exact("@missing.py: no such file in the workspace; not attached")
    child.expect_exact(DEFAULT_TEXT)
    assert child.leave() == 0


def test_working_in_the_home_folder_is_said_at_start(
    server: FaultServerProcess, tmp_path: Path
) -> None:
    home = tmp_path / "ada"
    home.mkdir()
    child = Terminal(
        pexpect.spawn(
            sys.executable,
            ["-m", "qwen_dev_cli", "--config", str(write_config(tmp_path, server))],
            cwd=str(home),
            env={**os.environ, "TERM": "xterm-256color", "HOME": str(home)},
            dimensions=(40, 200),
            encoding="utf-8",
            timeout=30,
        )
    )
    child.expect_exact("the workspace is your home folder")
    child.expect("lab CLOSED")
    assert child.leave() == 0
