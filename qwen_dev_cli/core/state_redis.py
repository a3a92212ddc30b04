"""``RedisStore``: account state on a Redis server, shared across machines.

Each operation is one server-side Lua script (``account.lua``, a line-for-line port of
:mod:`.account`) run with EVALSHA: it reads the account's JSON, takes ``now`` from the
server's ``TIME``, applies the rule and writes the JSON back, atomically, so every
process agrees on one clock and one budget. The JSON is the layout
:meth:`~.account.AccountState.to_json` writes. Keys expire a day after their last write.

Connections are made on first use, with timeouts of a fifth of a second; only a broken
pooled connection is retried (once, at once). A server that is down, slow, full
(``maxmemory``), loading or refusing the password raises :class:`~.state.StoreError`,
and ``FallbackStore`` goes on without it. No message or ``location`` carries the
password.

Why not the ``limits`` library: its Redis "sliding window" is two fixed-window counters,
the previous one weighted by how much of it still overlaps, as if its requests had been
spread evenly over it; after a burst late in that window it admits more than a server
enforcing a true sliding window accepts, and we would earn 429s. Our window keeps when
requests were admitted (grouped in short buckets, which errs toward waiting, never
toward a 429), and each request's estimated tokens are reconciled with the count the
server reports, which needs the request's own place in the window, not a counter.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from .account import (
    BUCKETS,
    HEALTH_BUCKET,
    HEALTH_WINDOW,
    MAX_COOLDOWN,
    QUEUE_POLL,
    RETRY_WINDOW,
    THROTTLE_MIN_ATTEMPTS,
    TICKET_LEASE,
    AccountPolicy,
    AccountView,
    Admitted,
    Refused,
    Settled,
    Settlement,
    Transition,
)
from .state import StoreError, redact_url

#: Seconds a connection attempt, and then any one reply, may take.
SOCKET_TIMEOUT = 0.2
#: Seconds an account's key is kept after its last write (longer during a cool-down).
KEEP = 24 * 3600.0
KEY_PREFIX = "qwen-dev:acct:"

_SCRIPT = Path(__file__).with_name("account.lua").read_text(encoding="utf-8")


class RedisStore:
    """Account state on the Redis server at ``url`` (``redis://`` or ``rediss://``,
    optionally with a password and a database number).

    Args:
        url: where the server is; nothing connects until the first operation.
        timeout: seconds to connect, and to wait for each reply.
        clock: seconds to use as ``now`` instead of the server's ``TIME``; for tests
            that step time. Every process sharing the state must use the same clock.
    """

    kind = "redis"

    def __init__(
        self,
        url: str,
        *,
        timeout: float = SOCKET_TIMEOUT,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.location = redact_url(url)
        self._url = url
        self._timeout = timeout
        self._clock = clock
        self._client: Redis | None = None
        self._script: AsyncScript | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

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
        args = [
            tokens,
            reservation,
            _flag(ticket is not None),
            ticket or "",
            _optional(draw),
            _flag(retry),
        ]
        reply = await self._run("admit", account, policy, args)
        if reply[0] == "a":
            _, reservation, epoch, trial, at, tokens, transitions = reply
            return Admitted(
                reservation,
                int(epoch),
                bool(trial),
                int(at),
                int(tokens),
                _transitions(transitions),
            )
        _, reason, wait, detail, transitions, chance = reply
        return Refused(reason, float(wait), detail, _transitions(transitions), float(chance))

    async def settle(
        self, account: str, policy: AccountPolicy, admitted: Admitted, settlement: Settlement
    ) -> Settled:
        server = settlement.server
        headers = (
            ()
            if server is None
            else (
                server.remaining_requests,
                server.remaining_tokens,
                server.reset_requests,
                server.reset_tokens,
            )
        )
        args = [
            admitted.reservation,
            admitted.epoch,
            _flag(admitted.trial),
            admitted.at,
            admitted.tokens,
            settlement.outcome,
            _optional(settlement.tokens),
            # Lua reads neither "nan" nor "inf": the rule's own bounds, applied here.
            min(settlement.cooldown, MAX_COOLDOWN) if settlement.cooldown > 0 else 0.0,
            min(settlement.quota, MAX_COOLDOWN) if settlement.quota > 0 else 0.0,
            _flag(server is not None),
            *(_optional(value) for value in headers),
        ]
        transitions, view = await self._run("settle", account, policy, args)
        return Settled(_transitions(transitions), _view(view))

    async def view(self, account: str, policy: AccountPolicy) -> AccountView:
        return _view(await self._run("view", account, policy, []))

    async def reset(self, account: str) -> tuple[Transition, ...]:
        return _transitions(await self._run("reset", account, None, []))

    async def check(self) -> str:
        """``Redis 7.0.15 at redis://host:6379/0``, or :class:`StoreError`."""
        try:
            client, _ = self._connection()
            info = await client.info("server")
        except (RedisError, OSError, ValueError) as exc:
            raise self._error(exc) from exc
        return f"Redis {info.get('redis_version', '(unknown version)')} at {self.location}"

    async def aclose(self) -> None:
        client, loop = self._client, self._loop
        self._client, self._script, self._loop = None, None, None
        # A client of an event loop that has ended cannot be closed from this one; its
        # sockets close when it is collected.
        if client is not None and loop is asyncio.get_running_loop():
            await client.aclose()

    # --- internals ------------------------------------------------------------------

    def _connection(self) -> tuple[Redis, AsyncScript]:
        # A client's connections belong to the event loop that opened them; a store
        # used from a later asyncio.run() gets a client of its own.
        loop = asyncio.get_running_loop()
        if self._client is None or self._script is None or self._loop is not loop:
            self._client = Redis.from_url(
                self._url,
                socket_timeout=self._timeout,
                socket_connect_timeout=self._timeout,
                # A pooled connection that a server restart or its idle `timeout` closed
                # fails once before redis-py notices, so a broken connection is retried
                # once, at once, on a new one. (Were it to break after the server ran the
                # script, the retry would apply it twice: a request charged twice, which
                # errs toward waiting.) Timeouts are not retried: FallbackStore decides
                # what a failure costs.
                retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
                retry_on_error=[RedisConnectionError],  # redis-py 5 retries only these
                health_check_interval=0,
            )
            self._script = self._client.register_script(_SCRIPT)
            self._loop = loop
        return self._client, self._script

    async def _run(
        self, op: str, account: str, policy: AccountPolicy | None, args: list[Any]
    ) -> Any:
        """The script's JSON reply to ``op``, decoded."""
        now = "" if self._clock is None else self._clock()
        try:
            _, script = self._connection()
            reply = await script(
                keys=[KEY_PREFIX + account],
                args=[
                    op,
                    now,
                    TICKET_LEASE,
                    QUEUE_POLL,
                    BUCKETS,
                    KEEP,
                    MAX_COOLDOWN,
                    *_policy_args(policy),
                    *args,
                ],
            )
            return json.loads(reply)
        except (RedisError, OSError, ValueError) as exc:
            raise self._error(exc) from exc

    def _error(self, exc: Exception) -> StoreError:
        message = str(exc) or type(exc).__name__
        password = _password(self._url)
        if password:
            message = message.replace(password, "***")
        return StoreError(f"Redis at {self.location}: {message}")


