"""Sessions and metrics through the real CLI: saved as they happen, survive SIGKILL."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest

from faultserver import FaultServer, Outcome
from qwen_dev_cli.session.store import SessionStore

from .test_cli_ask import qwen_dev, write_config

pytestmark = pytest.mark.slow  # Every test runs real `qwen-dev` processes (one on a pty).


async def test_ask_saves_a_session_that_the_sessions_commands_manage(
    tmp_path: Path, qwen_home: Path
) -> None:
    async with FaultServer(text="Use a circuit breaker.") as srv:
        config = write_config(tmp_path / "c.toml", srv)
        run = await qwen_dev(
            "ask", "--json", "--config", str(config), "how do I stop retry storms?"
        )
    assert run.code == 0, run.err
    session_id = run.json()["session_id"]

    listed = await qwen_dev("sessions", "list", "--json")
    [entry] = json.loads(listed.out)
    assert entry["id"] == session_id
    assert entry["kind"] == "ask"
    assert entry["title"] == "how do I stop retry storms?"
    assert entry["messages"] == 2

    # show: a summary to recognise the session by; export: the whole transcript.
    shown = await qwen_dev("sessions", "show", session_id[:15])
    assert shown.out.startswith(f"Session {session_id} (ask)\n")
    assert "  turns     1 (2 messages)\n" in shown.out
    assert "  model     lab · fault-model" in shown.out
    assert "› how do I stop retry storms?" in shown.out
    assert "Use a circuit breaker." in shown.out
    markdown = await qwen_dev("sessions", "export", session_id)
    assert markdown.out != shown.out
    assert "## user" in markdown.out
    assert "## user" not in shown.out

    exported = await qwen_dev("sessions", "export", session_id, "--format", "json")
    assert [m["role"] for m in json.loads(exported.out)["messages"]] == ["user", "assistant"]
    assert (await qwen_dev("sessions", "export", session_id, "--format", "xml")).code == 2

    deleted = await qwen_dev("sessions", "delete", session_id)
    assert deleted.code == 0
    missing = await qwen_dev("sessions", "show", session_id)
    assert missing.code == 2
    assert "no session" in missing.err


async def test_metrics_aggregate_over_runs(tmp_path: Path) -> None:
    async with FaultServer() as srv:
        srv.script(Outcome.status(503))
        config = write_config(tmp_path / "c.toml", srv)
        for _ in range(2):
            assert (await qwen_dev("ask", "--config", str(config), "hi")).code == 0
    run = await qwen_dev("metrics", "--json")
    merged = json.loads(run.out)
    assert merged["runs"] == 2
    assert merged["total_requests"] == 2
    assert merged["retries"] == 1
    lab = merged["providers"]["lab"]
    assert {k: lab[k] for k in ("success", "failure", "state")} == {
        "success": 2,
        "failure": 1,
        "state": "CLOSED",
    }
    # Two requests, three attempts (one 503): counted and labelled apart.
    assert (lab["requests"], lab["attempts"], lab["failures"]["5xx"]) == (2, 3, 1)
    assert (merged["successful_requests"], merged["total_attempts"]) == (2, 3)
    assert merged["histograms"]["latency_ms"]["count"] == 2
    assert merged["latency_resolution_pct"] > 0
    table = await qwen_dev("metrics")
    assert "failovers" in table.out
    assert "lab" in table.out
    assert "success rate (of requests)" in table.out
    assert "attempts" in table.out


LONG_STORY = Outcome.ok(text=" ".join(f"word{i}" for i in range(400)), chunk_delay=0.05)


async def interrupt_mid_answer(srv: FaultServer, config: Path, sig: signal.Signals) -> int:
    """Start `qwen-dev ask`, send ``sig`` once the 20-second answer is streaming; the
    exit code. (Its stdout is a pipe, where ask writes only complete answers, so the
    server's log tells when the answer is under way.)"""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "qwen_dev_cli",
        "ask",
        "--config",
        str(config),
        "tell me a long story",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=dict(os.environ),
    )
    for _ in range(600):
        if srv.requests:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)  # a few words in, far from the end
    assert proc.returncode is None
    proc.send_signal(sig)
    return await asyncio.wait_for(proc.wait(), timeout=30)


