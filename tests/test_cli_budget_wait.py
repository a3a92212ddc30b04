"""``ask`` waits for a provider's budget at most ``[rate_limit] max_wait`` (or
``--max-wait``), then exits 3 naming the provider and the wait: real processes sharing
the account through the default ``local`` store (issue 21, found by attack: a state row
stamped in the future kept ``ask`` waiting past 30 s)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from faultserver import FaultServer

pytestmark = pytest.mark.slow


@pytest.fixture
async def lab() -> AsyncIterator[FaultServer]:
    async with FaultServer() as srv:
        yield srv


def write_config(path: Path, srv: FaultServer, extra: str = "") -> Path:
    path.write_text(
        f"""
provider_order = ["lab"]

[providers.lab]
base_url = "{srv.base_url}"
model = "fault-model"
rpm = 1

[retry]
max_retries = 0
{extra}
""",
        encoding="utf-8",
    )
    return path


async def run(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "qwen_dev_cli",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=dict(os.environ),
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=150)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def ask_json(config: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    code, out, _ = await run("ask", "hello", "--json", "--config", str(config), *extra)
    result: dict[str, Any] = json.loads(out)
    return code, result


async def test_ask_max_wait_fails_with_exit_3_naming_the_provider_and_the_wait(
    lab: FaultServer, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "c.toml", lab)
    code, first = await ask_json(config)
    assert code == 0, first
    # Another process spent the account's one request a minute: the budget frees in
    # about 60 s, more than --max-wait allows, so this one says so instead of waiting.
    code, out, err = await run("ask", "hello", "--config", str(config), "--max-wait", "5")
    assert code == 3
    assert out == ""
    assert "lab's budget" in err
    assert "max_wait" in err
    assert "5s" in err
    assert len(lab.requests) == 1


async def test_the_configured_max_wait_bounds_ask_and_the_error_is_typed(
    lab: FaultServer, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "c.toml", lab, extra="[rate_limit]\nmax_wait = 3")
    assert (await ask_json(config))[0] == 0
    code, result = await ask_json(config)
    assert code == 3
    assert result["ok"] is False
    assert result["error"]["type"] == "budget_wait_exceeded"
    assert "lab" in result["error"]["message"]
    assert result["error"]["retry_after"] > 3


async def test_headless_p_takes_max_wait_too(lab: FaultServer, tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.toml", lab)
    assert (await ask_json(config))[0] == 0
    code, _, err = await run("-p", "hello", "--config", str(config), "--max-wait", "2")
    assert code == 3
    assert "lab's budget" in err


@pytest.mark.parametrize("value", ["0", "-1", "nan", "100000"])
async def test_a_max_wait_that_is_no_wait_is_a_usage_error(
    lab: FaultServer, tmp_path: Path, value: str
) -> None:
    config = write_config(tmp_path / "c.toml", lab)
    code, _, err = await run("ask", "hello", "--config", str(config), "--max-wait", value)
    assert code == 2
    assert "--max-wait" in err
    assert lab.requests == []
