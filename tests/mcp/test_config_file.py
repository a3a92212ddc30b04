"""Adding, removing and importing servers edits the user's file safely: comments and
other tables stay, the result is checked before it is written, bad input names the file
and the key."""

from __future__ import annotations

import json
import stat
import tomllib
from pathlib import Path

import pytest

from qwen_dev_cli.mcp.config_file import ConfigEditError, add_servers, remove_server
from qwen_dev_cli.mcp.imports import McpImportError, read_servers

USER = '# mine\napproval = "auto-edit"  # keep\n\n[retry]\nmax_retries = 2\n'


def test_add_appends_a_table_and_keeps_everything_else(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(USER)
    add_servers(
        path, {"fs": {"command": "npx", "args": ["-y", 'q"uote\\'], "env": {"A b": "\x7f"}}}
    )
    text = path.read_text()
    assert text.startswith(USER)
    data = tomllib.loads(text)
    assert data["mcp"]["servers"]["fs"] == {
        "command": "npx",
        "args": ["-y", 'q"uote\\'],
        "env": {"A b": "\x7f"},
    }
    assert data["retry"] == {"max_retries": 2}


def test_a_new_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "dir" / "config.toml"
    add_servers(path, {"web": {"url": "https://x.example/mcp", "headers": {"A": "b"}}})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_add_refuses_a_name_already_there_and_an_invalid_table(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    add_servers(path, {"fs": {"command": "x"}})
    before = path.read_text()
    with pytest.raises(ConfigEditError, match="already defined"):
        add_servers(path, {"fs": {"command": "y"}})
    with pytest.raises(ConfigEditError, match="nothing was written"):
        add_servers(path, {"bad": {"command": "x", "url": "http://a"}})
    assert path.read_text() == before


def test_remove_cuts_out_the_table_and_its_sub_tables_only(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        USER + '\n[mcp.servers.a]\ncommand = "x"\n\n[mcp.servers.a.env]\nK = "v"\n'
        '\n[mcp.servers.b]\ncommand = "y"\n# after b\n[tools]\nallow_network = false\n'
    )
    remove_server(path, "a")
    data = tomllib.loads(path.read_text())
    assert list(data["mcp"]["servers"]) == ["b"]
    assert data["tools"] == {"allow_network": False}
    assert "# after b" in path.read_text()
    remove_server(path, "b")
    assert "mcp" not in tomllib.loads(path.read_text())


def test_remove_refuses_what_it_cannot_cut_safely(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    text = '[mcp]\nservers = { a = { command = "x" } }\n'
    path.write_text(text)
    with pytest.raises(ConfigEditError, match="edit the file by hand"):
        remove_server(path, "a")
    assert path.read_text() == text
    with pytest.raises(ConfigEditError, match="no MCP server 'zz'"):
        remove_server(path, "zz")


def test_claude_code_mcp_json(tmp_path: Path) -> None:
    path = tmp_path / ".mcp.json"
    path.write_text(
        json.dumps(
            {
                "mcpServers": {
                    "fs": {"type": "stdio", "command": "npx", "args": ["-y", "srv"], "env": {}},
                    "api": {"type": "http", "url": "https://a/mcp", "headers": {"X": "y"}},
                    "old": {"type": "sse", "url": "https://b/sse"},
                    "my.server": {"command": "srv"},
                }
            }
        )
    )
    servers, notes = read_servers(path)
    assert servers["fs"] == {"command": "npx", "args": ["-y", "srv"], "env": {}}
    assert servers["api"] == {"url": "https://a/mcp", "headers": {"X": "y"}}
    assert servers["old"] == {"url": "https://b/sse", "transport": "sse"}
    assert "my_server" in servers
    assert any("'my.server' is imported as 'my_server'" in n for n in notes)


def test_gemini_and_qwen_code_settings_json(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text(
        json.dumps(
            {
                "theme": "dark",
                "mcpServers": {
                    "gh": {
                        "httpUrl": "https://api/mcp",
                        "timeout": 30000,
                        "trust": True,
                        "includeTools": ["a"],
                        "excludeTools": ["b"],
                    },
                    "legacy": {"url": "https://c/sse"},
                    "local": {"command": "srv", "cwd": "/tmp", "description": "x"},
                },
            }
        )
    )
    servers, notes = read_servers(path)
    # trust is the user's own word, never an imported file's (review finding).
    assert servers["gh"] == {
        "url": "https://api/mcp",
        "timeout": 30.0,
        "include_tools": ["a"],
        "exclude_tools": ["b"],
    }
    assert any("gh.trust left out" in note for note in notes)
    assert servers["legacy"] == {"url": "https://c/sse", "transport": "sse"}
    assert servers["local"] == {"command": "srv", "cwd": "/tmp"}
    assert any("description left out" in n for n in notes)


@pytest.mark.parametrize(
    ("content", "where"),
    [
        ("not json", "not JSON"),
        ('{"servers": {}}', "mcpServers: expected an object"),
        ('{"mcpServers": {"a": {"command": 1}}}', "mcpServers.a.command: expected a string"),
        ('{"mcpServers": {"a": {"command": "x", "shell": true}}}', "mcpServers.a.shell: unknown"),
        ('{"mcpServers": {"a": {"args": ["x"]}}}', "mcpServers.a: expected command"),
        ('{"mcpServers": {"a": {"url": "u", "timeout": -1}}}', "mcpServers.a.timeout"),
    ],
)
def test_a_bad_file_names_the_file_and_the_key(tmp_path: Path, content: str, where: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(McpImportError) as caught:
        read_servers(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert where in str(caught.value)
