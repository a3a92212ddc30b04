"""`qwen-dev -p` and `--output-format stream-json` (issue 20) end to end: real processes
against the fault server, each event read back from the real stdout."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from faultserver import DEFAULT_TEXT, FaultServer, Outcome

from .test_cli_ask import qwen_dev, write_config

pytestmark = pytest.mark.slow  # Every test runs a real `qwen-dev` process.


@pytest.fixture
async def server() -> AsyncIterator[FaultServer]:
    async with FaultServer() as srv:
        yield srv


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    (root / "app.py").write_text("print('hello')\n", encoding="utf-8")
    return root


def call(name: str, **arguments: object) -> dict[str, Any]:
    return {"name": name, "arguments": json.dumps(arguments)}


def events(out: str) -> list[dict[str, Any]]:
    """Every stdout line, each one complete JSON object (nothing else is allowed)."""
    assert out.endswith("\n"), out
    parsed = [json.loads(line) for line in out.splitlines()]
    assert all(isinstance(event, dict) for event in parsed)
    return parsed


def of(found: list[dict[str, Any]], kind: str, subtype: str | None = None) -> list[dict[str, Any]]:
    return [e for e in found if e["type"] == kind and (subtype is None or e["subtype"] == subtype)]


async def test_a_turn_with_tools_streams_every_event_in_claude_codes_schema(
    server: FaultServer, workspace: Path
) -> None:
    config = write_config(workspace.parent / "c.toml", server)
    server.script(
        Outcome.status(503),
        Outcome.ok(None, tool_calls=[call("read_file", path="app.py")]),
        Outcome.ok(None, tool_calls=[call("run_command", command="echo hi > made.txt")]),
        Outcome.ok("It prints hello."),
    )
    run = await qwen_dev(
        "-p",
        "what does app.py do?",
        "--output-format",
        "stream-json",
        "--include-partial-messages",
        "--config",
        str(config),
        cwd=workspace,
    )
    assert run.code == 0, run.err
    found = events(run.out)
    init, result = found[0], found[-1]
    session = init["session_id"]
    assert (init["type"], init["subtype"]) == ("system", "init")
    assert init["cwd"] == str(workspace)
    assert init["model"] == "fault-model"
    assert init["providers"] == ["lab"]
    assert {"read_file", "edit_file", "run_command"} <= set(init["tools"])
    assert init["permission_mode"] == "default"
    assert all(e["session_id"] == session for e in found)
    assert len({e["uuid"] for e in found}) == len(found)

    retry = of(found, "system", "retry")
    assert len(retry) == 1
    assert retry[0]["attempt"] == 1
    assert "503" in retry[0]["reason"]

    replies = of(found, "assistant")
    assert [r["message"]["stop_reason"] for r in replies] == ["tool_use", "tool_use", "end_turn"]
    for reply in replies:
        assert reply["message"]["model"] == "fault-model"
        assert reply["message"]["role"] == "assistant"
        assert set(reply["message"]["usage"]) == {"input_tokens", "output_tokens"}
        assert reply["message"]["usage"]["input_tokens"] > 0
    first_use = replies[0]["message"]["content"][0]
    assert first_use["type"] == "tool_use"
    assert (first_use["name"], first_use["input"]) == ("read_file", {"path": "app.py"})
    assert replies[2]["message"]["content"] == [{"type": "text", "text": "It prints hello."}]

    results = [e["message"]["content"][0] for e in of(found, "user")]
    assert [r["type"] for r in results] == ["tool_result", "tool_result"]
    assert results[0]["tool_use_id"] == first_use["id"]
    assert "print('hello')" in results[0]["content"]
    assert results[0]["is_error"] is False
    assert results[1]["is_error"] is True  # denied: no one to ask

    deltas = of(found, "stream_event")
    assert "".join(d["event"]["delta"]["text"] for d in deltas) == "It prints hello."
    assert all(d["event"]["type"] == "content_block_delta" for d in deltas)

    assert (result["type"], result["subtype"], result["is_error"]) == ("result", "success", False)
    assert result["result"] == "It prints hello."
    assert result["num_turns"] == 3
    assert isinstance(result["duration_ms"], int)
    assert isinstance(result["duration_api_ms"], int)
    assert result["usage"]["output_tokens"] > 0
    assert result["errors"] == []
    denial = result["permission_denials"]
    assert [(d["tool_name"], d["tool_input"]) for d in denial] == [
        ("run_command", {"command": "echo hi > made.txt"})
    ]
    assert not (workspace / "made.txt").exists()
    # Order: init, then the turn, then the result; the deltas before their reply.
    assert found.index(deltas[-1]) < found.index(replies[2])


async def test_dash_p_is_ask(server: FaultServer, tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.toml", server)
    by_p = await qwen_dev("-p", "hello", "--output-format", "json", "--config", str(config))
    by_ask = await qwen_dev("ask", "--json", "--config", str(config), "hello")
    assert by_p.code == by_ask.code == 0, by_p.err + by_ask.err
    one, other = by_p.json(), by_ask.json()
    assert set(one) == set(other)
    assert one["text"] == other["text"] == DEFAULT_TEXT
    text = await qwen_dev("--prompt", "hello", "--config", str(config))
    assert (text.code, text.out) == (0, DEFAULT_TEXT + "\n")


async def test_out_of_turns_is_error_max_turns(server: FaultServer, workspace: Path) -> None:
    config = write_config(workspace.parent / "c.toml", server)
    server.script(Outcome.ok(None, tool_calls=[call("read_file", path="app.py")]))
    run = await qwen_dev(
        "ask", "--output-format", "stream-json", "--max-turns", "1", "--config", str(config), "go",
        cwd=workspace,
    )  # fmt: skip
    assert run.code == 0, run.err
    result = events(run.out)[-1]
    assert (result["subtype"], result["is_error"], result["num_turns"]) == (
        "error_max_turns",
        True,
        1,
    )
    assert "Stopped after 1 model calls" in result["errors"][0]


async def test_a_failed_turn_ends_with_an_error_result_and_its_exit_code(
    server: FaultServer, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "c.toml", server)
    server.script(*[Outcome.status(503)] * 4)
    run = await qwen_dev("-p", "hi", "--output-format", "stream-json", "--config", str(config))
    assert run.code == 3, run.err
    found = events(run.out)
    assert found[0]["subtype"] == "init"
    assert of(found, "system", "retry")
    result = found[-1]
    assert (result["type"], result["subtype"], result["is_error"]) == (
        "result",
        "error_during_execution",
        True,
    )
    assert result["session_id"] == found[0]["session_id"]
    assert result["errors"]
    assert "503" in result["errors"][0]
    assert result["error"]["providers"]


async def test_failover_and_the_circuit_are_system_events(
    server: FaultServer, tmp_path: Path
) -> None:
    async with FaultServer() as backup:
        config = tmp_path / "c.toml"
        config.write_text(
            f"""
