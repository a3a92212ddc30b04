"""Long sessions in a real terminal against a server with a 6,000-token window (the
fault server refuses, as a real one does, a request that does not fit): every turn
is answered, the status bar shows ``ctx N%``, and ``/context``, ``/compact`` work."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from faultserver import FaultServerProcess, Outcome
from tests.ui.test_repl_pty import PROMPT, Terminal, sessions

pytestmark = pytest.mark.slow

WINDOW = 6000
#: About 750 tokens, as the issue's server answered.
ANSWER = " ".join(f"word{n}" for n in range(750))


@pytest.fixture
def server() -> Iterator[FaultServerProcess]:
    with FaultServerProcess(text=ANSWER) as srv:
        srv.configure(context_window=WINDOW)
        yield srv


def spawn(tmp_path: Path, srv: FaultServerProcess, window: int | None) -> Terminal:
    import os
    import sys

    import pexpect

    known = f"context_window = {window}\n" if window else ""
    config = tmp_path / "config.toml"
    config.write_text(
        f"""
provider_order = ["lab"]

[providers.lab]
base_url = "{srv.base_url}"
model = "fault-model"
{known}
[retry]
max_retries = 1
base_delay = 0.01
max_delay = 0.02
""",
        encoding="utf-8",
    )
    workspace = tmp_path / "ws"
    workspace.mkdir(exist_ok=True)
    child = pexpect.spawn(
        sys.executable,
        ["-m", "qwen_dev_cli", "--config", str(config)],
        cwd=str(workspace),
        env={**os.environ, "TERM": "xterm-256color"},
        dimensions=(40, 200),
        encoding="utf-8",
        timeout=30,
    )
    terminal = Terminal(child)
    terminal.expect("lab CLOSED")
    return terminal


def answered(home: Path) -> int:
    [events] = sessions(home)
    return sum(
        1
        for e in events
        if e["type"] == "message"
        and e["message"]["role"] == "assistant"
        and e["message"]["content"] == ANSWER
    )


def test_thirty_turns_in_a_6000_token_window_are_all_answered(
    server: FaultServerProcess, tmp_path: Path, qwen_home: Path
) -> None:
    child = spawn(tmp_path, server, WINDOW)
    for turn in range(30):
        child.sendline(f"question {turn}: keep the API in api.py stable")
        child.expect_exact("─ lab · fault-model")  # the turn's summary line: answered
        child.expect(PROMPT)
        if turn == 1:
            child.sendline("/compact keep the API design")
            child.expect(r"context compacted: [\d,]+ to [\d,]+ of 6,000 tokens")
    child.expect(r"ctx \d+%")
    child.sendline("/context")
    child.expect(r"context: [\d,]+ of 6,000 tokens")
    child.expect_exact("reserved for the answer")
    assert child.leave() == 0
    outcomes = [r["outcome"] for r in server.requests()]
    assert "context_length_exceeded" not in outcomes
    assert answered(qwen_home) == 30
    [events] = sessions(qwen_home)
    compactions = [e for e in events if e["type"] == "compaction"]
    assert len(compactions) >= 2
    assert compactions[0]["reason"] == "manual"
    assert compactions[0]["focus"] == "keep the API design"
    assert {c["reason"] for c in compactions[1:]} == {"auto"}


def test_a_server_context_error_mid_session_is_recovered(
    server: FaultServerProcess, tmp_path: Path, qwen_home: Path
) -> None:
    # No context_window configured: the default (8192) is more than the server's 6000,
    # so a turn is refused before the client knows better.
    child = spawn(tmp_path, server, None)
    for turn in range(12):
        child.sendline(f"question {turn}")
        child.expect_exact("─ lab · fault-model")
        child.expect(PROMPT)
    assert child.leave() == 0
    outcomes = [r["outcome"] for r in server.requests()]
    assert outcomes.count("context_length_exceeded") == 1  # then the window is known
    assert answered(qwen_home) == 12
    [events] = sessions(qwen_home)
    reasons = [e["reason"] for e in events if e["type"] == "compaction"]
    assert reasons[0] == "overflow"


# --- issue 24: never locked out after a context-length error -----------------------------

SMALL_WINDOW = 3000


@pytest.mark.parametrize("under_report", [False, True], ids=["truthful", "under-reporting"])
def test_never_locked_out_after_the_servers_context_error(
    tmp_path: Path, qwen_home: Path, under_report: bool
) -> None:
    # The scenario: no context_window configured (8,192 assumed), a server
    # allowing 3,000 tokens, attachments of about 601 tokens, and a server that reports
    # its usage truthfully or under-reports it.
    with FaultServerProcess(text=ANSWER) as srv:
        srv.configure(context_window=SMALL_WINDOW)
        if under_report:
            srv.script(*[Outcome.ok(usage={"prompt_tokens": 50}) for _ in range(200)])
        workspace = tmp_path / "ws"
        workspace.mkdir()
        for n in range(4):
            (workspace / f"part{n}.py").write_text("x = 1\n" * 400, encoding="utf-8")
        child = spawn(tmp_path, srv, None)
        for turn in range(4):
            child.sendline(f"review @part{turn}.py")
            child.expect_exact("─ lab · fault-model")  # answered
            child.expect(PROMPT)
        child.sendline("/compact")  # works (or has nothing left to do), never "could not"
        child.expect(r"context compacted: [\d,]+ to [\d,]+ of 3,000 tokens|nothing to compact")
        child.expect(PROMPT)
        child.sendline("/new")
        child.expect_exact("new conversation")
        child.sendline("/context")
        child.expect(r"context: ([\d,]+) of 3,000 tokens \((\d+)%\)")
        used = int(child.child.match.group(1).replace(",", ""))
        assert used < SMALL_WINDOW - 750  # the system prompt and tools, with room to spare
        child.expect(PROMPT)
        child.sendline("hi")
        child.expect_exact("─ lab · fault-model")
        assert child.leave() == 0
        outcomes = [r["outcome"] for r in srv.requests()]
    assert outcomes.count("context_length_exceeded") == 1  # then the window is known
    assert "your message is about" not in child.child.before
    for events in sessions(qwen_home):
        # Every summary paid for is in the session.
        assert all(
            e["summarized"] > 0 or e["elided"] > 0 for e in events if e["type"] == "compaction"
        )
