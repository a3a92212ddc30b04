"""Every wait for budget is bounded (issue 21, "found by attack"): ``max_wait`` bounds a
request's wait in all; stamps from the future and a clock stepped back close the budget
for one window at most; a store asking for a wait that is no wait is a store fault.
Through the real stores: SQLite across processes, a real Redis, and a hostile one."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis

from qwen_dev_cli import exit_codes
from qwen_dev_cli.core import LLMClient
from qwen_dev_cli.core.account import (
    TICKET_LEASE,
    AccountPolicy,
    Admitted,
    BreakerPolicy,
    Refused,
    Settlement,
)
from qwen_dev_cli.core.errors import BudgetWaitExceeded
from qwen_dev_cli.core.events import ClientEvent, RateLimitWait
from qwen_dev_cli.core.limiter import RateLimits
from qwen_dev_cli.core.state import FallbackStore, MemoryStore
from qwen_dev_cli.core.state_redis import KEY_PREFIX, RedisStore
from qwen_dev_cli.core.state_sqlite import SqliteStore
from tests.hostile_redis import HostileRedis
from tests.redis_server import redis_server, redis_url, requires_redis_server

from .fakes import FakeClock
from .scripted import ScriptedProvider
from .store_contract import account, rid

__all__ = ["redis_server", "redis_url"]  # fixtures, imported for pytest

HI = [{"role": "user", "content": "hi"}]
WINDOW = 60.0
POLICY = AccountPolicy(rpm=2, window=WINDOW, breaker=None)


def one_a_minute(
    clock: FakeClock, *, max_wait: float, state: MemoryStore | None = None
) -> LLMClient:
    return LLMClient(
        [ScriptedProvider("alpha")],
        rate_limits=RateLimits(requests_per_minute=1),
        state=state or MemoryStore(clock=clock),
        max_wait=max_wait,
        clock=clock,
        sleep=clock.sleep,
    )


# --- max_wait ------------------------------------------------------------------------


async def test_a_budget_freeing_later_than_max_wait_fails_at_once_naming_the_provider() -> None:
    clock = FakeClock(1000.0)
    client = one_a_minute(clock, max_wait=10.0)
    await client.chat(HI)
    with pytest.raises(BudgetWaitExceeded) as caught:
        await client.chat(HI)
    error = caught.value
    assert "alpha" in str(error)
    assert "max_wait" in str(error)
    assert "10s" in str(error)
    assert exit_codes.for_error(error) == exit_codes.PROVIDER_FAILURE
    assert clock.sleeps == []  # not slept: the budget said it frees too late
    assert error.to_dict()["type"] == "budget_wait_exceeded"


async def test_a_budget_freeing_within_max_wait_is_waited_for_and_counted_down() -> None:
    clock = FakeClock(1000.0)
    client = one_a_minute(clock, max_wait=120.0)
    seen: list[ClientEvent] = []
    client.subscribe(seen.append)
    await client.chat(HI)
    result = await client.chat(HI)
    assert result.text == "ok"
    waits = [e for e in seen if isinstance(e, RateLimitWait)]
    assert len(waits) == 1
    assert waits[0].max_wait == 120.0


class AlwaysBudget(MemoryStore):
    """A store refusing "budget" with a short wait for ever (a peer that always queues
    ahead, a broken server)."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock=clock)
        self.asked = 0

    async def admit(self, *args: object, **kwargs: object) -> Admitted | Refused:
        self.asked += 1
        return Refused("budget", 0.5, "budget spent for 0.5s")


async def test_a_store_answering_budget_for_ever_is_waited_for_max_wait_then_fails() -> None:
    clock = FakeClock(1000.0)
    store = AlwaysBudget(clock)
    client = one_a_minute(clock, max_wait=30.0, state=store)
    with pytest.raises(BudgetWaitExceeded) as caught:
        await client.chat(HI)
    assert "gave up waiting for alpha's budget after 30s" in str(caught.value)
    assert sum(clock.sleeps) == pytest.approx(30.0)
    assert store.asked == 62  # once in the round, then every half second: no busy loop
    assert client.get_metrics()["rate_limited"] == 1  # one request, limited once


async def test_a_request_told_its_budget_frees_too_late_is_rate_limited_once() -> None:
    clock = FakeClock(1000.0)
    client = one_a_minute(clock, max_wait=10.0)
    await client.chat(HI)
    with pytest.raises(BudgetWaitExceeded):
        await client.chat(HI)
    assert client.get_metrics()["rate_limited"] == 1


@pytest.mark.parametrize("wait", ["NaN", "Infinity", "-1", "1e12"])
async def test_a_redis_asking_for_a_wait_that_is_no_wait_is_a_store_fault(wait: str) -> None:
    """The attack: a Redis returning NaN as the wait made a busy loop (6.8 CPU-seconds
    in 15 s). Now the store is at fault: the client falls back, warns once, answers."""
    warnings: list[str] = []
    async with HostileRedis(wait) as hostile:
        store = FallbackStore(RedisStore(hostile.url), warn=warnings.append)
        client = LLMClient([ScriptedProvider("alpha")], state=store, max_wait=5.0)
        for _ in range(3):
            assert (await client.chat(HI)).text == "ok"
        await store.aclose()
    assert hostile.admits == 1  # then per-process until the store is tried again
    assert len(warnings) == 1
    assert "no wait" in warnings[0]
    assert f"wait of {float(wait):g} seconds" in warnings[0]


