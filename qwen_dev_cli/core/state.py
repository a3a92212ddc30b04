"""Where budgets, breakers and cool-downs live: the state store behind the client.

A provider's limits belong to the account (the API key), not to a process, so the
client keeps that state in a :class:`ProviderStateStore` injected like httpx's
``transport=``: ``LLMClient(state=...)``. Three stores keep it:

- :class:`MemoryStore`: this process only (what a client built in code gets);
- ``SqliteStore`` (:mod:`.state_sqlite`): a file shared by every process of the user
  on one machine, the CLI's default (``[state] store = "local"``);
- ``RedisStore`` (:mod:`.state_redis`): one Redis server shared across machines.

Every store applies the rules of :mod:`.account`; the shared ones do so atomically per
operation, in the store's own clock. A store that fails raises :class:`StoreError`;
:class:`FallbackStore` turns that into per-process state, one warning, and a
reconnection later, so a store never costs an answer.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Protocol, TypeVar
from urllib.parse import urlsplit

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

log = logging.getLogger(__name__)

T = TypeVar("T")

#: The ``[state] store`` values besides a ``redis://`` or ``rediss://`` URL.
STORE_KINDS = ("local", "memory")
REDIS_SCHEMES = ("redis", "rediss")
#: Seconds one store operation may take before the client goes on without the store.
OPERATION_TIMEOUT = 0.2
#: Seconds between attempts to reach a store that failed.
RECONNECT_AFTER = 15.0
#: The longest wait a store may sensibly ask for: a server's reset or Retry-After is
#: capped at a year (:mod:`.headers`). Anything longer, negative or not a number is a
#: broken or hostile store, not a wait.
MAX_SANE_WAIT = 366 * 86_400.0


class StoreError(Exception):
    """The store could not do what was asked: unreachable, locked, corrupt, full.
    ``FallbackStore`` catches it; nothing above the client sees it."""


class StoreConfigError(ValueError):
    """A ``[state] store`` value that names no store this client knows."""


class ProviderStateStore(Protocol):
    """The shared state of provider accounts. ``account`` is a key from
    :func:`account_key`; every method applies :mod:`.account`'s rules atomically.

    ``kind`` is ``memory``, ``local`` or ``redis``; ``location`` says where, with any
    password redacted."""

    kind: str
    location: str

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
    ) -> Admitted | Refused: ...

    async def settle(
        self, account: str, policy: AccountPolicy, admitted: Admitted, settlement: Settlement
    ) -> Settled: ...

    async def view(self, account: str, policy: AccountPolicy) -> AccountView: ...

    async def reset(self, account: str) -> tuple[Transition, ...]: ...

    async def check(self) -> str:
        """Reach the store and say what it is (``Redis 7.0.15``); :class:`StoreError`
        when it cannot be used. For ``qwen-dev doctor``."""
        ...

    async def aclose(self) -> None: ...


def account_key(base_url: str | None, model: str, api_key: str | None, name: str) -> str:
    """The store key of one account: endpoint, model and a hash of the key, never the
    key itself. Limits are per model on most providers, hence the model. A provider
    with no endpoint (in-process) is keyed by its name."""
    if not base_url:
        return f"name:{name}:{model}"
    digest = hashlib.sha256((api_key or "").encode()).hexdigest()[:16]
    return f"{base_url.rstrip('/')}|{model}|{digest}"


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***``, malformed or not.

    The password is whatever sits between the first ``:`` after ``://`` and the last
    ``@``: a generated password holds ``/``, ``?`` or ``#`` as often as not, and a URL
    parser would end the authority there and show the rest as the path."""
    scheme, separator, rest = url.partition("://")
    at = rest.rfind("@")
    if not separator or at < 0:
        return url
    userinfo = rest[:at]
    user, colon, _ = userinfo.partition(":")
    if not colon:
        return url  # a user name alone (the URL standard's reading)
    if any(mark in user for mark in "/?#"):
        user = "***"
    return f"{scheme}://{user}:***@{rest[at + 1 :]}"


