"""`qwen-dev ask` end to end: a real process against the fault server on loopback."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from faultserver import DEFAULT_TEXT, FaultServer, FaultServerProcess, Outcome

pytestmark = pytest.mark.slow  # Every test runs a real `qwen-dev` process.

METRIC_KEYS = {
    "total_requests",
    "success_rate",
    "avg_latency_ms",
    "p50_latency_ms",
    "p95_latency_ms",
    "total_tokens",
    "retries",
    "rate_limited",
    "circuit_breaker_blocks",
    "failovers",
    "providers",
    # issue 23: counts that say what they count, histograms
    "successful_requests",
    "failed_requests",
    "total_attempts",
    "failed_attempts",
    "failures",
    "breaker_opens",
    "throttled",
    "budget_waits",
    "budget_wait_s",
    "retry_budget_spent",
    "quota_exhausted",
    "input_tokens",
    "output_tokens",
    "p50_ttft_ms",
    "p95_ttft_ms",
    "latency_resolution_pct",
    "histograms",
}


@dataclass
class Run:
    code: int
    out: str
    err: str

    def json(self) -> dict[str, Any]:
        payload = json.loads(self.out)
        assert isinstance(payload, dict), self.out
        return payload


@pytest.fixture
async def server() -> AsyncIterator[FaultServer]:
    async with FaultServer() as srv:
        yield srv


def write_config(
    path: Path,
    srv: FaultServer | FaultServerProcess,
    extra: str = "",
    provider_extra: str = "",
) -> Path:
    path.write_text(
        f"""
provider_order = ["lab"]

[providers.lab]
base_url = "{srv.base_url}"
model = "fault-model"
{provider_extra}

