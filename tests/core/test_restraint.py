"""Account-wide restraint through the client (issue 21): the retry budget, adaptive
throttling and exhausted quotas, with scripted providers and a fake clock, and quota
answers as real servers send them (the fault server, real HTTP, a shared SQLite file)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from faultserver import FaultServer, Outcome
from qwen_dev_cli.core import LLMClient, ProviderSettings, RetryPolicy
from qwen_dev_cli.core import events as ev
from qwen_dev_cli.core.account import RETRY_FLOOR, Admitted
from qwen_dev_cli.core.dispatch import QUOTA_UNKNOWN_RESET
from qwen_dev_cli.core.errors import (
    AllProvidersFailed,
    AuthenticationError,
    BudgetWaitExceeded,
    InsufficientQuota,
    RateLimited,
    RateLimitExhausted,
    RetryBudgetExhausted,
    ServerError,
)
from qwen_dev_cli.core.providers.openai_compat import OpenAICompatProvider
from qwen_dev_cli.core.state import MemoryStore
from qwen_dev_cli.core.state_sqlite import SqliteStore
from qwen_dev_cli.core.types import ChatRequest, ProviderChunk, ProviderReply, Usage

from .fakes import FakeClock
from .scripted import ScriptedProvider

USER = [{"role": "user", "content": "hello"}]


class Draws(random.Random):
    """``random()`` always returns ``value``: 0.0 refuses whenever throttling's chance
    is above zero, 0.999 never does."""

    def __init__(self, value: float) -> None:
        super().__init__(1)
        self.value = value

    def random(self) -> float:
        return self.value


def make_client(*providers: Any, clock: FakeClock, **kwargs: Any) -> LLMClient:
    options: dict[str, Any] = {"clock": clock, "sleep": clock.sleep, "rng": random.Random(7)}
    options.update(kwargs)
    return LLMClient(list(providers), **options)


def record(client: LLMClient) -> list[ev.ClientEvent]:
    seen: list[ev.ClientEvent] = []
    client.subscribe(seen.append)
    return seen


def down() -> ServerError:
    return ServerError("HTTP 503: unavailable", status_code=503)


# --- the retry budget -----------------------------------------------------------------


async def test_a_spent_retry_budget_fails_at_once_saying_so() -> None:
    clock = FakeClock()
    a = ScriptedProvider("a", default=down())
    retry = RetryPolicy(max_retries=3, base_delay=0.5, throttle_k=0.0)
    client = make_client(a, clock=clock, retry=retry, breaker=None)
    events = record(client)
    # The floor allows RETRY_FLOOR retries a minute: three calls of three retries each,
    # then one more; after that no call retries, and none sleeps.
    calls = int(RETRY_FLOOR) // 3
    for _ in range(calls):
        with pytest.raises(AllProvidersFailed) as info:
            await client.chat(USER)
        assert not isinstance(info.value, RetryBudgetExhausted)
    assert a.calls == calls * 4
    with pytest.raises(RetryBudgetExhausted):
        await client.chat(USER)  # one retry left, then spent
    sleeps, attempts = len(clock.sleeps), a.calls
    with pytest.raises(RetryBudgetExhausted) as info:
        await client.chat(USER)
    assert a.calls == attempts + 1  # the first attempt, never a retry
    assert len(clock.sleeps) == sleeps  # no sleep-and-retry
    assert "retry budget spent for a" in str(info.value)
    assert info.value.final
    assert any(isinstance(e, ev.RetryBudgetSpent) and e.provider == "a" for e in events)
    # Successes earn retries back (20% of them), and a minute forgets the old ones.
    clock.advance(61.0)
    a.default = "back"
    assert (await client.chat(USER)).text == "back"


async def test_a_spent_retry_budget_fails_over_at_once() -> None:
    clock = FakeClock()
    a = ScriptedProvider("a", default=down())
    b = ScriptedProvider("b", default=down())
    retry = RetryPolicy(max_retries=3, throttle_k=0.0, retry_budget_ratio=0.2)
    client = make_client(a, b, clock=clock, retry=retry, breaker=None)
    for _ in range(10):
        with pytest.raises(AllProvidersFailed):
            await client.chat(USER)
    # Each of the ten calls offered each provider one attempt; the retries stopped
    # when each account's floor was spent: at most the floor each, far from 3 per call.
    assert a.calls <= 10 + RETRY_FLOOR
    assert b.calls <= 10 + RETRY_FLOOR
    b.default = "from b"
    sleeps = len(clock.sleeps)
    assert (await client.chat(USER)).provider == "b"  # a failed, b answered: no sleep
    assert len(clock.sleeps) == sleeps


async def test_without_a_budget_every_retry_is_made() -> None:
    """The comparison: with successes to earn from and a generous ratio, 20 failing
    calls (each after five good ones) make their 3 retries each."""
    clock = FakeClock()
    script: list[Any] = (["ok"] * 5 + [down() for _ in range(4)]) * 20
    a = ScriptedProvider("a", *script)
    retry = RetryPolicy(max_retries=3, throttle_k=0.0, retry_budget_ratio=1.0)
    client = make_client(a, clock=clock, retry=retry, breaker=None)
    for _ in range(20):
        for _ in range(5):
            await client.chat(USER)
        with pytest.raises(AllProvidersFailed) as info:
            await client.chat(USER)
        assert not isinstance(info.value, RetryBudgetExhausted)
    assert a.calls == 20 * (5 + 4)


# --- adaptive throttling ----------------------------------------------------------------


async def failing_alone(a: ScriptedProvider, store: MemoryStore, clock: FakeClock, n: int) -> None:
    """``n`` failed attempts on ``a``'s account, by another process sharing ``store``."""
    retry = RetryPolicy(max_retries=0, throttle_k=0.0)
    other = make_client(a, clock=clock, retry=retry, breaker=None, state=store)
    for _ in range(n):
        with pytest.raises(AllProvidersFailed):
            await other.chat(USER)