def validate_store_spec(spec: str) -> str:
    """``spec`` if it names a store, else :class:`StoreConfigError` saying what does."""
    if spec in STORE_KINDS:
        return spec
    scheme = spec.split("://", 1)[0].lower() if "://" in spec else ""
    if scheme not in REDIS_SCHEMES:
        raise StoreConfigError(
            f"unknown state store {redact_url(spec)!r}: expected 'local', 'memory', "
            "or a redis://host:port/db or rediss:// URL"
        )
    try:
        parts = urlsplit(spec)
        parts.port  # noqa: B018  # raises ValueError for a port that is not a number
        database = parts.path.strip("/")
    except ValueError as exc:
        raise StoreConfigError(f"malformed Redis URL {redact_url(spec)!r}: {exc}") from exc
    if not parts.hostname:
        raise StoreConfigError(f"malformed Redis URL {redact_url(spec)!r}: no host")
    if database and not database.isdigit():
        raise StoreConfigError(
            f"malformed Redis URL {redact_url(spec)!r}: the database must be a number"
        )
    return spec


class MemoryStore:
    """This process's state only: today's behaviour, for code and tests.

    Args:
        clock: seconds; injectable so tests control time.
    """

    kind = "memory"
    location = "this process"

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._accounts: dict[str, AccountState] = {}

    def _state(self, account: str) -> AccountState:
        state = self._accounts.get(account)
        if state is None:
            state = self._accounts[account] = AccountState()
        return state

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
        return self._state(account).admit(
            self._clock(), policy, tokens, reservation, ticket, draw=draw, retry=retry
        )

    async def settle(
        self, account: str, policy: AccountPolicy, admitted: Admitted, settlement: Settlement
    ) -> Settled:
        return self._state(account).settle(self._clock(), policy, admitted, settlement)

    async def view(self, account: str, policy: AccountPolicy) -> AccountView:
        return self._state(account).view(self._clock(), policy)

    async def reset(self, account: str) -> tuple[Transition, ...]:
        return self._state(account).reset(self._clock())

    async def check(self) -> str:
        return "per-process state"

    async def aclose(self) -> None:
        return None


