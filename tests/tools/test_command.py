"""run_command with real processes: exit codes, capped output, timeouts and Ctrl-C that
take the whole process group down.

These run without the OS sandbox (``sandbox=None``, the path taken where there is
none): the process ids they check are only meaningful outside a PID namespace. The
sandboxed path has its own tests in ``tests/security``."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from qwen_dev_cli.tools import RUN_COMMAND, CommandPlan, OutsideWorkspace, ToolContext, run_shell
from qwen_dev_cli.tools.base import ToolError
from qwen_dev_cli.tools.command import MAX_TIMEOUT, CommandResult, OutputBuffer

#: A safety net so that a regression fails instead of hanging; never a timing assertion.
HANG_GUARD = 20.0


def alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie waiting to be reaped is dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def dead(pid: int) -> Callable[[], bool]:
    """A condition for :func:`wait_for`: process ``pid`` has ended."""
    return lambda: not alive(pid)


async def wait_for(condition: Callable[[], bool], what: str) -> None:
    """Poll ``condition`` until it holds (bounded by HANG_GUARD)."""
    deadline = time.monotonic() + HANG_GUARD
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting: {what}")
        await asyncio.sleep(0.01)


async def shell(command: str, cwd: Path, seconds: float = 30.0, cap: int = 10_000) -> CommandResult:
    async with asyncio.timeout(HANG_GUARD):
        return await run_shell(command, cwd, seconds, cap, sandbox=None)


async def test_exit_code_and_both_streams(tmp_path: Path) -> None:
    result = await shell("echo out; echo err >&2; exit 3", tmp_path)
    assert result.exit_code == 3
    assert not result.ok
    assert result.output.splitlines() == ["out", "err"]
    assert result.for_model() == "exit code 3\nout\nerr"


async def test_runs_in_the_given_folder_with_no_input(tmp_path: Path) -> None:
    result = await shell("pwd; cat; echo done", tmp_path)
    assert result.output.splitlines() == [str(tmp_path), "done"]
    assert result.ok


async def test_long_output_keeps_start_and_end(tmp_path: Path) -> None:
    result = await shell(
        "echo START; head -c 100000 /dev/zero | tr '\\0' a; echo; echo END", tmp_path, cap=1000
    )
    assert result.output.startswith("START\naaa")
    assert result.output.endswith("aaa\nEND")
    assert f"[... {result.elided} bytes of output elided ...]" in result.output
    assert 100_000 - 1000 < result.elided < 100_010
    assert len(result.output) < 1100


def test_output_buffer_keeps_head_and_tail() -> None:
    buffer = OutputBuffer(10)
    for piece in (b"0123", b"4567", b"89ab", b"cdef"):
        buffer.feed(piece)
    assert buffer.text() == "01234\n[... 6 bytes of output elided ...]\nbcdef"


async def test_a_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    command = "sleep 300 & echo $! > bg.pid; echo started; sleep 300"
    result = await shell(command, tmp_path, seconds=0.5)
    assert result.timed_out
    assert result.exit_code is None
    assert "timed out after 0.5 s" in result.for_model()
    assert "started" in result.output
    background = int((tmp_path / "bg.pid").read_text())
    await wait_for(dead(background), "the background sleep to die")


async def test_background_jobs_do_not_outlive_the_command(tmp_path: Path) -> None:
    result = await shell("sleep 300 & echo $! > bg.pid; echo quick", tmp_path)
    assert result.ok
    assert result.output == "quick"
    background = int((tmp_path / "bg.pid").read_text())
    await wait_for(dead(background), "the background sleep to die")


async def test_cancelling_kills_the_process_group(tmp_path: Path) -> None:
    task = asyncio.create_task(
        run_shell(
            "sleep 300 & echo $! > bg.pid; echo $$ > sh.pid; wait",
            tmp_path,
            60,
            1000,
            sandbox=None,
        )
    )
    await wait_for(
        lambda: (tmp_path / "sh.pid").exists() and (tmp_path / "sh.pid").read_text() != "", "start"
    )
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for name in ("bg.pid", "sh.pid"):
        pid = int((tmp_path / name).read_text())
        await wait_for(dead(pid), f"{name} to die")


def test_plan_classifies_and_confines(ctx: ToolContext, root: Path) -> None:
    (root / "sub").mkdir()
    plan = RUN_COMMAND.plan({"command": "rm -rf ~", "cwd": "sub", "timeout": 10_000}, ctx)
    assert isinstance(plan, CommandPlan)
    assert plan.cwd == root / "sub"
    assert plan.display_cwd == "sub"
    assert plan.risk.critical
    assert plan.timeout == MAX_TIMEOUT
    default = RUN_COMMAND.plan({"command": "ls"}, ctx)
    assert isinstance(default, CommandPlan)
    assert default.timeout == ctx.command_timeout == 120.0
    assert default.risk.level == "low"
    with pytest.raises(OutsideWorkspace):
        RUN_COMMAND.plan({"command": "ls", "cwd": ".."}, ctx)
    with pytest.raises(ToolError, match="empty"):
        RUN_COMMAND.plan({"command": "   "}, ctx)


async def test_hidden_variables_do_not_reach_the_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAMBANOVA_API_KEY", "sk-very-secret")
    monkeypatch.setenv("HARMLESS_SETTING", "visible")
    result = await run_shell(
        "env", tmp_path, 10, 100_000, hidden_env=frozenset({"SAMBANOVA_API_KEY"}), sandbox=None
    )
    assert "sk-very-secret" not in result.output
    assert "HARMLESS_SETTING=visible" in result.output