async def test_throttling_refuses_a_failing_provider_locally_and_fails_over() -> None:
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    a = ScriptedProvider("a", default=down())
    b = ScriptedProvider("b", default="from b")
    await failing_alone(a, store, clock, 9)
    retry = RetryPolicy(max_retries=0, throttle_k=2.0)
    client = make_client(a, b, clock=clock, retry=retry, breaker=None, rng=Draws(0.0), state=store)
    events = record(client)
    assert (await client.chat(USER)).provider == "b"  # 9 attempts: below the minimum
    assert a.calls == 10
    assert not any(isinstance(e, ev.Throttled) for e in events)
    # A new process (its router knows nothing of a): a's account refuses it locally.
    fresh = make_client(a, b, clock=clock, retry=retry, breaker=None, rng=Draws(0.0), state=store)
    events = record(fresh)
    for _ in range(5):
        assert (await fresh.chat(USER)).provider == "b"
    assert a.calls == 10  # refused locally, without touching it
    throttled = [e for e in events if isinstance(e, ev.Throttled)]
    assert len(throttled) == 5
    assert throttled[0].provider == "a"
    assert throttled[0].probability == pytest.approx(10 / 11)
    slot = fresh._router.slots[0]
    assert (await store.view(slot.account, slot.policy)).throttled == 5
    # Unlucky draws only: the same account with a draw above the chance is tried.
    lucky = make_client(a, b, clock=clock, retry=retry, breaker=None, rng=Draws(0.95), state=store)
    assert (await lucky.chat(USER)).provider == "b"
    assert a.calls == 11


async def test_throttling_off_with_k_zero() -> None:
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    a = ScriptedProvider("a", default=down())
    b = ScriptedProvider("b", default="from b")
    await failing_alone(a, store, clock, 15)
    retry = RetryPolicy(max_retries=0, throttle_k=0.0)
    client = make_client(a, b, clock=clock, retry=retry, breaker=None, rng=Draws(0.0), state=store)
    assert (await client.chat(USER)).provider == "b"
    assert a.calls == 16


