"""The Lua port of the account rules (``core/account.lua``, what :class:`RedisStore`
runs) against the Python original (:mod:`qwen_dev_cli.core.account`): random operations
through both, with one clock, must give equal answers and equal stored states.

A few seeds run in the fast loop wherever ``redis-server`` exists (a second each);
more run with the slow tests. Without ``redis-server`` they skip, saying how to install
it (the slow Redis store tests fail instead: CI must have it)."""

from __future__ import annotations

import random

import pytest
import redis

from qwen_dev_cli.core.account import (
    AccountPolicy,
    AccountState,
    Admitted,
    BreakerPolicy,
    Settlement,
)
from qwen_dev_cli.core.state_redis import KEY_PREFIX, RedisStore
from qwen_dev_cli.core.types import RateLimitHeaders
from tests.core.store_contract import account
from tests.redis_server import redis_server, redis_url, requires_redis_server

__all__ = ["redis_server", "redis_url"]  # fixtures, imported for pytest

pytestmark = requires_redis_server

#: Operations per seed: every rule is reached within a few dozen.
STEPS = 250
FAST_SEEDS = range(8)
SLOW_SEEDS = range(8, 40)


class SteppedClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


POLICIES = [
    AccountPolicy(rpm=3, tpm=100, window=1.0, breaker=BreakerPolicy(2, 0.5, 2, 0.8)),
    AccountPolicy(rpm=5, window=1.0, breaker=None),
    AccountPolicy(tpm=80, window=1.5, breaker=BreakerPolicy(1, 0.3, 1, 0.4)),
    AccountPolicy(window=1.0),
    # Account-wide restraint: a retry budget and adaptive throttling.
    AccountPolicy(rpm=4, window=1.0, retry_ratio=0.2, throttle_k=2.0, retry_floor=2.0),
    AccountPolicy(
        tpm=90, window=1.0, breaker=BreakerPolicy(3, 0.5, 1, 0.8), retry_ratio=0.5, retry_floor=0.5
    ),
    AccountPolicy(window=1.0, breaker=None, throttle_k=1.5),
    # Admissions held past the window by a guard (the client's, scaled down).
    AccountPolicy(rpm=3, tpm=120, window=1.0, guard=0.3, breaker=None),
    AccountPolicy(rpm=2, window=1.0, guard=0.05, breaker=BreakerPolicy(2, 0.5, 2, 0.8)),
]


def random_settlement(rng: random.Random) -> Settlement:
    def maybe(value: float) -> float | None:
        return None if rng.random() < 0.4 else value

    server = None
    if rng.random() < 0.3:
        server = RateLimitHeaders(
            remaining_requests=None if rng.random() < 0.3 else rng.randint(0, 4),
            remaining_tokens=None if rng.random() < 0.3 else rng.randint(0, 150),
            reset_requests=maybe(rng.uniform(0, 1.2)),
            reset_tokens=maybe(rng.uniform(0, 1.2)),
        )
    return Settlement(
        outcome=rng.choice(["success", "failure", "failure", "neutral"]),
        tokens=None if rng.random() < 0.3 else rng.randint(-5, 90),
        cooldown=0.0 if rng.random() < 0.8 else rng.uniform(0, 0.9),
        server=server,
        quota=0.0 if rng.random() < 0.93 else rng.uniform(0, 3.0),
    )


async def lua_and_python_agree(redis_url: str, seed: int) -> None:
    """Random operations through the Lua port and through AccountState, with the same
    clock: every answer and every stored state must be equal, to the last bit."""
    rng = random.Random(seed)
    clock = SteppedClock(1_700_000_000.0 + rng.random())
    store = RedisStore(redis_url, clock=clock)
    admin = redis.Redis.from_url(redis_url)
    key = account()
    state = AccountState()
    permits: list[Admitted] = []
    expected: object
    got: object
    # One process's belief, or two processes believing different limits.
    policies = rng.sample(POLICIES, k=rng.choice([1, 2]))
    try:
        for step in range(STEPS):
            # Now and then minutes pass: health buckets leave the throttle's window.
            clock.now += rng.choice(
                [0.0, rng.uniform(0, 0.05), rng.uniform(0, 0.4), rng.uniform(0, 2.5)]
                + ([rng.uniform(20, 70)] if rng.random() < 0.03 else [])
            )
            if rng.random() < 0.02:  # the clock steps back: both clamp stamps alike
                clock.now -= rng.uniform(0, 2.5)
            policy = rng.choice(policies)
            op = rng.choices(["admit", "settle", "view", "reset"], [6, 4, 2, 0.3])[0]
            if op == "admit":
                tokens = rng.randint(0, 60)
                ticket = rng.choice([None, None, "t1", "t2", "t3"])
                draw = None if rng.random() < 0.3 else rng.random()
                retry = rng.random() < 0.4
                expected = state.admit(
                    clock.now, policy, tokens, f"r{step}", ticket, draw=draw, retry=retry
                )
                got = await store.admit(
                    key, policy, tokens, f"r{step}", ticket, draw=draw, retry=retry
                )
                if isinstance(got, Admitted):
                    permits.append(got)
            elif op == "settle" and permits:
                permit = permits.pop(rng.randrange(len(permits)))
                settlement = random_settlement(rng)
                expected = state.settle(clock.now, policy, permit, settlement)
                got = await store.settle(key, policy, permit, settlement)
            elif op == "view":
                expected, got = state.view(clock.now, policy), await store.view(key, policy)
            else:
                expected, got = state.reset(clock.now), await store.reset(key)
            assert got == expected, f"step {step}: {op}"
            stored = admin.get(KEY_PREFIX + key)
            if stored is not None:
                assert AccountState.from_json(stored) == state, f"step {step}: {op}"
            if rng.random() < 0.1:  # the script also reads what Python writes
                admin.set(KEY_PREFIX + key, state.to_json())
    finally:
        admin.close()
        await store.aclose()


@pytest.mark.parametrize("seed", FAST_SEEDS)
async def test_the_script_applies_the_rules_of_account_py(redis_url: str, seed: int) -> None:
    await lua_and_python_agree(redis_url, seed)


@pytest.mark.slow
@pytest.mark.parametrize("seed", SLOW_SEEDS)
async def test_the_script_applies_the_rules_of_account_py_on_more_seeds(
    redis_url: str, seed: int
) -> None:
    await lua_and_python_agree(redis_url, seed)