def _policy_args(policy: AccountPolicy | None) -> list[Any]:
    restraint = [
        "" if policy is None else _optional(policy.retry_ratio),
        0.0 if policy is None else policy.throttle_k,
        0.0 if policy is None else policy.retry_floor,
        HEALTH_WINDOW,
        HEALTH_BUCKET,
        RETRY_WINDOW,
        THROTTLE_MIN_ATTEMPTS,
    ]
    if policy is None:
        return ["", "", "", "0", "", "", "", "", *restraint]
    breaker = policy.breaker
    breaker_args: list[Any] = (
        ["0", "", "", "", ""]
        if breaker is None
        else [
            "1",
            breaker.failure_threshold,
            breaker.recovery_timeout,
            breaker.half_open_max_calls,
            breaker.trial_lease,
        ]
    )
    return [_optional(policy.rpm), _optional(policy.tpm), policy.held, *breaker_args, *restraint]


def _flag(value: bool) -> str:
    return "1" if value else "0"


def _optional(value: float | None) -> float | str:
    # redis-py refuses None; the script reads '' as "not given".
    return "" if value is None else value


def _password(url: str) -> str | None:
    try:
        password = urlsplit(url).password
    except ValueError:
        return None
    return None if password is None else unquote(password)


# The replies are JSON the script wrote, in the shapes of account.py's classes.


def _transitions(items: Any) -> tuple[Transition, ...]:
    return tuple(Transition(old, new, reason) for old, new, reason in items)


def _view(items: Any) -> AccountView:
    state, retry_in, cooldown, rpm_left, tpm_left, failures, waiting = items[:7]
    retry_budget, throttled, quota_reset_in = items[7:]
    return AccountView(
        state=state,
        retry_in=float(retry_in),
        cooldown=float(cooldown),
        rpm_left=rpm_left,
        tpm_left=tpm_left,
        failures=int(failures),
        waiting=int(waiting),
        retry_budget=None if retry_budget is None else float(retry_budget),
        throttled=int(throttled),
        quota_reset_in=float(quota_reset_in),
    )
