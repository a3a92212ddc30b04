"""`qwen-dev doctor`, the real process against the fault server on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from faultserver import FaultServer, Outcome
from tests.test_cli_ask import qwen_dev

KEY = "sk-doctor-test-0123456789"


@pytest.fixture
async def server() -> AsyncIterator[FaultServer]:
    async with FaultServer(require_api_key=KEY) as srv:
        yield srv


def config(tmp_path: Path, srv: FaultServer, *, order: str = '["lab"]') -> Path:
    path = tmp_path / "c.toml"
    path.write_text(
        f"""
provider_order = {order}

[providers.lab]
base_url = "{srv.base_url}"
model = "fault-model"
api_key_env = "LAB_KEY"

[providers.spare]
base_url = "{srv.base_url}"
model = "spare-model"
api_key_env = "SPARE_KEY"
""",
        encoding="utf-8",
    )
    return path


def block(out: str, name: str) -> str:
    """The two lines the doctor prints about provider ``name``."""
    lines = out.splitlines()
    for index, line in enumerate(lines):
        if line[2:].startswith(name + " "):
            return "\n".join(lines[index : index + 2])
    raise AssertionError(f"{name} not reported:\n{out}")


@pytest.mark.slow  # a real `qwen-dev doctor` process
async def test_a_working_provider_is_reported_with_model_and_latency(
    server: FaultServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAB_KEY", KEY)
    run = await qwen_dev("doctor", "--config", str(config(tmp_path, server)))
    assert run.code == 0, run.out + run.err
    lab = block(run.out, "lab")
    assert lab.startswith("✓ lab")
    assert "in use" in lab
    assert "key set (LAB_KEY)" in lab
    assert "fault-model" in lab
    assert " ms" in lab
    assert "answers" in lab
    assert KEY not in run.out + run.err
    assert server.requests[-1].json["max_tokens"] == 1


@pytest.mark.slow  # a real `qwen-dev doctor` process
async def test_every_defined_provider_is_reported(
    server: FaultServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAB_KEY", KEY)
    run = await qwen_dev("doctor", "--config", str(config(tmp_path, server)))
    spare = block(run.out, "spare")
    assert "unused" in spare
    assert "key missing (SPARE_KEY)" in spare
    assert "not probed: export SPARE_KEY" in spare
    for preset in ("sambanova", "hf", "ollama", "local"):
        block(run.out, preset)
    assert "llama-cpp" in block(run.out, "local")


@pytest.mark.slow  # a real `qwen-dev doctor` process
async def test_a_wrong_key_is_a_failure_that_does_not_show_the_key(
    server: FaultServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAB_KEY", "sk-wrong-key-98765")
    run = await qwen_dev("doctor", "--config", str(config(tmp_path, server)))
    assert run.code == 3
    lab = block(run.out, "lab")
    assert lab.startswith("✗ lab")
    assert "401" in lab
    assert "sk-wrong-key-98765" not in run.out + run.err


@pytest.mark.slow  # a real `qwen-dev doctor` process
async def test_exit_non_zero_when_no_provider_in_use_answers(
    server: FaultServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAB_KEY", KEY)
    monkeypatch.setenv("SPARE_KEY", KEY)
    server.configure(default=Outcome.status(503))
    both = config(tmp_path, server, order='["lab", "spare"]')
    run = await qwen_dev("doctor", "--config", str(both))
    assert run.code == 3
    assert "503" in block(run.out, "lab")
    assert "503" in block(run.out, "spare")
    assert "no provider in use answers" in run.out


@pytest.mark.slow  # a real `qwen-dev doctor` process
async def test_a_hanging_provider_costs_one_timeout(
    server: FaultServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAB_KEY", KEY)
    server.configure(default=Outcome.hang())
    run = await qwen_dev("doctor", "--timeout", "0.5", "--config", str(config(tmp_path, server)))
    assert run.code == 3
    assert "✗ lab" in run.out


@pytest.mark.slow  # a real `qwen-dev doctor` process
async def test_the_memory_store_is_reported_as_per_process(
    server: FaultServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAB_KEY", KEY)
    monkeypatch.setenv("QWEN_DEV_STATE", "memory")
    run = await qwen_dev("doctor", "--config", str(config(tmp_path, server)))
    assert run.code == 0, run.out + run.err
    store = block(run.out, "state store")
    assert store.startswith("✓ state store  memory  this process  ")
    assert " ms" in store
    assert "per-process state; not shared with other processes" in store


@pytest.mark.slow  # a real `qwen-dev doctor` process
async def test_the_local_store_is_checked_in_qwen_dev_home(
    server: FaultServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, qwen_home: Path
) -> None:
    monkeypatch.setenv("LAB_KEY", KEY)
    run = await qwen_dev("doctor", "--config", str(config(tmp_path, server)))
    assert run.code == 0, run.out + run.err
    store = block(run.out, "state store")
    assert store.startswith(f"✓ state store  local  {qwen_home / 'state.sqlite3'}  ")
    assert "SQLite" in store
    assert "budgets shared by every process on this machine" in store
    assert run.out.splitlines()[-1] == "ready: lab"


@pytest.mark.slow  # a real `qwen-dev doctor` process
async def test_a_broken_store_is_a_warning_not_a_failure(
    server: FaultServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, qwen_home: Path
) -> None:
    monkeypatch.setenv("LAB_KEY", KEY)
    (qwen_home / "state.sqlite3").mkdir(parents=True)  # not a database: unusable
    run = await qwen_dev("doctor", "--config", str(config(tmp_path, server)))
    assert run.code == 0, run.out + run.err
    store = block(run.out, "state store")
    assert store.startswith("! state store  local  ")
    assert "unavailable: " in store
    assert "answers still work, with budgets and breakers per process" in store
    assert run.out.splitlines()[-1] == "ready: lab (budgets per process: see state store)"


def test_a_placeholder_key_is_not_masked_inside_ordinary_words() -> None:
    from qwen_dev_cli.ui.doctor import _redact

    assert _redact("no answer within 10s", "a") == "no answer within 10s"
    assert _redact("bad key sk-live-0123456789abcdef", "sk-live-0123456789abcdef") == (
        "bad key ***"
    )


def test_an_unused_provider_that_does_not_answer_is_not_painted_as_a_failure() -> None:
    # A preset nobody put in the order (ollama on this machine, not running) is no
    # failure of the user's; a provider in use that fails still is, in red.
    import io

    from qwen_dev_cli.ui.doctor import ProbeResult, report
    from qwen_dev_cli.ui.theme import make_console

    screen = io.StringIO()
    console = make_console(file=screen, width=120, force_terminal=True, color_system="standard")
    report(
        [
            ProbeResult("lab", "in use", "not needed", False, "connection refused", "m"),
            ProbeResult("ollama", "unused", "not needed", False, "connection refused", "q"),
        ],
        console,
    )
    red = "\x1b[31m"
    lines = screen.getvalue().splitlines()
    assert red in lines[0]
    assert "✗" in lines[0]
    assert "lab" in lines[0]
    assert red not in lines[2] + lines[3]
    assert "- " in lines[2]
    assert "ollama" in lines[2]