class Gated:
    """A healthy provider whose answers wait for a gate: requests pile up in flight."""

    name = "b"
    model = "b-model"
    max_tokens: int | None = None
    context_window = 32768

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.calls = 0

    async def chat(self, request: ChatRequest) -> ProviderReply:
        self.calls += 1
        await self.gate.wait()
        return ProviderReply("ok", [], Usage(1, 1, 2), self.model)

    async def stream(self, request: ChatRequest) -> AsyncIterator[ProviderChunk]:
        yield await self.chat(request)

    async def aclose(self) -> None:
        return None


async def test_a_cold_throttle_never_refuses_a_healthy_provider() -> None:
    """Thirty requests in flight at once are not failures: attempts are counted when
    they end, so none of them is refused, however unlucky the draw."""
    clock = FakeClock()
    b = Gated()
    retry = RetryPolicy(max_retries=0, throttle_k=2.0)
    client = make_client(b, clock=clock, retry=retry, rng=Draws(0.0))
    events = record(client)
    calls = [asyncio.ensure_future(client.chat(USER)) for _ in range(30)]
    for _ in range(50):
        await asyncio.sleep(0)
    b.gate.set()
    results = await asyncio.gather(*calls)
    assert len(results) == 30
    assert b.calls == 30
    assert not any(isinstance(e, ev.Throttled) for e in events)


# --- exhausted quotas, from real HTTP answers ---------------------------------------------


@pytest.fixture
async def lab() -> AsyncIterator[FaultServer]:
    async with FaultServer() as srv:
        yield srv


@pytest.fixture
async def spare() -> AsyncIterator[FaultServer]:
    async with FaultServer(text="from the spare") as srv:
        yield srv


INSUFFICIENT_QUOTA = Outcome.status(
    429,
    message="You exceeded your current quota, please check your plan and billing details.",
    code="insufficient_quota",
    error_type="insufficient_quota",
)
#: Gemini's answer for a per-minute quota: a rate limit, with its delay in the body.
PER_MINUTE = Outcome.status(
    429,
    message="Quota exceeded for quota metric 'Generate Content API requests per minute'. "
    "Please retry in 20s.",
    code="RESOURCE_EXHAUSTED",
)


@pytest.mark.parametrize(
    ("outcome", "error", "retry_after"),
    [
        (INSUFFICIENT_QUOTA, InsufficientQuota, None),
        (Outcome.status(403, message="Billing account is not active"), InsufficientQuota, None),
        (Outcome.status(403, message="Permission denied"), AuthenticationError, None),
        (PER_MINUTE, RateLimited, 20.0),
        (
            Outcome.status(429, message="Quota exceeded for requests per day", code=429),
            RateLimited,
            None,
        ),
    ],
)
async def test_quota_answers_are_told_from_rate_limits(
    lab: FaultServer, outcome: Outcome, error: type[Exception], retry_after: float | None
) -> None:
    lab.script(outcome)
    provider = OpenAICompatProvider("lab", base_url=lab.base_url, model="fault-model")
    with pytest.raises(error) as info:
        await provider.chat(ChatRequest(USER))
    await provider.aclose()
    assert type(info.value) is error
    assert getattr(info.value, "retry_after", None) == retry_after


def settings(srv: FaultServer, name: str) -> ProviderSettings:
    return ProviderSettings(name=name, base_url=srv.base_url, model="fault-model", api_key="k")


