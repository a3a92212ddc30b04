"""RedisStore against a real redis-server (started by the tests, never a system one)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import pytest
import redis

from qwen_dev_cli.core.account import (
    AccountPolicy,
    AccountState,
    Admitted,
    Refused,
    Settlement,
)
from qwen_dev_cli.core.state import FallbackStore, StoreError
from qwen_dev_cli.core.state_redis import KEY_PREFIX, RedisStore
from tests.core.store_contract import StoreContract, Wait, account, admitted, refused
from tests.redis_server import RedisServer, new_server, redis_server, redis_url

__all__ = ["redis_server", "redis_url"]  # fixtures, imported for pytest

pytestmark = pytest.mark.slow

PASSWORD = "pw-Zq8-s3cret"


@pytest.fixture
def wait() -> Wait:
    """Real time: the store reads the server's clock."""
    return asyncio.sleep


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[RedisStore]:
    store = RedisStore(redis_url)
    yield store
    await store.aclose()


@pytest.fixture
async def peer(redis_url: str) -> AsyncIterator[RedisStore]:
    """A second store with its own connections: another process, as Redis sees it."""
    peer = RedisStore(redis_url)
    yield peer
    await peer.aclose()


@pytest.fixture
def own_server() -> Iterator[RedisServer]:
    """A server this test may stop, restart or starve."""
    server = new_server()
    yield server
    server.close()


class TestRedisStore(StoreContract):
    pass


async def test_the_stored_json_is_account_states_layout(store: RedisStore, redis_url: str) -> None:
    key, policy = account(), AccountPolicy(rpm=5, tpm=1000)
    permit = await admitted(store, key, policy, tokens=7)
    await store.settle(key, policy, permit, Settlement("failure", tokens=9, cooldown=0.5))
    with redis.Redis.from_url(redis_url) as admin:
        raw = admin.get(KEY_PREFIX + key)
        ttl = admin.pttl(KEY_PREFIX + key)
    assert raw is not None
    state = AccountState.from_json(raw)
    assert state.entries == [[permit.at, permit.at, 1, 9]]
    assert (state.requests, state.tokens) == (1, 9)
    assert state.breaker.failures == 1
    # From the settlement on (the bucket's stamp is rounded up to the millisecond).
    assert 0.49 <= state.cooldown_until - permit.at / 1000 < 0.7
    # The server's clock keeps its microseconds through the JSON.
    assert state.cooldown_until != int(state.cooldown_until)
    assert raw.startswith(b'{"e":[[')
    assert b'"sr":null' in raw
    assert b'"w":{}' in raw
    assert 23 * 3600 * 1000 < ttl <= 24 * 3600 * 1000


async def test_an_unreadable_state_starts_the_account_afresh(
    store: RedisStore, redis_url: str
) -> None:
    key, policy = account(), AccountPolicy(rpm=1)
    with redis.Redis.from_url(redis_url) as admin:
        admin.set(KEY_PREFIX + key, b'{"e": "not a list"')
    assert (await store.view(key, policy)).rpm_left == 1
    await admitted(store, key, policy)
    assert (await store.view(key, policy)).rpm_left == 0


# --- one budget across processes ----------------------------------------------------


async def test_two_stores_share_one_budget_exactly(redis_url: str) -> None:
    one, two = RedisStore(redis_url), RedisStore(redis_url)
    key, policy = account(), AccountPolicy(rpm=5, window=2.0, breaker=None)
    try:
        started = time.monotonic()
        decisions = await asyncio.gather(
            *(s.admit(key, policy, 1, f"r{i}") for i, s in enumerate([one, two] * 6))
        )
        assert sum(isinstance(d, Admitted) for d in decisions) == 5
        refusals = [d for d in decisions if isinstance(d, Refused)]
        assert len(refusals) == 7
        assert {r.reason for r in refusals} == {"budget"}
        # Room again when the first of the five leaves the window.
        late = await refused(two, key, policy)
        # Stamps are whole milliseconds rounded up: a wait may pass the window by < 1 ms.
        assert 2.0 - (time.monotonic() - started) - 0.05 < late.wait <= 2.001
        assert (await one.view(key, policy)).rpm_left == 0
    finally:
        await one.aclose()
        await two.aclose()


def test_a_store_survives_a_new_event_loop(redis_url: str) -> None:
    store = RedisStore(redis_url)
    key, policy = account(), AccountPolicy(rpm=2)
    assert isinstance(asyncio.run(store.admit(key, policy, 1, "a")), Admitted)
    assert isinstance(asyncio.run(store.admit(key, policy, 1, "b")), Admitted)
    assert asyncio.run(store.view(key, policy)).rpm_left == 0
    asyncio.run(store.aclose())


# --- failures are StoreErrors, quickly ----------------------------------------------


async def test_a_stopped_server_is_a_quick_store_error(own_server: RedisServer) -> None:
    store = RedisStore(own_server.url)
    key, policy = account(), AccountPolicy(rpm=5)
    await admitted(store, key, policy)
    own_server.stop()
    for _ in range(2):  # the pooled connection, then a new one
        started = time.monotonic()
        with pytest.raises(StoreError, match=r"Redis at redis://127\.0\.0\.1"):
            await store.admit(key, policy, 1, "r")
        assert time.monotonic() - started < 3  # not redis-py's default wait of minutes
    with pytest.raises(StoreError):
        await store.check()
    await store.aclose()


