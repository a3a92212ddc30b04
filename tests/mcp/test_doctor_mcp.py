"""``qwen-dev doctor`` starts each MCP server, lists its tools and times it; one that
fails is a warning with its error and its log, not a failure of the doctor."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from faultserver import FaultServer

from ..test_cli_ask import qwen_dev, write_config
from .test_cli_mcp import server

pytestmark = pytest.mark.slow  # a real `qwen-dev doctor` and real servers


async def test_doctor_reports_each_server_with_its_tools_and_start_up_time(
    tmp_path: Path,
) -> None:
    broken = '[mcp.servers.broken]\ncommand = "/nonexistent/mcp-server"\n'
    off = server("off", extra="enabled = false")
    async with FaultServer() as srv:
        config = write_config(tmp_path / "c.toml", srv, extra=server("t") + broken + off)
        run = await qwen_dev("doctor", "--config", str(config), cwd=tmp_path)
    assert run.code == 0, run.out + run.err
    out = " ".join(run.out.split())
    assert re.search(r"mcp t stdio 10 tools \d+ ms", out), run.out
    assert "mcp__t__echo, mcp__t__add" in out
    assert re.search(r"mcp broken stdio failed \d+ ms", out), run.out
    assert "command not found: /nonexistent/mcp-server; its stderr is in" in out
    assert re.search(r"mcp off stdio disabled", out), run.out
    assert "ready: lab" in out
    # Said once, by the doctor's report: not a second time on stderr.
    assert "broken" not in run.err


async def test_doctor_s_notice_about_a_project_file_names_a_flag_that_exists(
    tmp_path: Path,
) -> None:
    from .test_project_mcp import project_file

    workspace = tmp_path / "ws"
    workspace.mkdir()
    project_file(workspace)
    async with FaultServer() as srv:
        config = write_config(tmp_path / "c.toml", srv)
        run = await qwen_dev("doctor", "--config", str(config), cwd=workspace)
        said = " ".join((run.out + run.err).split())
        assert ".mcp.json: its MCP servers are not started here" in said
        assert "qwen-dev ask --trust-project-mcp" in said
        # What it names works: the flag on the headless turn, not on doctor.
        tried = await qwen_dev("doctor", "--trust-project-mcp", "--config", str(config))
        assert tried.code == 2