async def test_an_exhausted_quota_costs_one_attempt_across_processes(
    lab: FaultServer, spare: FaultServer, tmp_path: Path
) -> None:
    """Two clients (as two processes would) on one SQLite file: the first 429
    insufficient_quota marks the account for both; neither ever retries it."""
    lab.configure(default=INSUFFICIENT_QUOTA)
    seen: list[ev.ClientEvent] = []
    clients = []
    for _ in range(2):
        store = SqliteStore(tmp_path / "state.sqlite3")
        client = LLMClient([settings(lab, "a"), settings(spare, "b")], state=store)
        client.subscribe(seen.append)
        clients.append((client, store))
    for _ in range(3):
        for client, _store in clients:
            assert (await client.chat(USER)).provider == "b"
    assert len(lab.requests) == 1
    quota = [e for e in seen if isinstance(e, ev.QuotaExhausted)]
    assert len(quota) == 1
    assert quota[0].provider == "a"
    assert quota[0].reset_in is None
    assert "quota" in ev.describe(quota[0])
    status = await clients[1][0].refresh_status()
    assert status.providers[0].name == "a"
    view = clients[1][0]._router.slots[0].view
    assert QUOTA_UNKNOWN_RESET - 60 < view.quota_reset_in <= QUOTA_UNKNOWN_RESET
    for client, store in clients:
        await client.aclose()
        await store.aclose()


async def test_a_quota_with_no_other_provider_fails_once_never_loops(lab: FaultServer) -> None:
    lab.configure(default=INSUFFICIENT_QUOTA)
    clock = FakeClock()
    client = LLMClient([settings(lab, "a")], clock=clock, sleep=clock.sleep)
    with pytest.raises(AllProvidersFailed) as info:
        await client.chat(USER)
    assert info.value.permanent
    assert "quota" in str(info.value)
    with pytest.raises(AllProvidersFailed):
        await client.chat(USER)
    assert len(lab.requests) == 1
    assert clock.sleeps == []
    await client.aclose()


async def test_a_retry_after_beyond_the_cap_is_said_and_marks_the_account(
    lab: FaultServer, spare: FaultServer
) -> None:
    lab.script(Outcome.rate_limited(retry_after="7200"))
    client = LLMClient(
        [settings(lab, "a"), settings(spare, "b")], retry=RetryPolicy(max_retry_after=60.0)
    )
    seen = record(client)
    assert (await client.chat(USER)).provider == "b"
    assert (await client.chat(USER)).provider == "b"
    assert len(lab.requests) == 1
    quota = [e for e in seen if isinstance(e, ev.QuotaExhausted)]
    assert [(e.provider, e.reset_in) for e in quota] == [("a", 7200.0)]
    await client.aclose()


async def test_a_per_minute_quota_is_waited_as_a_rate_limit(lab: FaultServer) -> None:
    lab.script(PER_MINUTE)
    clock = FakeClock()
    client = LLMClient([settings(lab, "a")], clock=clock, sleep=clock.sleep)
    seen = record(client)
    assert (await client.chat(USER)).provider == "a"
    assert clock.sleeps
    assert clock.sleeps[0] >= 20.0
    assert not any(isinstance(e, ev.QuotaExhausted) for e in seen)
    await client.aclose()


async def test_a_tiny_retry_after_cools_the_account_for_the_backoffs_floor(
    lab: FaultServer,
) -> None:
    lab.script(Outcome.rate_limited(retry_after=None, retry_after_ms="1"))
    clock = FakeClock()
    client = LLMClient(
        [settings(lab, "a")],
        retry=RetryPolicy(base_delay=2.0, jitter="full"),
        clock=clock,
        sleep=clock.sleep,
        rng=Draws(0.0),
    )
    assert (await client.chat(USER)).provider == "a"
    assert clock.sleeps[0] >= 2.0  # not 1 ms, though full jitter drew 0
    await client.aclose()


async def test_rate_limit_exhausted_still_carries_a_far_retry_after(lab: FaultServer) -> None:
    lab.script(Outcome.rate_limited(retry_after="7200"))
    client = LLMClient([settings(lab, "a")], retry=RetryPolicy(max_retry_after=60.0))
    with pytest.raises(RateLimitExhausted) as info:
        await client.chat(USER)
    assert info.value.retry_after == pytest.approx(7200, abs=1)
    await client.aclose()