async def test_a_hung_server_is_a_store_error_after_the_timeout(
    own_server: RedisServer,
) -> None:
    store = RedisStore(own_server.url)
    key, policy = account(), AccountPolicy(rpm=5)
    await admitted(store, key, policy)
    own_server.pause()
    try:
        started = time.monotonic()
        with pytest.raises(StoreError):
            await store.admit(key, policy, 1, "r")
        # The 0.2 s reply timeout, not a hang (the paused server never answers).
        assert 0.15 < time.monotonic() - started < 3
    finally:
        own_server.resume()
        await store.aclose()


async def test_a_full_server_is_a_store_error_not_a_hang(
    store: RedisStore, redis_server: RedisServer
) -> None:
    key, policy = account(), AccountPolicy(rpm=5)
    await admitted(store, key, policy)
    redis_server.config_set("maxmemory-policy", "noeviction")
    redis_server.config_set("maxmemory", "1")
    started = time.monotonic()
    with pytest.raises(StoreError, match="maxmemory"):
        await store.admit(key, policy, 1, "r")
    assert time.monotonic() - started < 3


async def test_the_fallback_answers_with_one_warning_while_redis_is_down(
    own_server: RedisServer,
) -> None:
    warnings: list[str] = []
    store = FallbackStore(RedisStore(own_server.url), warn=warnings.append, reconnect_after=60)
    key, policy = account(), AccountPolicy(rpm=50)
    await admitted(store, key, policy)
    own_server.stop()
    started = time.monotonic()
    for _ in range(3):
        await admitted(store, key, policy)
    assert time.monotonic() - started < 3
    assert store.degraded
    assert len(warnings) == 1
    assert "unavailable" in warnings[0]
    await store.aclose()


async def test_the_fallback_reconnects_after_a_restart(own_server: RedisServer) -> None:
    warnings: list[str] = []
    store = FallbackStore(RedisStore(own_server.url), warn=warnings.append, reconnect_after=0.3)
    key, policy = account(), AccountPolicy(rpm=50)
    admin = own_server.client()
    try:
        await admitted(store, key, policy)
        own_server.stop()
        await admitted(store, key, policy)  # per process, with a warning
        own_server.start()  # empty, and without the script
        await admitted(store, key, policy)  # still per process until reconnect_after
        assert admin.exists(KEY_PREFIX + key) == 0
        await asyncio.sleep(0.35)
        await admitted(store, key, policy)
        assert not store.degraded
        assert admin.exists(KEY_PREFIX + key) == 1
        assert len(warnings) == 2
        assert "back" in warnings[1]
    finally:
        admin.close()
        await store.aclose()


async def test_a_restart_between_operations_costs_nothing(own_server: RedisServer) -> None:
    store = RedisStore(own_server.url)
    key, policy = account(), AccountPolicy(rpm=5)
    await admitted(store, key, policy)
    own_server.restart()  # the pooled connection is dead and the script unknown
    await admitted(store, key, policy)
    assert (await store.view(key, policy)).rpm_left == 4  # the restart lost the first
    await store.aclose()


# --- the password stays secret -------------------------------------------------------


@pytest.fixture
def password_server() -> Iterator[RedisServer]:
    server = new_server(password=PASSWORD)
    yield server
    server.close()


async def test_the_password_never_shows(password_server: RedisServer) -> None:
    url = password_server.url
    assert PASSWORD in url
    warnings: list[str] = []
    primary = RedisStore(url)
    store = FallbackStore(primary, warn=warnings.append)
    assert PASSWORD not in primary.location
    assert "***" in primary.location
    assert PASSWORD not in store.location
    answer = await store.check()
    assert answer.startswith("Redis ")
    assert PASSWORD not in answer
    key, policy = account(), AccountPolicy(rpm=5)
    await admitted(store, key, policy)
    password_server.stop()
    with pytest.raises(StoreError) as failure:
        await primary.admit(key, policy, 1, "r")
    assert PASSWORD not in str(failure.value)
    with pytest.raises(StoreError) as failure:
        await primary.check()
    assert PASSWORD not in str(failure.value)
    await admitted(store, key, policy)
    assert warnings
    assert all(PASSWORD not in warning for warning in warnings)
    await store.aclose()


async def test_a_wrong_password_is_a_store_error(password_server: RedisServer) -> None:
    wrong = f"redis://:not-{PASSWORD}@127.0.0.1:{password_server.port}/0"
    store = RedisStore(wrong)
    with pytest.raises(StoreError) as failure:
        await store.view(account(), AccountPolicy())
    assert PASSWORD not in str(failure.value)
    with pytest.raises(StoreError):
        await store.check()
    missing = RedisStore(f"redis://127.0.0.1:{password_server.port}/0")
    with pytest.raises(StoreError):
        await missing.admit(account(), AccountPolicy(), 1, "r")
    await store.aclose()
    await missing.aclose()


async def test_check_names_version_and_place(store: RedisStore, redis_server: RedisServer) -> None:
    version = redis_server.client().info("server")["redis_version"]
    assert await store.check() == f"Redis {version} at {redis_server.url}"
