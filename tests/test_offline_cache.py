"""The offline model's saved prompt prefix, as a user meets it: `qwen-dev ask` in new
processes, with the real model, sharing QWEN_DEV_HOME/cache/llama-state.

Whether a run restored the prefix is read from the file, not from timing: a restore
reads the entry and marks it used (a newer mtime, the same inode); a rebuild writes a
new file (a new inode)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from qwen_dev_cli.core.providers.llama_state_cache import DEFAULT_MAX_BYTES, MAGIC

from .conftest import requires_llama_cpp
from .test_cli_ask import qwen_dev

pytestmark = [pytest.mark.slow, requires_llama_cpp]

QUESTION = "Name one primary colour."


def state_folder(home: Path) -> Path:
    return home / "cache" / "llama-state"


def entries(home: Path) -> list[Path]:
    return sorted(state_folder(home).glob("*.kv"))


@dataclass(frozen=True)
class Warm:
    """A first `ask` already made: its workspace, its saved prefix and its answer."""

    workspace: Path
    entry: Path
    answer: str


@pytest.fixture(scope="module")
def warm(tmp_path_factory: pytest.TempPathFactory) -> Warm:
    """One cold `ask` (the prefill: seconds) shared by the tests, which copy its entry.
    The system prompt names the workspace, so every test asks from this one."""
    base = tmp_path_factory.mktemp("warm")
    workspace = base / "ws"
    workspace.mkdir()
    (base / "config.toml").write_text("")
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.endswith(("_API_KEY", "_TOKEN")) and not name.startswith("QWEN_DEV_")
    }
    env.update(QWEN_DEV_HOME=str(base / "home"), QWEN_DEV_CONFIG=str(base / "config.toml"))
    run = subprocess.run(
        [sys.executable, "-m", "qwen_dev_cli", "ask", "--json", QUESTION],
        cwd=workspace,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    [entry] = entries(base / "home")
    return Warm(workspace, entry, json.loads(run.stdout)["text"])


def install(warm: Warm, home: Path) -> Path:
    folder = state_folder(home)
    folder.mkdir(parents=True, mode=0o700)
    return Path(shutil.copy2(warm.entry, folder / warm.entry.name))


async def ask(workspace: Path) -> dict[str, object]:
    run = await qwen_dev("ask", "--json", QUESTION, cwd=workspace)
    assert run.code == 0, run.err
    payload: dict[str, object] = run.json()
    return payload


def age(path: Path, seconds: float = 3600) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


async def test_the_first_ask_saves_the_prefix_privately(tmp_path: Path, qwen_home: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    assert entries(qwen_home) == []
    await ask(workspace)
    [entry] = entries(qwen_home)
    assert entry.read_bytes()[: len(MAGIC)] == MAGIC
    assert stat.S_IMODE(entry.stat().st_mode) == 0o600
    assert stat.S_IMODE(state_folder(qwen_home).stat().st_mode) == 0o700
    assert entry.stat().st_size > 1_000_000  # the KV cells of ~1,400 tokens


async def test_a_later_ask_restores_the_prefix_and_answers_the_same(
    warm: Warm, qwen_home: Path
) -> None:
    entry = install(warm, qwen_home)
    age(entry)
    before = entry.stat()
    payload = await ask(warm.workspace)
    [after] = entries(qwen_home)
    assert after.stat().st_ino == before.st_ino  # not rewritten...
    assert after.stat().st_mtime > before.st_mtime + 60  # ...but read and marked used
    assert payload["text"] == warm.answer  # same tokens, same state: the same answer


async def test_a_corrupt_entry_is_rebuilt_and_the_answer_is_unchanged(
    warm: Warm, qwen_home: Path
) -> None:
    entry = install(warm, qwen_home)
    data = bytearray(entry.read_bytes())
    data[-1000] ^= 0xFF  # one byte of the KV cells
    entry.write_bytes(bytes(data))
    corrupt = entry.stat()
    payload = await ask(warm.workspace)
    assert payload["text"] == warm.answer
    [rebuilt] = entries(qwen_home)
    assert rebuilt.stat().st_ino != corrupt.st_ino  # a new file replaced it
    assert rebuilt.stat().st_size == warm.entry.stat().st_size
    assert rebuilt.read_bytes()[-1000] != data[-1000]


async def test_a_truncated_entry_is_rebuilt(warm: Warm, qwen_home: Path) -> None:
    entry = install(warm, qwen_home)
    with entry.open("r+b") as file:
        file.truncate(entry.stat().st_size // 2)  # a crash mid-write, or a full disk
    payload = await ask(warm.workspace)
    assert payload["text"] == warm.answer
    [rebuilt] = entries(qwen_home)
    assert rebuilt.stat().st_size == warm.entry.stat().st_size


async def test_a_full_cache_folder_evicts_its_least_recently_used_entries(
    warm: Warm, qwen_home: Path
) -> None:
    folder = state_folder(qwen_home)
    folder.mkdir(parents=True, mode=0o700)
    # Three entries of earlier prompts, 100 MiB each (sparse: no real disk used).
    old = [folder / f"{n:064x}.kv" for n in range(3)]
    for n, path in enumerate(old):
        with path.open("wb") as file:
            file.truncate(100 * 1024 * 1024)
        age(path, 3600 - n)  # old[0] is the least recently used
    await ask(warm.workspace)
    remaining = entries(qwen_home)
    assert old[0] not in remaining
    assert old[1] in remaining
    assert old[2] in remaining
    [new] = [path for path in remaining if path not in old]
    assert sum(path.stat().st_size for path in remaining) <= DEFAULT_MAX_BYTES
    assert new.stat().st_size == warm.entry.stat().st_size


async def test_the_first_ask_in_a_new_folder_starts_from_another_folders_prefix(
    warm: Warm, qwen_home: Path, tmp_path: Path
) -> None:
    # Issue 24: the prompts of two folders share all but the folder's part, yet the
    # first ask in a new folder prefilled all of it again.
    entry = install(warm, qwen_home)
    age(entry)
    before = entry.stat()
    other = tmp_path / "another-project"
    other.mkdir()
    payload = await ask(other)
    assert str(payload["text"]).strip()
    remaining = entries(qwen_home)
    assert entry in remaining
    assert entry.stat().st_ino == before.st_ino  # not rewritten...
    assert entry.stat().st_mtime > before.st_mtime + 60  # ...but read and marked used
    [new] = [path for path in remaining if path != entry]  # the new folder's own prefix
    assert new.stat().st_size > 1_000_000
    assert stat.S_IMODE(new.stat().st_mode) == 0o600
