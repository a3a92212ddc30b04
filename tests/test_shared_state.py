"""One account, many processes: real `qwen-dev ask` processes share budget, cool-down
and breaker through the default `local` store (a SQLite file in QWEN_DEV_HOME)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from faultserver import FaultServer, Outcome
from qwen_dev_cli.core.account import WINDOW_GUARD

pytestmark = pytest.mark.slow


@pytest.fixture
async def lab() -> AsyncIterator[FaultServer]:
    async with FaultServer() as srv:
        yield srv


@pytest.fixture
async def spare() -> AsyncIterator[FaultServer]:
    async with FaultServer(text="from the spare") as srv:
        yield srv


def write_config(
    path: Path, *servers: FaultServer, extra: str = "", provider_extra: str = ""
) -> Path:
    names = [f"p{i}" for i in range(len(servers))]
    sections = "".join(
        f"""
[providers.{name}]
base_url = "{srv.base_url}"
model = "fault-model"
{provider_extra}
"""
        for name, srv in zip(names, servers, strict=True)
    )
    path.write_text(
        f"""
provider_order = {json.dumps(names)}
{sections}
[retry]
max_retries = 0
base_delay = 0.01
max_delay = 0.02
max_retry_after = 120
{extra}
""",
        encoding="utf-8",
    )
    return path


async def ask(config: Path, *extra: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "qwen_dev_cli",
        "ask",
        "hello",
        "--json",
        "--config",
        str(config),
        *extra,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=150)
    result: dict[str, Any] = json.loads(out)
    result["_code"] = proc.returncode
    result["_stderr"] = err.decode()
    return result


def outcomes(srv: FaultServer) -> list[str]:
    return [r.outcome for r in srv.requests if r.path.endswith("/chat/completions")]


async def test_processes_together_never_overrun_the_accounts_rpm(
    lab: FaultServer, tmp_path: Path
) -> None:
    """14 processes at once against a server allowing 10 a minute, with rpm = 10: the
    four beyond the budget wait for the window instead of drawing 429s."""
    lab.configure(rpm=10)
    config = write_config(tmp_path / "c.toml", lab, provider_extra="rpm = 10")
    results = await asyncio.gather(*(ask(config) for _ in range(14)))
    failed = [(r.get("error"), r["_stderr"]) for r in results if r["_code"] != 0]
    assert not failed, failed
    assert outcomes(lab) == ["ok"] * 14  # not one 429
    waited = sorted(r["latency_ms"] for r in results)
    assert waited[-1] > 50_000  # the last ones waited out the window...
    # ...and no more than that: each process's own count of its waits for budget (not
    # the wall clock, which a loaded machine stretches with 14 interpreters starting).
    # The window, the guard that keeps a late arrival out of the server's window, and
    # a bucket's width (0.6 s) at most.
    assert max(r["metrics"]["budget_wait_s"] for r in results) <= 60.0 + WINDOW_GUARD + 1.0
    assert sum(r["metrics"]["rate_limited"] for r in results) >= 4


async def test_a_429_keeps_every_process_off_the_provider(
    lab: FaultServer, spare: FaultServer, tmp_path: Path
) -> None:
    lab.script(Outcome.rate_limited(retry_after="20"))
    config = write_config(tmp_path / "c.toml", lab, spare)
    first = await ask(config)
    assert first["provider"] == "p1"  # failed over after the 429
    for _ in range(3):
        later = await ask(config)
        assert later["_code"] == 0
        assert later["provider"] == "p1"
    assert len(lab.requests) == 1  # nobody went back to it during its cool-down
    assert len(spare.requests) == 4


async def test_short_lived_processes_trip_the_shared_breaker(
    lab: FaultServer, spare: FaultServer, tmp_path: Path
) -> None:
    lab.configure(default=Outcome.reset())
    config = write_config(tmp_path / "c.toml", lab, spare, extra=BREAKER_3)
    for _ in range(8):
        result = await ask(config)
        assert result["_code"] == 0
        assert result["provider"] == "p1"
    assert len(lab.requests) == 3  # the breaker opened for the account after three
    last = result["metrics"]
    assert last["providers"]["p0"]["state"] == "OPEN"
    assert last["circuit_breaker_blocks"] >= 1


async def test_memory_store_keeps_each_process_to_itself(
    lab: FaultServer, spare: FaultServer, tmp_path: Path
) -> None:
    """The comparison: with per-process state the breaker never opens."""
    lab.configure(default=Outcome.reset())
    config = write_config(tmp_path / "c.toml", lab, spare, extra=BREAKER_3)
    for _ in range(4):
        assert (await ask(config, env={"QWEN_DEV_STATE": "memory"}))["_code"] == 0
    assert len(lab.requests) == 4


@pytest.fixture
def broken_store_file(qwen_home: Path) -> Path:
    qwen_home.mkdir(parents=True, exist_ok=True)
    path = qwen_home / "state.sqlite3"
    path.write_bytes(b"not a database " * 200)
    return path


@pytest.mark.usefixtures("broken_store_file")
async def test_a_broken_store_file_costs_a_warning_not_an_answer(
    lab: FaultServer, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "c.toml", lab)
    result = await ask(config)
    assert result["_code"] == 0
    assert result["ok"] is True
    assert result["_stderr"].count("per process") == 1


BREAKER_3 = """
[circuit_breaker]
failure_threshold = 3
recovery_timeout = 60
"""


NO_THROTTLE = """
throttle_k = 0
[circuit_breaker]
failure_threshold = 100
"""


async def test_the_retry_budget_is_spent_across_processes(lab: FaultServer, tmp_path: Path) -> None:
    """Processes retrying a failing provider share one retry budget (a floor of 10 a
    minute here, no successes): once it is spent, the next process fails at once,
    saying so, after one attempt."""
    lab.configure(default=Outcome.status(503))
    config = write_config(tmp_path / "c.toml", lab, extra=NO_THROTTLE)
    config.write_text(
        config.read_text(encoding="utf-8").replace("max_retries = 0", "max_retries = 3"),
        encoding="utf-8",
    )
    for _ in range(3):  # three processes, three retries each: 9 of the 10
        result = await ask(config)
        assert result["_code"] == 3
        assert result["error"]["type"] == "all_providers_failed"
    assert len(lab.requests) == 12
    spent = await ask(config)  # its one retry, then no more
    assert spent["error"]["type"] == "retry_budget_exhausted"
    assert len(lab.requests) == 14
    last = await ask(config)
    assert last["_code"] == 3
    assert last["error"]["type"] == "retry_budget_exhausted"
    assert "retry budget spent for p0" in last["error"]["message"]
    assert len(lab.requests) == 15  # one attempt, no retry


async def test_an_exhausted_quota_keeps_every_process_off_the_provider(
    lab: FaultServer, spare: FaultServer, tmp_path: Path
) -> None:
    lab.configure(
        default=Outcome.status(
            429, message="You exceeded your current quota", code="insufficient_quota"
        )
    )
    config = write_config(tmp_path / "c.toml", lab, spare)
    for _ in range(4):
        result = await ask(config)
        assert result["_code"] == 0
        assert result["provider"] == "p1"
    assert len(lab.requests) == 1  # the first process learnt it for all of them
    assert len(spare.requests) == 4