provider_order = ["lab", "backup"]
[providers.lab]
base_url = "{server.base_url}"
model = "fault-model"
[providers.backup]
base_url = "{backup.base_url}"
model = "backup-model"
[retry]
max_retries = 1
base_delay = 0.01
max_delay = 0.02
[circuit_breaker]
failure_threshold = 1
""",
            encoding="utf-8",
        )
        server.script(Outcome.status(503))
        run = await qwen_dev("-p", "hi", "--output-format", "stream-json", "--config", str(config))
    assert run.code == 0, run.err
    found = events(run.out)
    failover = of(found, "system", "failover")
    assert [(f["from_provider"], f["provider"]) for f in failover] == [("lab", "backup")]
    circuit = of(found, "system", "circuit")
    assert circuit
    assert circuit[0]["provider"] == "lab"
    assert circuit[0]["state"] == "OPEN"
    assert of(found, "assistant")[0]["provider"] == "backup"
    assert found[-1]["subtype"] == "success"


async def test_a_config_error_is_one_result_event(tmp_path: Path) -> None:
    run = await qwen_dev(
        "-p", "hi", "--output-format", "stream-json", "--config", str(tmp_path / "nope.toml")
    )
    assert run.code == 2
    (result,) = events(run.out)
    assert (result["type"], result["subtype"], result["is_error"]) == (
        "result",
        "error_during_execution",
        True,
    )
    assert "config file not found" in result["errors"][0]
    assert {"session_id", "uuid", "duration_ms", "duration_api_ms", "num_turns"} <= set(result)


async def test_a_reader_that_goes_away_ends_the_run_quietly_with_the_session_saved(
    server: FaultServer, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "c.toml", server)
    server.script(Outcome.ok("word " * 400, chunk_size=5, chunk_delay=0.005))
    home = tmp_path / "home"
    env = {**os.environ, "QWEN_DEV_HOME": str(home)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "qwen_dev_cli", "-p", "talk", "--output-format", "stream-json",
        "--include-partial-messages", "--config", str(config),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    assert proc.stdout is not None
    assert proc.stderr is not None
    first = json.loads(await proc.stdout.readline())
    assert first["subtype"] == "init"
    # The reader leaves: its end of the pipe closed.
    transport = proc._transport  # type: ignore[attr-defined]  # to close only stdout's pipe
    transport.get_pipe_transport(1).close()
    err = await asyncio.wait_for(proc.stderr.read(), timeout=60)
    code = await asyncio.wait_for(proc.wait(), timeout=60)
    assert code == 130
    assert b"Traceback" not in err, err
    assert b"BrokenPipe" not in err, err
    listed = await qwen_dev_env(env, "sessions", "list", "--json")
    assert [s["id"] for s in json.loads(listed)] == [first["session_id"]]


async def qwen_dev_env(env: dict[str, str], *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "qwen_dev_cli", *args,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0
    return out.decode()


async def test_text_mode_without_a_terminal_says_each_tool_call_on_stderr(
    server: FaultServer, workspace: Path
) -> None:
    config = write_config(workspace.parent / "c.toml", server)
    edit = call(
        "edit_file", path="app.py", old_string="print('hello')\n", new_string="print('hi')\nx = 1\n"
    )
    server.script(
        Outcome.ok(None, tool_calls=[call("read_file", path="app.py")]),
        Outcome.ok(None, tool_calls=[edit]),
        Outcome.ok(None, tool_calls=[call("run_command", command="exit 3")]),
        Outcome.ok(None, tool_calls=[call("read_file", path="missing.py")]),
        Outcome.ok("Done."),
    )
    run = await qwen_dev(
        "-p", "fix it", "--approval", "yolo", "--config", str(config), cwd=workspace
    )
    assert run.code == 0, run.err
    assert run.out == "Done.\n"
    lines = [line for line in run.err.splitlines() if line.startswith("qwen-dev: ")]
    assert "qwen-dev: ran read_file: app.py" in lines
    assert "qwen-dev: edited app.py (+2 -1)" in lines
    assert "qwen-dev: ran run_command: exit 3 (exit 3)" in lines
    assert any(line.startswith("qwen-dev: read_file: missing.py failed: ") for line in lines)


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (("-p", "hi", "--output-format", "xml"), "--output-format"),
        (("ask", "--output-format", "yaml", "hi"), "--output-format"),
        (("-p", "hi", "--max-turns", "0"), "--max-turns"),
        (("-p", "hi", "--no-such-flag"), "--no-such-flag"),
        (("--output-format", "json", "sessions", "list"), "--output-format"),
        (("-p", "hi", "--json"), "--json"),
        (("--include-partial-messages",), "--include-partial-messages"),
        (("ask", "--json", "--output-format", "stream-json", "hi"), "--json"),
    ],
)
async def test_bad_flags_exit_2_naming_the_flag(args: tuple[str, ...], flag: str) -> None:
    run = await qwen_dev(*args)
    assert run.code == 2, run.err
    assert flag in run.err
    assert run.out == ""


def system_of(srv: FaultServer, index: int = -1) -> str:
    body = srv.requests[index].json
    assert isinstance(body, dict)
    content = body["messages"][0]["content"]
    assert body["messages"][0]["role"] == "system"
    assert isinstance(content, str)
    return content


async def test_system_prompt_flags_replace_and_append(server: FaultServer, tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.toml", server)
    run = await qwen_dev(
        "-p", "hi", "--system-prompt", "You are a pirate.", "--append-system-prompt",
        "Always say arr.", "--config", str(config),
    )  # fmt: skip
    assert run.code == 0, run.err
    system = system_of(server)
    assert system.startswith("You are a pirate.\n\n# Tools")
    assert system.endswith("\n\nAlways say arr.")
    assert "You are qwen-dev" not in system
    # What the Claude Agent SDK sends when it has no system prompt: ours.
    run = await qwen_dev("-p", "hi", "--system-prompt=", "--config", str(config))
    assert run.code == 0, run.err
    assert system_of(server).startswith("You are qwen-dev")


async def test_plan_mode_offers_only_reading_tools(server: FaultServer, workspace: Path) -> None:
    config = write_config(workspace.parent / "c.toml", server)
    server.script(Outcome.ok(None, tool_calls=[call("write_file", path="x.py", content="1")]))
    run = await qwen_dev(
        "-p", "plan it", "--permission-mode", "plan", "--output-format", "stream-json",
        "--config", str(config), cwd=workspace,
    )  # fmt: skip
    assert run.code == 0, run.err
    found = events(run.out)
    assert found[0]["permission_mode"] == "plan"
    assert set(found[0]["tools"]) == {"read_file", "list_dir", "glob", "grep"}
    body = server.requests[0].json
    assert isinstance(body, dict)
    assert {tool["function"]["name"] for tool in body["tools"]} == set(found[0]["tools"])
    assert "# Plan mode" in system_of(server, 0)
    assert not (workspace / "x.py").exists()
    assert of(found, "user")[0]["message"]["content"][0]["is_error"] is True


async def test_accept_edits_is_auto_edit(server: FaultServer, workspace: Path) -> None:
    config = write_config(workspace.parent / "c.toml", server)
    server.script(
        Outcome.ok(None, tool_calls=[call("write_file", path="x.py", content="1\n")]),
        Outcome.ok("Written."),
    )
    run = await qwen_dev(
        "ask", "--permission-mode", "acceptEdits", "--output-format", "stream-json",
        "--config", str(config), "write it", cwd=workspace,
    )  # fmt: skip
    assert run.code == 0, run.err
    assert events(run.out)[0]["permission_mode"] == "acceptEdits"
    assert (workspace / "x.py").read_text() == "1\n"


async def test_verbose_tells_retries_on_stderr_without_a_terminal(
    server: FaultServer, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "c.toml", server)
    server.script(Outcome.status(503))
    quiet = await qwen_dev("-p", "hi", "--config", str(config))
    server.script(Outcome.status(503))
    loud = await qwen_dev("-p", "hi", "--verbose", "--config", str(config))
    assert quiet.code == loud.code == 0, quiet.err + loud.err
    assert "retry 1/1" not in quiet.err
    assert "qwen-dev: retry 1/1" in loud.err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("-p", "hi", "--permission-mode", "bypassPermissions", "--approval", "ask"), "--approval"),
        (("-p", "hi", "--permission-mode", "sometimes"), "--permission-mode"),
        (("-p", "hi", "--max-steps", "3"), "--max-steps"),
        (("ask", "--max-steps", "3", "--max-turns", "4", "hi"), "--max-turns"),
        (("--system-prompt", "x"), "--system-prompt"),
    ],
)
async def test_headless_flag_misuse_is_a_usage_error(args: tuple[str, ...], message: str) -> None:
    run = await qwen_dev(*args)
    assert run.code == 2, run.err
    assert message in run.err
