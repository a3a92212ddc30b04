"""The SQLite store: the contract, across real processes, and when the file fails."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from qwen_dev_cli.core.account import AccountPolicy, AccountState, Admitted, Settlement
from qwen_dev_cli.core.client import LLMClient
from qwen_dev_cli.core.state import FallbackStore, StoreError
from qwen_dev_cli.core.state_sqlite import SqliteStore

from .fakes import FakeClock
from .scripted import ScriptedProvider
from .store_contract import StoreContract, Wait, account, admitted, rid


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "home" / "state.sqlite3"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=1000.0)


@pytest.fixture
def wait(clock: FakeClock) -> Wait:
    return clock.sleep


@pytest.fixture
async def store(path: Path, clock: FakeClock) -> AsyncIterator[SqliteStore]:
    store = SqliteStore(path, clock=clock)
    yield store
    await store.aclose()


@pytest.fixture
async def peer(path: Path, clock: FakeClock) -> AsyncIterator[SqliteStore]:
    store = SqliteStore(path, clock=clock)  # its own connection, as another process has
    yield store
    await store.aclose()


class TestSqliteStore(StoreContract):
    pass


def test_file_is_private_and_in_wal_mode(path: Path) -> None:
    async def use() -> str:
        store = SqliteStore(path)
        await admitted(store, account(), AccountPolicy(rpm=5))
        return await store.check()

    assert "wal" in asyncio.run(use()).lower()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for sidecar in path.parent.glob("state.sqlite3-*"):
        assert stat.S_IMODE(sidecar.stat().st_mode) == 0o600, sidecar


async def test_stored_state_is_the_account_json(store: SqliteStore, path: Path) -> None:
    key, policy = account(), AccountPolicy(rpm=5, tpm=1000)
    permit = await admitted(store, key, policy, tokens=300)
    await store.settle(key, policy, permit, Settlement("success", tokens=120))
    (text,) = sqlite3.connect(path).execute("SELECT state FROM accounts").fetchone()
    state = AccountState.from_json(text)
    assert state.tokens == 120
    assert "key" not in json.loads(text)


def test_processes_share_one_budget_exactly(path: Path) -> None:
    """Four real processes race for a budget of 20 requests: 20 admitted in all."""
    script = textwrap.dedent(
        f"""
        import asyncio, sys, uuid
        from pathlib import Path
        from qwen_dev_cli.core.account import AccountPolicy, Admitted
        from qwen_dev_cli.core.state_sqlite import SqliteStore

        async def main():
            store = SqliteStore(Path({str(path)!r}), busy_timeout=5.0)
            policy = AccountPolicy(rpm=20, window=60.0, breaker=None)
            won = 0
            for _ in range(15):
                d = await store.admit("shared", policy, 1, uuid.uuid4().hex)
                won += isinstance(d, Admitted)
            print(won)

        asyncio.run(main())
        """
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(6)
    ]
    outs = [p.communicate(timeout=60) for p in procs]
    # Every process starts on a file none has created yet: the race to switch it to
    # WAL mode is part of what this tests.
    assert [p.returncode for p in procs] == [0] * len(procs), [err for _, err in outs]
    assert sum(int(out) for out, _ in outs) == 20


def test_a_lock_sqlite_reports_without_waiting_is_waited_for(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite answers "locked" at once, without its busy handler, in a few places
    (switching a new file to WAL as another process does): opening waits it out."""
    real = SqliteStore._prepare
    failures = iter([sqlite3.OperationalError("database is locked")] * 3)

    def flaky(self: SqliteStore, db: sqlite3.Connection) -> None:
        failure = next(failures, None)
        if failure is not None:
            raise failure
        real(self, db)

    monkeypatch.setattr(SqliteStore, "_prepare", flaky)
    assert "wal" in asyncio.run(SqliteStore(path, busy_timeout=5.0).check()).lower()
    assert next(failures, None) is None