@pytest.mark.parametrize(
    "outcome",
    [
        Outcome.rate_limited(retry_after="7200"),  # a far reset: stays RateLimited
        INSUFFICIENT_QUOTA,
        Outcome.status(429, message="Quota exceeded for requests per day", code=429),
    ],
)
async def test_every_kind_of_exhausted_quota_is_counted_as_a_quota(
    lab: FaultServer, spare: FaultServer, outcome: Outcome
) -> None:
    """Telemetry's failure kinds: a quota is "quota", not "429", whichever answer said
    it (the far Retry-After one used to be counted as a rate limit)."""
    lab.script(outcome)
    client = LLMClient(
        [settings(lab, "a"), settings(spare, "b")], retry=RetryPolicy(max_retry_after=60.0)
    )
    assert (await client.chat(USER)).provider == "b"
    snapshot = client.get_metrics()
    failures = snapshot["providers"]["a"]["failures"]
    assert (failures["quota"], failures["429"]) == (1, 0)
    assert snapshot["providers"]["a"]["quota_exhausted"] == 1
    await client.aclose()


async def test_a_quota_learnt_elsewhere_is_not_waited_for_as_a_cool_down(
    lab: FaultServer, tmp_path: Path
) -> None:
    """A 429 insufficient_quota with a short Retry-After marks the account for a second;
    the process that meets that mark (a second client on the same SQLite file) fails at
    once saying quota, as the first did: no sleep, no "waiting for budget" counted."""
    lab.script(
        Outcome.status(
            429,
            message="You exceeded your current quota",
            code="insufficient_quota",
            headers={"retry-after": "30"},
        )
    )
    stores = [SqliteStore(tmp_path / "state.sqlite3") for _ in range(2)]
    first = LLMClient([settings(lab, "a")], state=stores[0])
    with pytest.raises(AllProvidersFailed) as info:
        await first.chat(USER)
    assert "quota" in str(info.value)
    clock = FakeClock()
    second = LLMClient([settings(lab, "a")], state=stores[1], clock=clock, sleep=clock.sleep)
    seen = record(second)
    with pytest.raises(AllProvidersFailed) as info:
        await second.chat(USER)
    assert "quota exhausted" in str(info.value)
    assert clock.sleeps == []
    assert not any(isinstance(e, ev.RateLimitWait) for e in seen)
    assert second.get_metrics()["providers"]["a"]["budget_waits"] == 0
    assert len(lab.requests) == 1
    for client, store in zip((first, second), stores, strict=True):
        await client.aclose()
        await store.aclose()


async def test_a_max_wait_failure_also_says_whom_the_retry_budget_kept_off(
    lab: FaultServer, spare: FaultServer
) -> None:
    """a fails and its account has no retry left; b's budget frees later than max_wait.
    The error names b's wait, and says too that a failed and was not retried for its
    retry budget (it used to speak of b's budget alone)."""
    lab.configure(default=Outcome.status(503, message="unavailable"))
    clock = FakeClock(1000.0)
    store = MemoryStore(clock=clock)
    b = ProviderSettings(name="b", base_url=spare.base_url, model="fault-model", rpm=1)
    client = LLMClient(
        [settings(lab, "a"), b],
        state=store,
        max_wait=10.0,
        retry=RetryPolicy(throttle_k=0.0),
        breaker=None,
        clock=clock,
        sleep=clock.sleep,
    )
    assert (await client.chat(USER)).provider == "b"  # a failed; b spent its minute
    slot = client._router.slots[0]
    for i in range(int(RETRY_FLOOR)):  # a's account spends its retries elsewhere
        granted = await store.admit(slot.account, slot.policy, 0, f"elsewhere{i}", retry=True)
        assert isinstance(granted, Admitted)
    with pytest.raises(BudgetWaitExceeded) as info:
        await client.chat(USER)
    message = str(info.value)
    # Its minute and the guard that keeps a late arrival out of the server's window.
    assert "b's budget frees in 61s, longer than max_wait (10s)" in message
    assert "a: HTTP 503" in message
    assert "not retried: the account's retry budget is spent" in message
    assert clock.sleeps == []
    await client.aclose()
