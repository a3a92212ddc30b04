"""The REPL headless: a real PromptSession on a pipe, a real client talking HTTP to the
in-process fault server, slash commands and sessions on disk."""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput
from rich.console import Console

from qwen_dev_cli.agent.turn import Turn
from qwen_dev_cli.config import load_settings
from qwen_dev_cli.core import LLMClient
from qwen_dev_cli.session.store import SessionStore
from qwen_dev_cli.ui.repl import Repl, ReplOptions, TurnContext, make_turn
from tests.fault_server import DEFAULT_TEXT, FaultServer, Outcome


@pytest.fixture
async def server() -> AsyncIterator[FaultServer]:
    async with FaultServer() as srv:
        yield srv


def configure(tmp_path: Path, srv: FaultServer, extra: str = "") -> ReplOptions:
    path = tmp_path / "config.toml"
    path.write_text(
        f"""
provider_order = ["lab"]

[providers.lab]
base_url = "{srv.base_url}"
model = "fault-model"

[providers.lab2]
base_url = "{srv.base_url}"
model = "second-model"

[retry]
max_retries = 0
{extra}
""",
        encoding="utf-8",
    )
    workspace = tmp_path / "ws"
    workspace.mkdir(exist_ok=True)
    return ReplOptions(config_path=path, workspace=workspace)


async def session(options: ReplOptions, typed: str, **repl_args: Any) -> str:
    """Run a REPL on ``typed`` (keys, ``\\r`` ending each line); what it printed."""
    settings = load_settings(options.config_path)
    screen = io.StringIO()
    console = Console(file=screen, width=120)
    with create_pipe_input() as pipe:
        repl = Repl(
            settings, options, console=console, input=pipe, output=DummyOutput(), **repl_args
        )
        pipe.send_text(typed)
        assert repl.open_session() is None
        assert await repl.run() == 0
    return screen.getvalue()


def lines(*typed: str) -> str:
    return "".join(line + "\r" for line in typed)


def saved(settings_home: Path) -> SessionStore:
    return SessionStore(settings_home / "sessions")


async def test_a_message_is_answered_and_saved(
    server: FaultServer, tmp_path: Path, qwen_home: Path
) -> None:
    shown = await session(configure(tmp_path, server), lines("hello there", "/exit"))
    assert DEFAULT_TEXT in shown
    assert "lab · fault-model" in shown
    assert server.requests[-1].stream
    (info,) = saved(qwen_home).list()
    loaded = saved(qwen_home).load(info.id)
    assert [m["role"] for m in loaded.messages] == ["user", "assistant"]
    assert loaded.messages[1]["content"] == DEFAULT_TEXT


async def test_each_turn_gets_the_conversation_so_far(server: FaultServer, tmp_path: Path) -> None:
    await session(configure(tmp_path, server), lines("first", "second", "/exit"))
    sent = server.requests[-1].json["messages"]
    assert [m["content"] for m in sent[1:]] == ["first", DEFAULT_TEXT, "second"]


async def test_metrics_prints_the_table(server: FaultServer, tmp_path: Path) -> None:
    shown = await session(configure(tmp_path, server), lines("hello", "/metrics", "/exit"))
    for label in ("requests", "latency p50", "latency p95", "retries", "rate-limited waits"):
        assert label in shown
    assert "breaker blocks" in shown
    assert "failovers" in shown
    assert any("lab" in row and "1" in row and "CLOSED" in row for row in shown.splitlines())
    assert "budget store: memory" in shown  # what the counts' budget is shared with


async def test_status_details_the_providers(server: FaultServer, tmp_path: Path) -> None:
    shown = await session(configure(tmp_path, server), lines("/status", "/exit"))
    assert "lab" in shown
    assert "CLOSED" in shown
    assert "unlimited" in shown


async def test_an_unknown_command_suggests_the_closest(server: FaultServer, tmp_path: Path) -> None:
    shown = await session(configure(tmp_path, server), lines("/metrcs", "/exti", "/exit"))
    assert "unknown command /metrcs; did you mean /metrics?" in shown
    assert "did you mean /exit?" in shown


async def test_help_lists_every_command(server: FaultServer, tmp_path: Path) -> None:
    shown = await session(configure(tmp_path, server), lines("/help", "/exit"))
    for usage in ("/metrics", "/status", "/model NAME", "/provider NAME", "/approval MODE"):
        assert usage in shown
    assert "/resume ID" in shown
    assert "/sessions" in shown
    assert "Alt+Enter" in shown


async def test_model_switches_the_model(server: FaultServer, tmp_path: Path) -> None:
    shown = await session(configure(tmp_path, server), lines("/model bigger-model", "hi", "/exit"))
    assert "now using lab · bigger-model" in shown
    assert server.requests[-1].json["model"] == "bigger-model"


