"""A project's ``.mcp.json`` starts nothing unasked: ``ask`` ignores it (saying how to
trust it) unless ``--trust-project-mcp`` is given; a malformed one is a warning; a
project server is never trusted and never replaces a user's server; answers are
remembered for the exact file (path and content hash)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from faultserver import FaultServer, Outcome
from qwen_dev_cli.mcp.project import ProjectServers, TrustFile, project_servers, read_project

from ..test_cli_ask import qwen_dev, write_config
from .test_cli_mcp import SERVER, offered


def project_file(workspace: Path, **extra: object) -> Path:
    entry = {"command": sys.executable, "args": [str(SERVER)], **extra}
    path = workspace / ".mcp.json"
    path.write_text(json.dumps({"mcpServers": {"proj": entry}}), encoding="utf-8")
    return path


@pytest.mark.slow
async def test_ask_ignores_project_servers_unless_trusted_by_flag(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    project_file(workspace)
    async with FaultServer() as srv:
        config = write_config(tmp_path / "c.toml", srv)
        srv.script(Outcome.ok("no tools"))
        plain = await qwen_dev("ask", "--config", str(config), "go", cwd=workspace)
        srv.script(Outcome.ok("with tools"))
        trusted = await qwen_dev(
            "ask", "--config", str(config), "--trust-project-mcp", "go", cwd=workspace
        )
        assert plain.code == 0, plain.err
        assert trusted.code == 0, trusted.err
        assert not [n for n in offered(srv, 0) if n.startswith("mcp__")]
        assert "mcp__proj__echo" in offered(srv, 1)
    assert "--trust-project-mcp" in plain.err
    assert ".mcp.json" in plain.err


@pytest.mark.slow
async def test_the_top_level_prompt_takes_the_flag_too(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    project_file(workspace)
    async with FaultServer() as srv:
        config = write_config(tmp_path / "c.toml", srv)
        srv.script(Outcome.ok("with tools"))
        run = await qwen_dev(
            "-p", "go", "--config", str(config), "--trust-project-mcp", cwd=workspace
        )
        assert run.code == 0, run.err
        assert "mcp__proj__echo" in offered(srv, 0)
    refused = await qwen_dev("--trust-project-mcp", "metrics", cwd=workspace)
    assert refused.code == 2
    assert "--trust-project-mcp is for a headless turn" in refused.err


@pytest.mark.slow
async def test_a_malformed_project_file_is_a_warning_and_the_answer_comes(
    tmp_path: Path,
) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / ".mcp.json").write_text('{"mcpServers": {"x": {"command": 3}}}')
    async with FaultServer() as srv:
        config = write_config(tmp_path / "c.toml", srv)
        srv.script(Outcome.ok("answered"))
        run = await qwen_dev(
            "ask", "--config", str(config), "--trust-project-mcp", "go", cwd=workspace
        )
    assert run.code == 0, run.err
    assert "answered" in run.out
    assert "mcpServers.x.command: expected a string" in run.err


def test_a_project_server_is_never_trusted_and_never_takes_a_user_name(
    tmp_path: Path,
) -> None:
    path = project_file(tmp_path, trust=True)
    data = json.loads(path.read_text())
    data["mcpServers"]["mine"] = {"command": "x"}
    path.write_text(json.dumps(data))
    project = read_project(tmp_path, ["mine"])
    assert project is not None
    assert [s.name for s in project.servers] == ["proj"]
    assert project.servers[0].trust is False
    assert any("'mine' left out" in note for note in project.notes)


def test_the_question_names_every_variable_a_server_would_be_given(tmp_path: Path) -> None:
    # Review finding: a URL was shown, not the ${SAMBANOVA_API_KEY} its headers send.
    path = tmp_path / ".mcp.json"
    path.write_text(
        json.dumps(
            {
                "mcpServers": {
                    "docs": {
                        "type": "http",
                        "url": "https://mcp.example.com/${REGION:-eu}",
                        "headers": {"Authorization": "Bearer ${SAMBANOVA_API_KEY}"},
                    }
                }
            }
        )
    )
    project = read_project(tmp_path)
    assert project is not None
    ((name, shown),) = project.commands()
    assert name == "docs"
    assert "$REGION" in shown
    assert "$SAMBANOVA_API_KEY" in shown


async def test_a_project_server_is_never_given_a_providers_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Review finding: ${VAR} in a repository's .mcp.json expanded from the whole
    # environment, provider keys included.
    from qwen_dev_cli.config import load_settings
    from qwen_dev_cli.runtime import Runtime

    monkeypatch.setenv("LAB_KEY", "sk-provider-secret")
    monkeypatch.setenv("REGION", "eu")
    config = tmp_path / "c.toml"
    config.write_text(
        'provider_order = ["lab"]\n[providers.lab]\nbase_url = "http://127.0.0.1:9/v1"\n'
        'model = "m"\napi_key_env = "LAB_KEY"\n'
    )
    workspace = tmp_path / "ws"
    workspace.mkdir()
    project_file(workspace, env={"T": "${LAB_KEY}", "R": "${REGION}"})
    runtime = Runtime(load_settings(config), workspace=workspace)
    async with runtime.mcp_servers(lambda _: None, wait=False, project=True) as running:
        assert running.mcp is not None
        (server,) = running.mcp.servers
        given = dict(server._env)
    assert "LAB_KEY" not in given
    assert given["REGION"] == "eu"  # other variables are the user's to give, as shown


async def test_the_answer_is_kept_for_that_exact_file_and_a_change_asks_again(
    tmp_path: Path,
) -> None:
    path = project_file(tmp_path)
    trust = tmp_path / "home" / "mcp-trust.json"
    asked: list[ProjectServers] = []
    answers: list[bool | None] = [None, True, False]

    async def approve(project: ProjectServers) -> bool | None:
        asked.append(project)
        return answers[len(asked) - 1]

    async def servers() -> list[str]:
        found = await project_servers(tmp_path, trust, [], approve=approve, warn=print)
        return [s.name for s in found]

    assert await servers() == []  # Enter or Esc: not now, and not remembered
    assert await servers() == ["proj"]
    assert await servers() == ["proj"]  # remembered: not asked again
    assert len(asked) == 2
    assert asked[0].commands() == [("proj", f"{sys.executable} {SERVER}")]
    path.write_text(path.read_text().replace("}}}", ', "env": {"A": "1"}}}}'))
    assert await servers() == []  # a changed file is asked about again: no
    assert await servers() == []
    assert len(asked) == 3
    assert trust.stat().st_mode & 0o077 == 0
    project = read_project(tmp_path)
    assert project is not None
    assert TrustFile(trust).decision(project) is False


@pytest.mark.slow
async def test_mcp_list_shows_an_approved_project_file_and_says_of_one_not_approved(
    tmp_path: Path,
) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    project_file(workspace)
    async with FaultServer() as srv:
        config = write_config(tmp_path / "c.toml", srv)
        before = await qwen_dev("mcp", "list", "--json", "--config", str(config), cwd=workspace)
        project = read_project(workspace)
        assert project is not None
        home = Path(os.environ["QWEN_DEV_HOME"])
        TrustFile(home / "mcp-trust.json").remember(project, True)
        after = await qwen_dev("mcp", "list", "--json", "--config", str(config), cwd=workspace)
    assert before.code == 0, before.err
    assert json.loads(before.out) == {"servers": []}
    assert "not approved yet" in before.err
    assert after.code == 0, after.err
    [row] = json.loads(after.out)["servers"]
    assert (row["name"], row["state"], row["trust"]) == ("proj", "ready", False)
    assert "mcp__proj__echo" in row["tools"]
