"""Sessions and metrics through the real CLI: saved as they happen, survive SIGKILL."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import pytest

from qwen_dev_cli.session.store import SessionStore
from tests.fault_server import FaultServer, Outcome

from .test_cli_ask import qwen_dev, write_config


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
    assert entry["title"] == "how do I stop retry storms?"
    assert entry["messages"] == 2

    shown = await qwen_dev("sessions", "show", session_id[:15])
    assert "how do I stop retry storms?" in shown.out
    assert "Use a circuit breaker." in shown.out

    exported = await qwen_dev("sessions", "export", session_id, "--format", "json")
    assert [m["role"] for m in json.loads(exported.out)["messages"]] == ["user", "assistant"]

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
    assert merged["providers"]["lab"] == {"success": 2, "failure": 1, "state": "CLOSED"}
    table = await qwen_dev("metrics")
    assert "failovers" in table.out
    assert "lab" in table.out


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


@pytest.mark.slow
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


@pytest.mark.slow
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