async def test_provider_switches_providers(server: FaultServer, tmp_path: Path) -> None:
    typed = lines("hi", "/provider lab2", "hi", "/provider nope", "/metrics", "/exit")
    shown = await session(configure(tmp_path, server), typed)
    assert "now using lab2 · second-model" in shown
    assert server.requests[-1].json["model"] == "second-model"
    assert "unknown provider 'nope'" in shown
    assert re.search(r"requests\s+2\b", shown)  # the replaced client's request counts too


async def test_approval_mode_reaches_the_turn(server: FaultServer, tmp_path: Path) -> None:
    seen: list[str] = []

    def factory(client: LLMClient, context: TurnContext) -> Turn:
        seen.append(context.approval)
        return make_turn(client, context)

    typed = lines("hi", "/approval yolo", "hi again", "/approval reckless", "/exit")
    shown = await session(configure(tmp_path, server), typed, turn_factory=factory)
    assert seen == ["ask", "yolo"]
    assert "approval: yolo" in shown
    assert "approval must be one of ask, auto-edit, yolo" in shown


async def test_new_starts_a_fresh_conversation(
    server: FaultServer, tmp_path: Path, qwen_home: Path
) -> None:
    await session(configure(tmp_path, server), lines("one", "/new", "two", "/exit"))
    assert [m["content"] for m in server.requests[-1].json["messages"][1:]] == ["two"]
    assert len(saved(qwen_home).list()) == 2


async def test_sessions_and_resume(server: FaultServer, tmp_path: Path, qwen_home: Path) -> None:
    options = configure(tmp_path, server)
    await session(options, lines("remember the number 42", "/exit"))
    (first,) = saved(qwen_home).list()
    typed = lines("/sessions", f"/resume {first.id[:15]}", "what was it?", "/exit")
    shown = await session(options, typed)
    assert first.id in shown
    assert "remember the number 42" in shown
    assert f"resumed session {first.id} · 2 messages" in shown
    contents = [m["content"] for m in server.requests[-1].json["messages"][1:]]
    assert contents == ["remember the number 42", DEFAULT_TEXT, "what was it?"]


async def test_continue_resumes_the_latest_session_here(
    server: FaultServer, tmp_path: Path
) -> None:
    options = configure(tmp_path, server)
    await session(options, lines("earlier question", "/exit"))
    continued = ReplOptions(options.config_path, workspace=options.workspace, continue_latest=True)
    shown = await session(continued, lines("and now?", "/exit"))
    assert "resumed session" in shown
    contents = [m["content"] for m in server.requests[-1].json["messages"][1:]]
    assert contents == ["earlier question", DEFAULT_TEXT, "and now?"]


async def test_a_session_open_elsewhere_is_not_resumed(
    server: FaultServer, tmp_path: Path, qwen_home: Path
) -> None:
    options = configure(tmp_path, server)
    with saved(qwen_home).create(options.workspace) as other:
        shown = await session(options, lines(f"/resume {other.id}", "/exit"))
    assert "open in another qwen-dev" in shown


async def test_a_failed_turn_is_reported_and_the_repl_goes_on(
    server: FaultServer, tmp_path: Path
) -> None:
    server.script(Outcome.status(503))
    shown = await session(configure(tmp_path, server), lines("hello", "again", "/exit"))
    assert "all providers failed" in shown
    assert DEFAULT_TEXT in shown


async def test_ctrl_c_on_an_empty_prompt_says_how_to_leave(
    server: FaultServer, tmp_path: Path
) -> None:
    shown = await session(configure(tmp_path, server), "\x03" + lines("/exit"))
    assert "to leave, press Ctrl-D or type /exit" in shown


async def test_ctrl_d_leaves(server: FaultServer, tmp_path: Path) -> None:
    await session(configure(tmp_path, server), "\x04")


async def test_mentioned_files_are_attached(server: FaultServer, tmp_path: Path) -> None:
    options = configure(tmp_path, server)
    (options.workspace / "notes.txt").write_text("the secret ingredient is basil\n")
    shown = await session(options, lines("summarise @notes.txt", "/exit"))
    assert "attached: notes.txt" in shown
    assert "basil" in server.requests[-1].json["messages"][-1]["content"]


async def test_a_broken_turn_is_reported_and_the_repl_goes_on(
    server: FaultServer, tmp_path: Path
) -> None:
    class Broken:
        async def run(self, history: object, user_text: str, sink: object) -> object:
            raise RuntimeError("boom")

    calls: list[str] = []

    def factory(client: LLMClient, context: TurnContext) -> Turn:
        calls.append("turn")
        return Broken() if len(calls) == 1 else make_turn(client, context)

    shown = await session(
        configure(tmp_path, server), lines("one", "two", "/exit"), turn_factory=factory
    )
    assert "internal error: RuntimeError: boom" in shown
    assert DEFAULT_TEXT in shown