async def test_a_redis_answering_budget_for_ever_costs_max_wait_not_a_hang() -> None:
    """The attack: a Redis answering "budget" for ever kept ``ask`` waiting."""
    async with HostileRedis("0.5") as hostile:
        store = RedisStore(hostile.url)
        client = LLMClient([ScriptedProvider("alpha")], state=store, max_wait=1.0)
        with pytest.raises(BudgetWaitExceeded) as caught:
            await client.chat(HI)
        await store.aclose()
    assert "alpha" in str(caught.value)
    assert 2 <= hostile.admits < 20  # about one ask per half second


# --- stamps from the future, clocks stepped back ------------------------------------


async def fill(store: SqliteStore | RedisStore, key: str, count: int = 2) -> None:
    for _ in range(count):
        decision = await store.admit(key, POLICY, 1, rid())
        assert isinstance(decision, Admitted), decision


async def test_a_clock_stepped_back_an_hour_closes_the_budget_for_one_window_at_most(
    tmp_path: Path,
) -> None:
    clock = FakeClock(1_700_000_000.0)
    store = SqliteStore(tmp_path / "state.sqlite3", clock=clock)
    key = account()
    await fill(store, key)
    clock.now -= 3600  # NTP, a VM restored from a snapshot, a user fixing the date
    refusal = await store.admit(key, POLICY, 1, rid())
    assert isinstance(refusal, Refused)
    assert refusal.reason == "budget"
    assert refusal.wait <= WINDOW  # it was 3,660 s
    clock.now += WINDOW + 0.01
    assert isinstance(await store.admit(key, POLICY, 1, rid()), Admitted)
    await store.aclose()


def test_a_process_whose_clock_runs_an_hour_ahead_closes_the_budget_one_window_at_most(
    tmp_path: Path,
) -> None:
    """Another process (its clock an hour ahead) spends the budget in the shared file:
    this one waits at most one window, not the hour."""
    path = tmp_path / "state.sqlite3"
    key = account()
    script = textwrap.dedent(
        f"""
        import asyncio, time, uuid
        from pathlib import Path
        from qwen_dev_cli.core.account import AccountPolicy, Admitted
        from qwen_dev_cli.core.state_sqlite import SqliteStore

        async def main():
            store = SqliteStore(Path({str(path)!r}), clock=lambda: time.time() + 3600)
            policy = AccountPolicy(rpm=2, window={WINDOW}, breaker=None)
            for _ in range(2):
                assert isinstance(await store.admit({key!r}, policy, 1, uuid.uuid4().hex), Admitted)

        asyncio.run(main())
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr

    async def here() -> Refused | Admitted:
        store = SqliteStore(path)
        try:
            return await store.admit(key, POLICY, 1, rid())
        finally:
            await store.aclose()

    refusal = asyncio.run(here())
    assert isinstance(refusal, Refused)
    assert refusal.reason == "budget"
    assert refusal.wait <= WINDOW + 0.01


@pytest.fixture
async def redis_store(redis_url: str) -> AsyncIterator[tuple[RedisStore, FakeClock, str]]:
    clock = FakeClock(1_700_000_000.0)
    store = RedisStore(redis_url, clock=clock)
    yield store, clock, redis_url
    await store.aclose()


@requires_redis_server
async def test_redis_a_clock_stepped_back_closes_the_budget_for_one_window_at_most(
    redis_store: tuple[RedisStore, FakeClock, str],
) -> None:
    store, clock, _ = redis_store
    key = account()
    await fill(store, key)
    clock.now -= 3600
    refusal = await store.admit(key, POLICY, 1, rid())
    assert isinstance(refusal, Refused)
    assert refusal.reason == "budget"
    assert refusal.wait <= WINDOW


@requires_redis_server
async def test_redis_a_queue_ticket_stamped_in_the_future_lasts_its_lease_at_most(
    redis_store: tuple[RedisStore, FakeClock, str],
) -> None:
    """A waiter that arrived first and "expires" in a thousand years would hold every
    request behind it for ever: the store would answer "budget" for ever."""
    store, clock, url = redis_store
    key = account()
    ghost = {"ghost": [0.0, clock.now + 3e10]}
    state = {"e": [], "q": 0, "n": 0, "sr": None, "st": None, "cd": 0.0, "w": ghost}
    state["b"] = ["CLOSED", 0, 0, 0.0, 0, "", {}]
    admin = redis.Redis.from_url(url)
    admin.set(KEY_PREFIX + key, json.dumps(state))
    admin.close()
    policy = AccountPolicy(rpm=100, window=WINDOW, breaker=None)
    refusal = await store.admit(key, policy, 1, rid(), "mine")
    assert isinstance(refusal, Refused)
    assert refusal.reason == "budget"
    clock.now += TICKET_LEASE + 0.01
    assert isinstance(await store.admit(key, policy, 1, rid(), "mine"), Admitted)


async def test_a_breaker_opened_in_the_future_counts_its_recovery_from_now(
    tmp_path: Path,
) -> None:
    clock = FakeClock(1_700_000_000.0)
    store = SqliteStore(tmp_path / "state.sqlite3", clock=clock)
    key = account()
    policy = AccountPolicy(breaker=BreakerPolicy(failure_threshold=1, recovery_timeout=30.0))
    clock.now += 3600
    permit = await store.admit(key, policy, 1, rid())
    assert isinstance(permit, Admitted)
    await store.settle(key, policy, permit, Settlement("failure"))  # opened an hour ahead
    clock.now -= 3600
    refusal = await store.admit(key, policy, 1, rid())
    assert isinstance(refusal, Refused)
    assert refusal.reason == "open"
    assert refusal.wait <= 30.0
    await store.aclose()
