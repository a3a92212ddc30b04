"""`qwen-dev mcp add | remove | import | list` as a user runs them."""

from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path

import pytest

from ..test_cli_ask import qwen_dev

pytestmark = pytest.mark.slow  # real `qwen-dev` processes

SERVER = str(Path(__file__).with_name("stdio_server.py"))


async def test_add_list_and_remove(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("# my settings\n")
    added = await qwen_dev(
        "mcp", "add", "--config", str(config), "t", "--env", "K=v", "--", sys.executable, SERVER
    )
    assert added.code == 0, added.err
    web = await qwen_dev(
        "mcp", "add", "--config", str(config), "web", "--url", "http://127.0.0.1:9/mcp",
        "--header", "Authorization: Bearer ${NOT_SET_HERE}",
    )  # fmt: skip
    assert web.code == 0, web.err
    # Nothing listens on port 9 of loopback: each connection refused.
    down = await qwen_dev(
        "mcp", "add", "--config", str(config), "down", "--url", "http://127.0.0.1:9/mcp"
    )
    assert down.code == 0, down.err
    listed = await qwen_dev("mcp", "list", "--json", "--config", str(config))
    assert listed.code == 0, listed.err
    rows = {row["name"]: row for row in json.loads(listed.out)["servers"]}
    assert rows["t"]["state"] == "ready"
    assert "mcp__t__echo" in rows["t"]["tools"]
    assert rows["t"]["breaker"] is None  # (stdio: none)
    assert rows["web"]["state"] == "failed"
    assert "NOT_SET_HERE not set" in rows["web"]["error"]
    assert rows["down"]["state"] == "failed"
    # The connection tried three times: three failures in a row, under the threshold.
    assert rows["down"]["breaker"] == {"state": "closed", "failures": 3, "retry_in_s": None}
    text = await qwen_dev("mcp", "list", "--config", str(config))
    assert "down (http): failed, breaker closed (3 failures in a row): " in text.out
    removed = await qwen_dev("mcp", "remove", "--config", str(config), "down")
    assert removed.code == 0, removed.err
    removed = await qwen_dev("mcp", "remove", "--config", str(config), "web")
    assert removed.code == 0, removed.err
    data = tomllib.loads(config.read_text())
    assert list(data["mcp"]["servers"]) == ["t"]
    assert config.read_text().startswith("# my settings\n")


async def test_import_of_a_bad_file_exits_2_naming_file_and_key(tmp_path: Path) -> None:
    bad = tmp_path / ".mcp.json"
    bad.write_text('{"mcpServers": {"x": {"command": ["npx"]}}}')
    config = tmp_path / "config.toml"
    run = await qwen_dev("mcp", "import", "--config", str(config), str(bad))
    assert run.code == 2
    assert f"{bad}: mcpServers.x.command" in run.err
    assert not config.exists()


async def test_import_adds_every_server(tmp_path: Path) -> None:
    good = tmp_path / "settings.json"
    servers = {"a": {"command": "x", "args": ["--flag"]}, "b": {"httpUrl": "http://h"}}
    good.write_text(json.dumps({"mcpServers": servers}))
    config = tmp_path / "config.toml"
    run = await qwen_dev("mcp", "import", "--config", str(config), str(good))
    assert run.code == 0, run.err
    assert set(tomllib.loads(config.read_text())["mcp"]["servers"]) == {"a", "b"}
    assert "  a: x --flag\n" in run.out
    assert "  b: http://h\n" in run.out