def test_a_lock_that_outlasts_the_busy_timeout_is_a_store_error(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def locked(self: SqliteStore, db: sqlite3.Connection) -> None:
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(SqliteStore, "_prepare", locked)
    with pytest.raises(StoreError, match="locked"):
        asyncio.run(SqliteStore(path, busy_timeout=0.2).check())


def test_a_file_that_is_not_a_database_is_a_store_error(path: Path) -> None:
    path.parent.mkdir(parents=True)
    path.write_bytes(b"this is not a database, it is a text file" * 100)
    store = SqliteStore(path)
    with pytest.raises(StoreError, match="not a database"):
        asyncio.run(store.admit(account(), AccountPolicy(), 1, rid()))


async def test_a_long_held_lock_is_a_store_error_within_the_timeout(
    store: SqliteStore, path: Path
) -> None:
    await store.view(account(), AccountPolicy())
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(StoreError):
            await store.admit(account(), AccountPolicy(), 1, rid())
        assert loop.time() - started < 1.0
    finally:
        other.execute("ROLLBACK")
        other.close()


def test_a_link_at_the_store_path_is_not_followed(path: Path, tmp_path: Path) -> None:
    # Issue 22, finding 12: a dangling link there made the store create its target.
    path.parent.mkdir(parents=True)
    target = tmp_path / "elsewhere" / "created.sqlite3"
    target.parent.mkdir()
    path.symlink_to(target)
    store = SqliteStore(path)
    with pytest.raises(StoreError):
        asyncio.run(store.admit(account(), AccountPolicy(), 1, rid()))
    assert not target.exists()


def test_a_fifo_at_the_store_path_is_a_store_error_not_a_hang(path: Path) -> None:
    path.parent.mkdir(parents=True)
    os.mkfifo(path)
    store = SqliteStore(path)
    with pytest.raises(StoreError, match="not a regular file"):
        asyncio.run(store.admit(account(), AccountPolicy(), 1, rid()))


def test_an_unwritable_home_is_a_store_error(tmp_path: Path) -> None:
    # A file where the folder should be: unwritable even for root, who ignores modes.
    home = tmp_path / "home"
    home.write_text("not a folder")
    store = SqliteStore(home / "state.sqlite3")
    with pytest.raises(StoreError):
        asyncio.run(store.admit(account(), AccountPolicy(), 1, rid()))


def test_fallback_answers_and_warns_once_then_reconnects(path: Path) -> None:
    path.parent.mkdir(parents=True)
    path.write_bytes(b"garbage" * 1000)
    warnings: list[str] = []
    store = FallbackStore(SqliteStore(path), warn=warnings.append, reconnect_after=0.0)
    key, policy = account(), AccountPolicy(rpm=2)

    async def two_requests() -> None:
        for _ in range(2):
            permit = await store.admit(key, policy, 1, rid())
            assert isinstance(permit, Admitted)
            await store.settle(key, policy, permit, Settlement("success"))

    asyncio.run(two_requests())
    degraded = [store.degraded]
    assert len(warnings) == 1
    assert "per process" in warnings[0]
    assert str(path) in warnings[0]
    path.unlink()  # the user removes the broken file: the store works again
    permit = asyncio.run(store.admit(key, policy, 1, rid()))
    assert isinstance(permit, Admitted)
    degraded.append(store.degraded)
    assert degraded == [True, False]  # per process while broken, shared again after
    assert "back" in warnings[-1]
    asyncio.run(store.aclose())


def test_sigkill_mid_transaction_leaves_a_usable_store(path: Path) -> None:
    """A process killed while it holds the write lock: the next one goes on."""
    script = textwrap.dedent(
        f"""
        import sqlite3, sys, time
        from pathlib import Path
        import asyncio
        from qwen_dev_cli.core.account import AccountPolicy
        from qwen_dev_cli.core.state_sqlite import SqliteStore
        asyncio.run(SqliteStore(Path({str(path)!r})).view("x", AccountPolicy()))
        db = sqlite3.connect({str(path)!r}, isolation_level=None)
        db.execute("BEGIN IMMEDIATE")
        db.execute("UPDATE accounts SET state = 'half-written'")
        print("locked", flush=True)
        time.sleep(60)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "locked"
    proc.kill()
    proc.wait()

    async def use() -> None:
        store = SqliteStore(path)
        await admitted(store, account(), AccountPolicy(rpm=1))
        await store.aclose()

    asyncio.run(use())


def test_a_client_given_a_broken_store_still_answers(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.write_text("a file where the folder should be")
    client = LLMClient([ScriptedProvider("a")], state=SqliteStore(home / "state.sqlite3"))

    async def ask() -> str:
        return (await client.chat([{"role": "user", "content": "hi"}])).text

    assert asyncio.run(ask()) == "ok"
    assert client.status().store_shared is False