class FallbackStore:
    """A shared store that never costs an answer.

    Each operation gets ``timeout`` seconds; when the store fails or is too slow, the
    client goes on with ``fallback`` (per-process state), ``warn`` is called once, and
    the store is tried again after ``reconnect_after`` seconds. A reservation is settled
    in the store that admitted it.

    Args:
        primary: the shared store. fallback: per-process state (a :class:`MemoryStore`).
        warn: tells the user, once per outage (stderr in the CLI).
        clock: monotonic seconds, for the reconnection timer.
    """

    def __init__(
        self,
        primary: ProviderStateStore,
        *,
        fallback: ProviderStateStore | None = None,
        warn: Callable[[str], None] | None = None,
        timeout: float = OPERATION_TIMEOUT,
        reconnect_after: float = RECONNECT_AFTER,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.primary = primary
        self.fallback = fallback or MemoryStore()
        self.kind = primary.kind
        self.location = primary.location
        self._warn = warn or (lambda message: log.warning("%s", message))
        self._timeout = timeout
        self._reconnect_after = reconnect_after
        self._clock = clock
        self._down_since: float | None = None
        self._retry_at = 0.0
        self._warned = False
        self._local_reservations: set[str] = set()
        self.failures = 0

    @property
    def degraded(self) -> bool:
        """Whether the client is on per-process state because the store failed."""
        return self._down_since is not None

    async def _call(
        self,
        primary: Callable[[], Awaitable[T]],
        fallback: Callable[[], Awaitable[T]],
    ) -> tuple[T, bool]:
        """``primary()`` if the store is up and answers in time, else ``fallback()``;
        and whether the primary answered."""
        if self._down_since is not None and self._clock() < self._retry_at:
            return await fallback(), False
        try:
            async with asyncio.timeout(self._timeout):
                result = await primary()
        except (StoreError, TimeoutError, OSError) as exc:
            self._failed(exc)
            return await fallback(), False
        except Exception as exc:  # a bug in a store must not cost an answer either
            # Its traceback goes to the log (debug), not over the user's terminal: the
            # user hears one line, the fallback's warning, naming the error.
            log.debug("state store %s raised unexpectedly", self.location, exc_info=True)
            self._failed(StoreError(f"{type(exc).__name__}: {exc}".rstrip(": ")))
            return await fallback(), False
        if self._down_since is not None:
            log.info("state store %s is back", self.location)
            self._warn(f"state store {self.location} is back: budgets are shared again")
            self._down_since = None
            self._warned = False
        return result, True

    def _failed(self, exc: BaseException) -> None:
        self.failures += 1
        now = self._clock()
        if self._down_since is None:
            self._down_since = now
        self._retry_at = now + self._reconnect_after
        message = str(exc) or type(exc).__name__
        # The user hears of it once through ``warn``; each failure goes to the log only.
        log.info("state store %s failed: %s", self.location, message)
        if not self._warned:
            self._warned = True
            self._warn(
                f"state store {self.location} unavailable ({message}); rate limits and "
                f"breakers are per process until it returns (retrying every "
                f"{self._reconnect_after:g}s)"
            )

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
        async def primary() -> Admitted | Refused:
            return _sane(
                await self.primary.admit(
                    account, policy, tokens, reservation, ticket, draw=draw, retry=retry
                )
            )

        result, shared = await self._call(
            primary,
            lambda: self.fallback.admit(
                account, policy, tokens, reservation, ticket, draw=draw, retry=retry
            ),
        )
        if not shared and isinstance(result, Admitted):
            self._local_reservations.add(reservation)
        return result

    async def settle(
        self, account: str, policy: AccountPolicy, admitted: Admitted, settlement: Settlement
    ) -> Settled:
        if admitted.reservation in self._local_reservations:
            self._local_reservations.discard(admitted.reservation)
            return await self.fallback.settle(account, policy, admitted, settlement)
        # Settled only where it was admitted: a reservation the store granted must
        # not be applied to per-process state (epochs and trial slots differ there).
        settled, _ = await self._call(
            lambda: self.primary.settle(account, policy, admitted, settlement),
            lambda: _unsettled(self.fallback, account, policy),
        )
        return settled

    async def view(self, account: str, policy: AccountPolicy) -> AccountView:
        view, _ = await self._call(
            lambda: self.primary.view(account, policy),
            lambda: self.fallback.view(account, policy),
        )
        return view

    async def reset(self, account: str) -> tuple[Transition, ...]:
        local = await self.fallback.reset(account)
        shared, _ = await self._call(lambda: self.primary.reset(account), _no_transitions)
        return shared or local

    async def check(self) -> str:
        """The primary store's answer, without falling back: doctor wants the truth."""
        async with asyncio.timeout(max(self._timeout, 2.0)):
            return await self.primary.check()

    async def aclose(self) -> None:
        try:
            await self.primary.aclose()
        finally:
            await self.fallback.aclose()


def _sane(decision: Admitted | Refused) -> Admitted | Refused:
    """``decision``, unless it asks for a wait that is not one (NaN, infinite, negative,
    longer than :data:`MAX_SANE_WAIT`): that is the store failing (a
    :class:`StoreError`, so the client falls back and warns once), never a busy loop
    or a wait without end."""
    if isinstance(decision, Refused) and not 0 <= decision.wait <= MAX_SANE_WAIT:
        raise StoreError(
            f"it asked for a {decision.reason} wait of {decision.wait:g} seconds, which is no wait"
        )
    return decision


async def _no_transitions() -> tuple[Transition, ...]:
    return ()


async def _unsettled(store: ProviderStateStore, account: str, policy: AccountPolicy) -> Settled:
    return Settled((), await store.view(account, policy))


def open_store(
    spec: str,
    *,
    home: Path,
    warn: Callable[[str], None] | None = None,
) -> ProviderStateStore:
    """The store ``[state] store`` names (see :func:`validate_store_spec`), wrapped in
    a :class:`FallbackStore` unless it is ``memory``. ``home`` is ``QWEN_DEV_HOME``:
    the SQLite file lives there. Opening is lazy: nothing connects until first use."""
    spec = validate_store_spec(spec)
    if spec == "memory":
        return MemoryStore()
    primary: ProviderStateStore
    if spec == "local":
        from .state_sqlite import SqliteStore

        primary = SqliteStore(home / "state.sqlite3")
    else:
        from .state_redis import RedisStore

        primary = RedisStore(spec)
    return FallbackStore(primary, warn=warn)
