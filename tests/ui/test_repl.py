"""The REPL headless: a real PromptSession on a pipe, a real client talking HTTP to the
in-process fault server, slash commands and sessions on disk."""

from __future__ import annotations

import io
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from faultserver import DEFAULT_TEXT, FaultServer, Outcome
from qwen_dev_cli.agent.turn import EventSink, Turn, TurnResult
from qwen_dev_cli.config import load_settings
from qwen_dev_cli.core import Message
from qwen_dev_cli.runtime import Runtime
from qwen_dev_cli.session.store import SessionStore
from qwen_dev_cli.ui.repl import Repl, ReplOptions
from qwen_dev_cli.ui.theme import make_console


@pytest.fixture
async def server() -> AsyncIterator[FaultServer]:
    async with FaultServer() as srv:
        yield srv


@dataclass(frozen=True)
class Setup:
    """A config file and a workspace, and whether the REPL starts with --continue."""

    config_path: Path
    workspace: Path
    continue_latest: bool = False


def configure(tmp_path: Path, srv: FaultServer, extra: str = "") -> Setup:
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
    return Setup(path, workspace)


async def session(setup: Setup, typed: str, **repl_args: Any) -> str:
    """Run a REPL on ``typed`` (keys, ``\\r`` ending each line); what it printed."""
    settings = load_settings(setup.config_path)
    runtime = Runtime(settings, workspace=setup.workspace, config_path=setup.config_path)
    screen = io.StringIO()
    console = make_console(file=screen, width=120)
    with create_pipe_input() as pipe:
        repl = Repl(
            runtime,
            ReplOptions(continue_latest=setup.continue_latest),
            console=console,
            input=pipe,
            output=DummyOutput(),
            **repl_args,
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

    def factory(repl: Repl) -> Turn:
        seen.append(repl.approval)
        return repl.agent()

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


async def test_sessions_shows_titles_as_text_not_markup(
    server: FaultServer, tmp_path: Path, qwen_home: Path
) -> None:
    options = configure(tmp_path, server)
    hostile = "review [link=http://evil.example]this[/link] [qd.error]now[/]"
    await session(options, lines(hostile, "/exit"))
    shown = await session(options, lines("/sessions", "/exit"))
    assert "[link=http://evil.example]this[/link]" in shown  # shown, not interpreted


async def test_continue_resumes_the_latest_session_here(
    server: FaultServer, tmp_path: Path
) -> None:
    options = configure(tmp_path, server)
    await session(options, lines("earlier question", "/exit"))
    continued = Setup(options.config_path, options.workspace, continue_latest=True)
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
        async def run(self, history: list[Message], user_text: str, sink: EventSink) -> TurnResult:
            raise RuntimeError("boom")

    calls: list[str] = []

    def factory(repl: Repl) -> Turn:
        calls.append("turn")
        return Broken() if len(calls) == 1 else repl.agent()

    shown = await session(
        configure(tmp_path, server), lines("one", "two", "/exit"), turn_factory=factory
    )
    assert "internal error: RuntimeError: boom" in shown
    assert DEFAULT_TEXT in shown


def tool_call(name: str, **arguments: object) -> dict[str, str]:
    return {"name": name, "arguments": json.dumps(arguments)}


async def test_leaving_says_which_session_was_saved_and_how_to_resume_it(
    server: FaultServer, tmp_path: Path, qwen_home: Path
) -> None:
    shown = await session(configure(tmp_path, server), lines("hello") + "\x04")
    (info,) = saved(qwen_home).list()
    assert f"session {info.id} saved · resume: qwen-dev --resume {info.id}" in shown


async def test_leaving_without_a_conversation_mentions_no_session(
    server: FaultServer, tmp_path: Path
) -> None:
    shown = await session(configure(tmp_path, server), lines("/help", "/exit"))
    assert "--resume" not in shown


async def test_new_says_where_the_previous_conversation_is(
    server: FaultServer, tmp_path: Path, qwen_home: Path
) -> None:
    shown = await session(configure(tmp_path, server), lines("one", "/new", "/exit"))
    (info,) = saved(qwen_home).list()
    assert f"session {info.id} saved (/resume {info.id})" in shown


async def test_a_resumed_session_counts_its_messages_right(
    server: FaultServer, tmp_path: Path, qwen_home: Path
) -> None:
    options = configure(tmp_path, server)
    with saved(qwen_home).create(options.workspace) as one:
        one.append({"role": "user", "content": "only this"})
    shown = await session(options, lines(f"/resume {one.id}", "/exit"))
    assert f"resumed session {one.id} · 1 message" in shown
    assert "1 messages" not in shown


async def test_provider_names_an_unknown_provider_and_lists_the_configured_ones(
    server: FaultServer, tmp_path: Path
) -> None:
    shown = await session(configure(tmp_path, server), lines("/provider nosuch", "/exit"))
    line = " ".join(shown.split())
    assert "unknown provider 'nosuch'; the configured providers are: " in line
    assert "lab, lab2" in line
    assert "--provider" not in shown
    assert "provider_order" not in shown


async def test_provider_needing_a_missing_key_is_worded_for_the_command(
    server: FaultServer, tmp_path: Path
) -> None:
    extra = f"""
[providers.keyed]
base_url = "{server.base_url}"
model = "keyed-model"
api_key_env = "QWEN_DEV_TEST_MISSING_KEY"
"""
    shown = await session(configure(tmp_path, server, extra), lines("/provider keyed", "/exit"))
    line = " ".join(shown.split())
    assert "/provider: provider 'keyed' needs an API key: export QWEN_DEV_TEST_MISSING_KEY" in line
    assert "--provider" not in shown


async def test_model_on_the_local_provider_says_its_model_is_its_file(
    server: FaultServer, tmp_path: Path
) -> None:
    options = configure(tmp_path, server)
    assert options.config_path is not None
    gguf = tmp_path / "tiny.gguf"
    options.config_path.write_text(
        f"""
provider_order = ["local"]

[providers.local]
kind = "llama-cpp"
model_path = "{gguf}"
""",
        encoding="utf-8",
    )
    shown = await session(options, lines("/model foo-model", "/model", "/exit"))
    line = " ".join(shown.split())
    assert "/model: local runs one model file in-process" in line
    assert f"set model_path under [providers.local] in {options.config_path}" in line
    assert "now using" not in shown
    assert "foo-model" not in shown.rpartition("/model NAME.")[2]  # unchanged
    assert f"model: local · SmolLM2-135M-Instruct (the model file {gguf}" in line


async def test_approval_lists_the_always_allowed_commands_and_clear_forgets_them(
    server: FaultServer, tmp_path: Path
) -> None:
    seen: list[set[str]] = []

    def factory(repl: Repl) -> Turn:
        repl.always_allowed.add("pytest -q")  # as if answered "always" in this turn
        seen.append(set(repl.always_allowed))
        return repl.agent()

    typed = lines("hi", "/approval", "/approval clear", "/approval")
    shown = await session(configure(tmp_path, server), typed + "\x04", turn_factory=factory)
    listed, _, after = shown.partition("forgot 1 always-allowed command")
    assert "always allowed in this session (/approval clear forgets them):" in listed
    assert "  pytest -q" in listed
    assert "no command is always allowed in this session" in after
    assert seen == [{"pytest -q"}]


async def test_a_command_s_output_ends_under_it_and_output_shows_it_whole(
    server: FaultServer, tmp_path: Path
) -> None:
    command = "for n in $(seq 1 9); do echo out$n; done"
    server.script(
        Outcome.ok(tool_calls=[tool_call("run_command", command=command)]),
        Outcome.ok("Printed nine lines."),
    )
    typed = lines("count to nine") + "y" + lines("/output", "/exit")
    shown = await session(configure(tmp_path, server), typed)
    answered, _, whole = shown.partition("Printed nine lines.")
    assert "→ yes" in answered
    assert "out4" not in answered  # only the last five lines under the command
    for n in range(5, 10):
        assert f"    │ out{n}" in answered
    assert "… the last 5 of 9 lines: /output shows it all" in answered
    assert "exit code 0" in whole
    for n in range(1, 10):
        assert f"out{n}" in whole


async def test_continue_recalls_the_last_few_exchanges(server: FaultServer, tmp_path: Path) -> None:
    options = configure(tmp_path, server)
    await session(options, lines("first question", "second", "third", "fourth", "/exit"))
    continued = Setup(options.config_path, options.workspace, continue_latest=True)
    shown = await session(continued, lines("/exit"))
    recap = shown.split("resumed session")[1]
    assert "first question" not in recap
    assert [q in recap for q in ("second", "third", "fourth")] == [True, True, True]
    assert recap.count(DEFAULT_TEXT.split()[0]) >= 3  # each answer's first line