async def test_sigkill_mid_stream_leaves_a_loadable_session(
    tmp_path: Path, qwen_home: Path
) -> None:
    async with FaultServer(default=LONG_STORY) as srv:
        config = write_config(tmp_path / "c.toml", srv)
        await interrupt_mid_answer(srv, config, signal.SIGKILL)
    store = SessionStore(qwen_home / "sessions")
    [info] = store.list()
    loaded = store.load(info.id)
    assert loaded.messages == [{"role": "user", "content": "tell me a long story"}]
    # The killed session can be continued.
    with store.resume(info.id) as resumed:
        resumed.append({"role": "user", "content": "again"})
    assert len(store.load(info.id).messages) == 2


async def test_ctrl_c_mid_answer_exits_130_and_keeps_the_partial_answer(
    tmp_path: Path, qwen_home: Path
) -> None:
    async with FaultServer(default=LONG_STORY) as srv:
        config = write_config(tmp_path / "c.toml", srv)
        code = await interrupt_mid_answer(srv, config, signal.SIGINT)
    assert code == 130
    store = SessionStore(qwen_home / "sessions")
    [info] = store.list()
    loaded = store.load(info.id)
    last = loaded.events[-1]
    assert last["interrupted"] is True
    assert last["message"]["content"].startswith("word0")


async def test_sessions_and_metrics_work_despite_a_broken_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("this is [not toml\n", encoding="utf-8")
    monkeypatch.setenv("QWEN_DEV_CONFIG", str(broken))
    assert (await qwen_dev("ask", "hi")).code == 2  # what needs the config refuses...
    for command in (["sessions", "list"], ["metrics", "--json"], ["config", "path"]):
        run = await qwen_dev(*command)  # ...what does not, still works
        assert run.code == 0, (command, run.err)
    assert (await qwen_dev("config", "path")).out.strip() == str(broken)


def test_show_abbreviates_each_turn(qwen_home: Path, tmp_path: Path) -> None:
    store = SessionStore(qwen_home / "sessions")
    with store.create(tmp_path) as session:
        for n in range(1, 4):
            session.append({"role": "user", "content": f"question {n}\n\nFile `a.py`:\n..."})
            session.append(
                {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [
                        {
                            "id": f"c{n}",
                            "function": {"name": "read_file", "arguments": '{"path": "a.py"}'},
                        }
                    ],
                }
            )
            session.append({"role": "tool", "tool_call_id": f"c{n}", "content": "x = 1\n" * 500})
            session.append(
                {"role": "assistant", "content": "\n".join(f"line {i}" for i in range(9))}
            )
            session.note("turn", provider="lab", model="m", usage={"total_tokens": 1000})
    run = subprocess.run(
        [sys.executable, "-m", "qwen_dev_cli", "sessions", "show", session.id],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ),
    )
    assert run.returncode == 0, run.stderr
    assert "(chat)" in run.stdout
    assert "  turns     3 (12 messages)\n" in run.stdout
    assert "  model     lab · m; 3,000 tokens\n" in run.stdout
    assert run.stdout.count("› question") == 3
    assert "  tools: read_file a.py\n" in run.stdout
    assert "… (7 more lines)" in run.stdout
    assert "x = 1" not in run.stdout  # tool output is the transcript's, not the summary's
    assert len(run.stdout.splitlines()) < 30


def _spawn(*args: str) -> pexpect.spawn:
    return pexpect.spawn(
        sys.executable,
        ["-m", "qwen_dev_cli", *args],
        env=dict(os.environ),
        encoding="utf-8",
        timeout=30,
    )


def test_delete_asks_on_a_terminal_and_y_skips_the_question(
    qwen_home: Path, tmp_path: Path
) -> None:
    store = SessionStore(qwen_home / "sessions")
    with store.create(tmp_path) as session:
        session.append({"role": "user", "content": "keep me?"})
    path = store.path_of(session.id)

    child = _spawn("sessions", "delete", session.id)
    child.expect_exact(f"Delete session {session.id} (1 turn, ")
    child.expect_exact("? [y/N]: ")
    child.sendline("")  # the default is no
    child.expect_exact("not deleted")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert path.exists()

    child = _spawn("sessions", "delete", session.id)
    child.expect_exact("? [y/N]: ")
    child.sendline("y")
    child.expect_exact(f"deleted {session.id}")
    child.expect(pexpect.EOF)
    assert not path.exists()

    with store.create(tmp_path) as other:
        other.append({"role": "user", "content": "and me"})
    child = _spawn("sessions", "delete", "--yes", other.id)
    child.expect_exact(f"deleted {other.id}")
    child.expect(pexpect.EOF)
    assert "[y/N]" not in (child.before or "")
    assert not (qwen_home / "sessions" / f"{other.id}.jsonl").exists()