[retry]
max_retries = 1
base_delay = 0.01
max_delay = 0.02
{extra}
""",
        encoding="utf-8",
    )
    return path


async def qwen_dev(*args: str, stdin: bytes | None = None, cwd: Path | None = None) -> Run:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "qwen_dev_cli",
        *args,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=cwd,
        env=dict(os.environ),
    )
    out, err = await asyncio.wait_for(proc.communicate(stdin), timeout=120)
    assert proc.returncode is not None
    return Run(proc.returncode, out.decode(), err.decode())


async def test_json_output_is_one_object_with_the_documented_schema(
    server: FaultServer, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "c.toml", server)
    run = await qwen_dev("ask", "--json", "--config", str(config), "hello")
    assert run.code == 0, run.err
    payload = run.json()
    assert payload["ok"] is True
    assert payload["text"] == DEFAULT_TEXT
    assert (payload["provider"], payload["model"]) == ("lab", "fault-model")
    assert set(payload["usage"]) == {"prompt_tokens", "completion_tokens", "total_tokens"}
    assert payload["attempts"] == 1
    assert isinstance(payload["latency_ms"], int)
    assert set(payload["metrics"]) == METRIC_KEYS
    assert payload["metrics"]["providers"]["lab"]["state"] == "CLOSED"
    assert payload["finish_reason"] == "stop"


async def test_piped_stdin_is_appended_as_context(server: FaultServer, tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.toml", server)
    diff = b"--- a/app.py\n+++ b/app.py\n+print('hi')\n"
    run = await qwen_dev("ask", "--config", str(config), "review this", stdin=diff)
    assert run.code == 0, run.err
    sent = server.requests[-1].json
    assert sent is not None
    user = sent["messages"][-1]["content"]
    assert user.startswith("review this")
    assert "+print('hi')" in user


async def test_streams_the_answer_to_stdout(server: FaultServer, tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.toml", server)
    run = await qwen_dev("ask", "--config", str(config), "hello")
    assert run.code == 0
    assert run.out == DEFAULT_TEXT + "\n"
    assert server.requests[-1].stream
    plain = await qwen_dev("ask", "--no-stream", "--config", str(config), "hello")
    assert plain.out == DEFAULT_TEXT + "\n"


async def test_recovers_from_a_transient_failure(server: FaultServer, tmp_path: Path) -> None:
    server.script(Outcome.status(503))
    config = write_config(tmp_path / "c.toml", server)
    run = await qwen_dev("ask", "--json", "--config", str(config), "hello")
    assert run.code == 0
    assert run.json()["attempts"] == 2


async def test_exit_3_when_retries_and_failover_do_not_help(
    server: FaultServer, tmp_path: Path
) -> None:
    server.configure(default=Outcome.status(503))
    config = write_config(tmp_path / "c.toml", server)
    run = await qwen_dev("ask", "--json", "--config", str(config), "hello")
    assert run.code == 3
    payload = run.json()
    assert payload["ok"] is False
    assert payload["error"]["type"] == "all_providers_failed"
    assert payload["error"]["providers"][0]["name"] == "lab"
    assert set(payload["metrics"]) == METRIC_KEYS
    assert len(run.out.strip().splitlines()) == 1


async def test_exit_4_when_the_provider_rejects_the_request(
    server: FaultServer, tmp_path: Path
) -> None:
    server.configure(default=Outcome.status(401))
    config = write_config(tmp_path / "c.toml", server)
    run = await qwen_dev("ask", "--config", str(config), "hello")
    assert run.code == 4
    assert "401" in run.err
    assert run.out == ""


async def test_exit_2_for_a_bad_config_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[retry]\nbase_delay = -1\n", encoding="utf-8")
    run = await qwen_dev("ask", "--config", str(bad), "hello")
    assert run.code == 2
    assert str(bad) in run.err
    assert "retry.base_delay" in run.err
    assert "Traceback" not in run.err


async def test_exit_2_without_a_prompt(server: FaultServer, tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.toml", server)
    run = await qwen_dev("ask", "--config", str(config))
    assert run.code == 2
    assert "nothing to ask" in run.err


async def test_version_and_help() -> None:
    version = await qwen_dev("--version")
    assert version.code == 0
    assert version.out.startswith("qwen-dev ")
    helped = await qwen_dev("ask", "--help")
    assert helped.code == 0
    assert "--json" in helped.out


async def test_config_show_redacts_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_supersecretvalue")
    run = await qwen_dev("config", "show")
    assert run.code == 0
    assert "hf_supersecretvalue" not in run.out
    assert json.loads(run.out)["providers"]["hf"]["api_key"] == "***"


async def test_config_init_writes_a_loadable_file(tmp_path: Path) -> None:
    target = tmp_path / "new" / "config.toml"
    run = await qwen_dev("config", "init", "--config", str(target))
    assert run.code == 0
    assert target.is_file()
    again = await qwen_dev("config", "init", "--config", str(target))
    assert again.code == 2
    shown = await qwen_dev("config", "show", "--config", str(target))
    assert shown.code == 0


async def test_json_failure_object_for_a_config_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[retry]\nmax_retries = 'many'\n", encoding="utf-8")
    run = await qwen_dev("ask", "--json", "--config", str(bad), "hello")
    assert run.code == 2
    payload = run.json()
    assert payload["ok"] is False
    assert payload["error"]["type"] == "config_error"
    assert "retry.max_retries" in payload["error"]["message"]


async def test_no_usable_provider_is_exit_2_naming_each_skipped_one_and_its_variable(
    tmp_path: Path,
) -> None:
    config = tmp_path / "c.toml"
    config.write_text('provider_order = ["sambanova", "hf"]\n', encoding="utf-8")  # no key set
    run = await qwen_dev("ask", "--json", "--config", str(config), "hello")
    assert run.code == 2, run.err
    payload = run.json()
    assert payload["ok"] is False
    assert payload["error"]["type"] == "no_provider_configured"
    assert payload["error"]["providers"] == [
        {"name": "sambanova", "error": "SAMBANOVA_API_KEY is not set"},
        {"name": "hf", "error": "HF_TOKEN is not set"},
    ]
    for said in (payload["error"]["message"], run.err):
        assert "sambanova skipped: SAMBANOVA_API_KEY is not set" in said
        assert "hf skipped: HF_TOKEN is not set" in said
    assert "Traceback" not in run.err

    plain = await qwen_dev("ask", "--config", str(config), "hello")
    assert plain.code == 2
    assert plain.out == ""
    assert "export a key (e.g. SAMBANOVA_API_KEY=...)" in plain.err


async def test_at_mentions_attach_files_and_say_what_was_not_attached(
    server: FaultServer, tmp_path: Path
) -> None:
    workspace = tmp_path / "project"
    workspace.mkdir()
    (workspace / "app.py").write_text("print('hello')\n", encoding="utf-8")
    (workspace / "blob.bin").write_bytes(b"\x00\x01")
    (tmp_path / "secret.txt").write_text("key\n", encoding="utf-8")
    config = write_config(tmp_path / "c.toml", server)
    run = await qwen_dev(
        "ask",
        "--config",
        str(config),
        "what does @app.py do? see @missing.py, @../secret.txt and @blob.bin",
        cwd=workspace,
    )
    assert run.code == 0, run.err
    sent = server.requests[-1].json
    assert sent is not None
    user = [m for m in sent["messages"] if m["role"] == "user"][-1]["content"]
    assert "File `app.py`:\n```\nprint('hello')\n```" in user
    assert "key" not in user
    assert "qwen-dev: @missing.py: no such file in the workspace; not attached" in run.err
    assert "qwen-dev: @../secret.txt: outside the workspace" in run.err
    assert "qwen-dev: @blob.bin: looks binary; not attached" in run.err


async def test_a_file_too_large_for_the_window_is_cut_with_a_warning(
    server: FaultServer, tmp_path: Path
) -> None:
    workspace = tmp_path / "project"
    workspace.mkdir()
    (workspace / "big.log").write_text(("x" * 59 + "\n") * 1000, encoding="utf-8")  # 60 KB
    config = write_config(tmp_path / "c.toml", server, provider_extra="context_window = 8192")
    run = await qwen_dev("ask", "--config", str(config), "summarise @big.log", cwd=workspace)
    assert run.code == 0, run.err
    assert (
        "qwen-dev: @big.log is ~14,999 tokens; attached files may take ~2,252 tokens of "
        "the 8,192-token context window of lab: only its first 9,008 characters" in run.err
    )
    sent = server.requests[-1].json
    assert sent is not None
    assert "the rest does not fit the context window" in sent["messages"][-1]["content"]


async def test_the_offline_notice_is_shown_once_a_day(tmp_path: Path, qwen_home: Path) -> None:
    config = tmp_path / "c.toml"
    # Offline: only the local model, here one that fails at once (no model file).
    config.write_text(
        'provider_order = ["sambanova", "local"]\n'
        f'[providers.local]\nmodel_path = "{tmp_path / "none.gguf"}"\n',
        encoding="utf-8",
    )
    first = await qwen_dev("ask", "--config", str(config), "hi")
    assert "answering offline" in first.err
    assert "SAMBANOVA_API_KEY" in first.err
    again = await qwen_dev("ask", "--config", str(config), "hi")
    assert "answering offline" not in again.err
    # A day later it is shown again.
    shown = qwen_home / "notices.json"
    stamps = json.loads(shown.read_text())
    shown.write_text(json.dumps({k: v - 86_401 for k, v in stamps.items()}))
    later = await qwen_dev("ask", "--config", str(config), "hi")
    assert "answering offline" in later.err


async def test_piped_output_never_repeats_a_restarted_answer(
    server: FaultServer, tmp_path: Path
) -> None:
    server.script(Outcome.stream_cut(after=3))  # breaks mid-answer, then the retry works
    config = write_config(tmp_path / "c.toml", server)
    run = await qwen_dev("ask", "--config", str(config), "hello")
    assert run.code == 0, run.err
    assert run.out == DEFAULT_TEXT + "\n"  # stdout is a pipe: exactly one answer
    assert len(server.requests) == 2


async def test_an_answer_cut_at_its_token_limit_is_said(
    server: FaultServer, tmp_path: Path
) -> None:
    server.script(Outcome.ok("a long story that goes on", finish_reason="length"))
    config = write_config(tmp_path / "c.toml", server)
    run = await qwen_dev("ask", "--json", "--config", str(config), "tell me a long story")
    assert run.code == 0, run.err
    assert run.json()["finish_reason"] == "length"
    assert "answer cut at its token limit" in run.err


async def test_model_flag_on_the_local_provider_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('provider_order = ["local"]\n', encoding="utf-8")
    run = await qwen_dev("ask", "--config", str(config), "--model", "foo-model", "hello")
    assert run.code == 2, run.err
    assert "local runs its model file in-process" in run.err
    assert "model_path under [providers.local]" in run.err
