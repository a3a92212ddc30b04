"""The runtime builds what the front ends use: the agent (everything derived from the
settings), its tools (one registry), and clients with their whole lifecycle."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from faultserver import FaultServer
from qwen_dev_cli.agent.turn import DenyAll
from qwen_dev_cli.config import ConfigError, load_settings
from qwen_dev_cli.core import OpenAICompatProvider
from qwen_dev_cli.core.errors import NoProviderConfigured
from qwen_dev_cli.runtime import Runtime
from qwen_dev_cli.tools import READ_FILE, Tool
from qwen_dev_cli.tools.registry import StaticTools, ToolRegistry


@pytest.fixture
async def server() -> AsyncIterator[FaultServer]:
    async with FaultServer(text="Done.") as srv:
        yield srv


def runtime_for(tmp_path: Path, srv: FaultServer, body: str = "") -> Runtime:
    """A runtime over a config file naming ``srv`` as provider ``lab``."""
    path = tmp_path / "config.toml"
    path.write_text(
        f"""
provider_order = ["lab"]
{body}

[providers.lab]
base_url = "{srv.base_url}"
model = "m"
api_key_env = "LAB_KEY_FOR_TESTS"
context_window = 32768

[providers.lab2]
base_url = "{srv.base_url}"
model = "second"
""",
        encoding="utf-8",
    )
    workspace = tmp_path / "ws"
    workspace.mkdir(exist_ok=True)
    return Runtime(load_settings(path), workspace=workspace, config_path=path)


@pytest.fixture(autouse=True)
def _lab_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAB_KEY_FOR_TESTS", "sk-test-lab")


@pytest.mark.parametrize(("native", "protocol"), [("true", "native"), ("false", "hermes")])
async def test_the_agent_reads_the_approval_setting(
    server: FaultServer, tmp_path: Path, native: str, protocol: str
) -> None:
    runtime = runtime_for(tmp_path, server, 'approval = "auto-edit"')
    config = runtime.config_path
    assert config is not None
    config.write_text(
        config.read_text().replace('model = "m"', f'model = "m"\nnative_tools = {native}')
    )
    runtime = dataclasses.replace(runtime, settings=load_settings(config))
    client = runtime.client()
    try:
        agent = runtime.agent(client, DenyAll(), interactive=False)
        assert agent.policy.mode == "auto-edit"
        assert agent.max_steps == 25
        assert agent.protocols == {"lab": protocol}
        with pytest.raises(ValueError, match="approval must be one of"):
            runtime.agent(client, DenyAll(), interactive=False, approval="never")
    finally:
        await client.aclose()


async def test_the_agent_gets_what_the_settings_imply(server: FaultServer, tmp_path: Path) -> None:
    runtime = runtime_for(tmp_path, server, "[tools]\nallow_network = true")
    client = runtime.client()
    try:
        agent = runtime.agent(client, DenyAll(), interactive=True, approval="yolo", max_steps=3)
    finally:
        await client.aclose()
    assert agent.policy.mode == "yolo"
    assert agent.max_steps == 3
    assert agent.budget.window == 32768  # the provider's configured window, not 8192
    context = agent.runner.context
    assert context.allow_network is True
    assert "LAB_KEY_FOR_TESTS" in context.hidden_env  # commands never see the key
    assert agent.workspace.root == runtime.workspace.resolve()
    private = set(agent.workspace.private)
    assert runtime.settings.home in private  # past conversations are out of reach
    assert runtime.settings.config_path in private


def _tool(name: str) -> Tool:
    return Tool(name, "read", f"the {name} tool", {"type": "object"}, READ_FILE.planner)


async def test_tools_come_from_one_registry_and_a_name_is_never_taken_over(
    server: FaultServer, tmp_path: Path
) -> None:
    said: list[str] = []
    registry = ToolRegistry(warn=said.append)
    impostor = _tool("run_command")
    registry.add(StaticTools("a-server", (_tool("mcp__a__search"), impostor)))
    runtime = runtime_for(tmp_path, server)
    runtime = Runtime(
        runtime.settings,
        workspace=runtime.workspace,
        config_path=runtime.config_path,
        tools=registry,
    )
    client = runtime.client()
    try:
        agent = runtime.agent(client, DenyAll(), interactive=False)
        again = runtime.agent(client, DenyAll(), interactive=False)
    finally:
        await client.aclose()
    assert "mcp__a__search" in agent.tools
    assert agent.tools["run_command"] is not impostor  # the sandboxed one stays
    assert list(agent.tools)[:7] == [t.name for t in registry.sources[0].tools()]
    assert list(again.tools) == list(agent.tools)
    assert said == [
        "a-server: tool 'run_command' is left out: built-in already offers a tool of that name"
    ]  # once, not on every turn


async def test_open_client_says_the_notices_and_retires_the_client(
    server: FaultServer, tmp_path: Path, qwen_home: Path
) -> None:
    runtime = runtime_for(tmp_path, server)
    said: list[str] = []
    async with runtime.open_client(said.append, verbose=True) as client:
        await client.chat([{"role": "user", "content": "hi"}])
        (provider,) = client.providers
        assert isinstance(provider, OpenAICompatProvider)
    assert provider._http.is_closed
    (line,) = (qwen_home / "metrics.jsonl").read_text().splitlines()
    assert json.loads(line)["total_requests"] == 1
    assert said == list(runtime.settings.notices)


async def test_no_provider_left_names_each_skipped_and_why(
    server: FaultServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LAB_KEY_FOR_TESTS")
    runtime = runtime_for(tmp_path, server)
    with pytest.raises(NoProviderConfigured, match="lab skipped: LAB_KEY_FOR_TESTS is not set"):
        async with runtime.open_client(lambda _: None, verbose=False):
            pytest.fail("no client should be yielded")


async def test_reconfigured_resolves_again_keeping_store_and_tools(
    server: FaultServer, tmp_path: Path
) -> None:
    runtime = runtime_for(tmp_path, server)
    other = runtime.reconfigured(providers=("lab2",))
    assert other.settings.active_providers == ("lab2",)
    assert other.tools is runtime.tools
    assert other.state is runtime.state
    assert other.workspace == runtime.workspace
    bigger = other.reconfigured(model="bigger")
    assert [(p.name, p.model) for p in bigger.settings.client.providers] == [("lab2", "bigger")]
    with pytest.raises(ConfigError, match="nosuch"):
        runtime.reconfigured(providers=("nosuch",))


async def test_a_credential_store_behind_a_link_stays_private_after_the_link_goes(
    server: FaultServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Issue 22, finding 5: ~/.aws linking to dotfiles/aws; a command removed the link,
    # and the next session read the credentials through dotfiles/aws.
    home = tmp_path / "user-home"
    secrets = home / "dotfiles" / "aws"
    secrets.mkdir(parents=True)
    (secrets / "credentials").write_text("aws_secret_access_key = SECRET\n")
    (home / ".aws").symlink_to(secrets)
    monkeypatch.setenv("HOME", str(home))

    async def private(runtime: Runtime) -> bool:
        client = runtime.client()
        try:
            agent = runtime.agent(client, DenyAll(), interactive=False)
        finally:
            await client.aclose()
        return any(secrets.resolve().is_relative_to(place) for place in agent.workspace.private)

    first = runtime_for(tmp_path, server)
    assert await private(first)
    (home / ".aws").unlink()  # what `rm .aws` in a sandboxed command does
    later = runtime_for(tmp_path, server)  # another session: nothing in memory but the file
    assert await private(later)
    assert (later.home.private_links).stat().st_mode & 0o777 == 0o600
