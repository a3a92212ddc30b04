"""``SqliteStore``: account state in one SQLite file, shared by every process on a machine.

Each operation is one short ``BEGIN IMMEDIATE`` transaction (load the account's row,
apply :mod:`.account`'s rule, write it back), so processes take turns per operation,
never per request. The database is in WAL mode, so readers (a status bar) never wait
for writers; the file is created 0600. The clock is the machine's wall clock, which
every process on it shares.

The calls are synchronous on purpose: an operation takes tens of microseconds, less
than handing it to a thread would. A lock held longer than ``busy_timeout`` (by a
stuck process), a file that is not a database, a read-only folder or a full disk
raise :class:`~.state.StoreError`, and the client goes on without the store.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from .account import (
    AccountPolicy,
    AccountState,
    AccountView,
    Admitted,
    Refused,
    Settled,
    Settlement,
    Transition,
)
from .state import StoreError

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    account TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    updated REAL NOT NULL
)
"""
#: Rows untouched for this long are deleted now and then: their windows, cool-downs
#: and breakers have long run out.
_STALE_AFTER = 7 * 24 * 3600.0


class SqliteStore:
    """Account state in the SQLite file ``path`` (created on first use).

    Args:
        path: the database file; its folder is created if missing.
        busy_timeout: seconds to wait for another process's transaction.
        clock: wall-clock seconds, the same in every process (injectable for tests).
    """

    kind = "local"

    def __init__(
        self,
        path: Path,
        *,
        busy_timeout: float = 0.15,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self.location = str(self.path)
        self._busy_timeout = busy_timeout
        self._clock = clock
        self._db: sqlite3.Connection | None = None

    # --- the protocol ---------------------------------------------------------------

    async def admit(
        self,
        account: str,
        policy: AccountPolicy,
        tokens: int,
        reservation: str,
        ticket: str | None = None,
        *,
        draw: float | None = None,
        retry: bool = False,
    ) -> Admitted | Refused:
        return self._update(
            account,
            lambda state, now: state.admit(
                now, policy, tokens, reservation, ticket, draw=draw, retry=retry
            ),
        )

    async def settle(
        self, account: str, policy: AccountPolicy, admitted: Admitted, settlement: Settlement
    ) -> Settled:
        return self._update(
            account, lambda state, now: state.settle(now, policy, admitted, settlement)
        )

    async def view(self, account: str, policy: AccountPolicy) -> AccountView:
        try:
            row = (
                self._connect()
                .execute("SELECT state FROM accounts WHERE account = ?", (account,))
                .fetchone()
            )
            return _load(row).view(self._clock(), policy)
        except (sqlite3.Error, ValueError) as exc:
            raise self._error(exc) from exc

    async def reset(self, account: str) -> tuple[Transition, ...]:
        return self._update(account, lambda state, now: state.reset(now))

    async def check(self) -> str:
        try:
            db = self._connect()
            db.execute("SELECT count(*) FROM accounts").fetchone()
            mode = db.execute("PRAGMA journal_mode").fetchone()[0]
        except sqlite3.Error as exc:
            raise self._error(exc) from exc
        return f"SQLite {sqlite3.sqlite_version} ({mode}) at {self.path}"

    async def aclose(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    # --- internals ------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        if self._db is not None:
            return self._db
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Created 0600 before SQLite opens it: its -wal and -shm files copy the mode.
            # Never through a link (a dangling one would create its target anywhere)
            # and never a FIFO or device (opening it would hang or write to it).
            flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
            fd = os.open(self.path, flags, 0o600)
            try:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    raise OSError(errno.EINVAL, "not a regular file")
            finally:
                os.close(fd)
            db = sqlite3.connect(
                self.path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False
            )
        except (OSError, sqlite3.Error) as exc:
            raise self._error(exc) from exc
        deadline = time.monotonic() + self._busy_timeout
        pause = 0.005
        while True:
            try:
                self._prepare(db)
                break
            except sqlite3.OperationalError as exc:
                # Switching a new file to WAL, or opening it while another process
                # recovers its WAL index, can fail "locked" at once: SQLite does not
                # call its busy handler there. Processes that start together (two
                # terminals, a batch) meet exactly this, so wait as the handler would.
                if not _is_busy(exc) or time.monotonic() + pause > deadline:
                    db.close()
                    raise self._error(exc) from exc
                time.sleep(pause)
                pause = min(pause * 2, 0.1)
            except sqlite3.Error as exc:
                db.close()
                raise self._error(exc) from exc
        self._db = db
        return db

    def _prepare(self, db: sqlite3.Connection) -> None:
        # WAL mode is stored in the file: only its first user has to switch it, and
        # switching needs a lock that reading the mode does not.
        if db.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            db.execute("PRAGMA journal_mode=WAL")
        # Losing the last update in a power cut costs a few requests of budget; an
        # fsync per request would cost far more.
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute(_SCHEMA)
        db.execute("DELETE FROM accounts WHERE updated < ?", (self._clock() - _STALE_AFTER,))

    def _update(self, account: str, apply: Callable[[AccountState, float], T]) -> T:
        try:
            db = self._connect()
            db.execute("BEGIN IMMEDIATE")
            try:
                row = db.execute(
                    "SELECT state FROM accounts WHERE account = ?", (account,)
                ).fetchone()
                state = _load(row)
                now = self._clock()
                result = apply(state, now)
                text = state.to_json()
                # An UPDATE costs a third of INSERT OR REPLACE (a delete and an insert).
                if row is None:
                    db.execute(
                        "INSERT INTO accounts (account, state, updated) VALUES (?, ?, ?)",
                        (account, text, now),
                    )
                else:
                    db.execute(
                        "UPDATE accounts SET state = ?, updated = ? WHERE account = ?",
                        (text, now, account),
                    )
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        except (sqlite3.Error, ValueError) as exc:
            raise self._error(exc) from exc
        return result

    def _error(self, exc: Exception) -> StoreError:
        # A broken connection is dropped so the next attempt (after the fallback's
        # pause) opens the file afresh: it may have been replaced or repaired.
        if self._db is not None and not isinstance(exc, ValueError):
            self._db.close()
            self._db = None
        return StoreError(f"{self.path}: {exc}")


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def _load(row: tuple[str] | None) -> AccountState:
    try:
        return AccountState.from_json(None if row is None else row[0])
    except ValueError:
        # A row this version cannot read (written by another version, or damaged):
        # start the account afresh rather than fail every request.
        return AccountState()
