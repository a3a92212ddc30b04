"""LLMClient logic with scripted providers and a fake clock: no HTTP, no real sleeping."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from qwen_dev_cli.core import (
    AllProvidersFailed,
    AuthenticationError,
    BadRequestError,
    BreakerPolicy,
    BreakerTransition,
    ClientEvent,
    ConnectionFailed,
    Failover,
    LLMClient,
    ProviderSettings,
    RateLimited,
    RateLimitExhausted,
    RateLimits,
    RateLimitWait,
    RequestTimeout,
    RequestTooLarge,
    RetryPolicy,
    RetryScheduled,
    ServerError,
    StreamEnd,
    StreamInterrupted,
    StreamRestart,
    TextDelta,
    Timeouts,
)
from qwen_dev_cli.core.account import WINDOW_GUARD
from qwen_dev_cli.core.types import ChatRequest, ProviderChunk, Usage

from .fakes import FakeClock, ManualClock, settle
from .scripted import Answer, ScriptedProvider

USER = [{"role": "user", "content": "hello"}]
NO_RETRY = RetryPolicy(max_retries=0)


def make_client(*providers: ScriptedProvider, clock: FakeClock, **kwargs: Any) -> LLMClient:
    options: dict[str, Any] = {"clock": clock, "sleep": clock.sleep, "rng": random.Random(7)}
    options.update(kwargs)
    return LLMClient(list(providers), **options)


def record(client: LLMClient) -> list[ClientEvent]:
    seen: list[ClientEvent] = []
    client.subscribe(seen.append)
    return seen


async def test_first_attempt_success_is_one_attempt() -> None:
    clock = FakeClock()
    a = ScriptedProvider("a", "hi there")
    client = make_client(a, clock=clock)
    result = await client.chat(USER)
    assert (result.text, result.provider, result.attempts) == ("hi there", "a", 1)
    assert clock.sleeps == []
    metrics = client.get_metrics()
    assert metrics["total_requests"] == 1
    assert metrics["success_rate"] == 100.0
    row = metrics["providers"]["a"]
    assert {k: row[k] for k in ("success", "failure", "state")} == {
        "success": 1,
        "failure": 0,
        "state": "CLOSED",
    }
    assert (row["attempts"], row["requests"], row["request_successes"]) == (1, 1, 1)


async def test_transient_failure_is_retried_after_jittered_backoff() -> None:
    clock = FakeClock()
    a = ScriptedProvider("a", ServerError("boom", status_code=503), "recovered")
    client = make_client(a, clock=clock)
    events = record(client)
    result = await client.chat(USER)
    assert result.text == "recovered"
    assert result.attempts == 2
    assert len(clock.sleeps) == 1
    assert 1.1 <= clock.sleeps[0] <= 1.3  # base_delay 1.0 plus 10-30 %
    retry = next(e for e in events if isinstance(e, RetryScheduled))
    assert (retry.retry, retry.max_retries) == (1, 3)
    assert retry.reason == "a: 503 unavailable"
    assert client.get_metrics()["retries"] == 1


async def test_failure_fails_over_at_once_without_sleeping() -> None:
    clock = FakeClock()
    a = ScriptedProvider("a", ConnectionFailed("refused"))
    b = ScriptedProvider("b", "from b")
    client = make_client(a, b, clock=clock)
    events = record(client)
    result = await client.chat(USER)
    assert (result.provider, result.text, result.attempts) == ("b", "from b", 2)
    assert clock.sleeps == []
    assert [e for e in events if isinstance(e, Failover)] == [Failover("a", "b", "refused")]
    assert client.get_metrics()["failovers"] == 1
    assert result.failed_attempts == [("a", "refused")]


async def test_retry_after_is_a_floor_on_the_backoff() -> None:
    clock = FakeClock()
    a = ScriptedProvider("a", RateLimited("slow down", status_code=429, retry_after=7.5), "ok")
    client = make_client(a, clock=clock)
    await client.chat(USER)
    assert clock.sleeps == [7.5]
    assert client.get_metrics()["rate_limited"] == 1


async def test_retry_after_beyond_the_cap_fails_without_sleeping() -> None:
    clock = FakeClock()
    a = ScriptedProvider("a", RateLimited("slow down", status_code=429, retry_after=120))
    client = make_client(a, clock=clock, retry=RetryPolicy(max_retry_after=60.0))
    with pytest.raises(RateLimitExhausted) as info:
        await client.chat(USER)
    assert info.value.retry_after == 120
    assert clock.sleeps == []
    assert a.calls == 1


async def test_long_retry_after_fails_over_and_cools_the_provider_down() -> None:
    clock = FakeClock()
    a = ScriptedProvider("a", RateLimited("slow down", status_code=429, retry_after=120))
    b = ScriptedProvider("b", default="from b")
    client = make_client(a, b, clock=clock)
    assert (await client.chat(USER)).provider == "b"
    # While a cools down it is skipped without a call, and its breaker stays closed.
    assert (await client.chat(USER)).provider == "b"
    assert a.calls == 1
    assert client.status().providers[0].cooldown == pytest.approx(120)
    assert client.status().providers[0].state == "CLOSED"


async def test_bad_request_is_not_retried_nor_failed_over() -> None:
    clock = FakeClock()
    a = ScriptedProvider("a", BadRequestError("bad", status_code=400))
    b = ScriptedProvider("b")
    client = make_client(a, b, clock=clock)
    with pytest.raises(BadRequestError):
        await client.chat(USER)
    assert b.calls == 0
    assert clock.sleeps == []
    assert client.get_metrics()["success_rate"] == 0.0


async def test_auth_failure_moves_on_and_is_permanent_when_alone() -> None:
    clock = FakeClock()
    a = ScriptedProvider("a", default=AuthenticationError("no key", status_code=401))
    b = ScriptedProvider("b", "from b")
    assert (await make_client(a, b, clock=clock).chat(USER)).provider == "b"

    lonely = ScriptedProvider("a", default=AuthenticationError("no key", status_code=401))
    with pytest.raises(AllProvidersFailed) as info:
        await make_client(lonely, clock=clock).chat(USER)
    assert info.value.permanent
    assert lonely.calls == 1
    assert clock.sleeps == []


async def test_gives_up_after_max_retries_rounds() -> None:
    clock = FakeClock()
    a = ScriptedProvider("a", default=ServerError("down", status_code=500))
    client = make_client(a, clock=clock, retry=RetryPolicy(max_retries=3), breaker=None)
    with pytest.raises(AllProvidersFailed) as info:
        await client.chat(USER)
    assert not info.value.permanent
    assert a.calls == 4
    assert len(clock.sleeps) == 3
    # Exponential: ~1, ~2, ~4 seconds plus up to 30 % jitter.
    for n, delay in enumerate(clock.sleeps):
        assert 2**n * 1.1 <= delay <= 2**n * 1.3


async def test_should_retry_false_stops_retrying() -> None:
    clock = FakeClock()
    error = ServerError("do not retry", status_code=503)
    error.retryable = False
    a = ScriptedProvider("a", error, "never")
    with pytest.raises(AllProvidersFailed):
        await make_client(a, clock=clock).chat(USER)
    assert a.calls == 1


async def test_open_breaker_skips_provider_without_a_call_then_probes() -> None:
    clock = FakeClock()
    a = ScriptedProvider("a", default=ServerError("down", status_code=500))
    b = ScriptedProvider("b", default="from b")
    client = make_client(
        a, b, clock=clock, breaker=BreakerPolicy(failure_threshold=2, recovery_timeout=30.0)
    )
    events = record(client)
    for _ in range(2):
        assert (await client.chat(USER)).provider == "b"
    assert client.status().providers[0].state == "OPEN"
    calls = a.calls
    for _ in range(5):
        await client.chat(USER)
    assert a.calls == calls
    assert client.get_metrics()["providers"]["a"]["state"] == "OPEN"
    # After the recovery timeout a trial call reaches a; it recovered.
    a.default = "a is back"
    clock.advance(31)
    assert (await client.chat(USER)).provider == "a"
    transitions = [(e.old, e.new) for e in events if isinstance(e, BreakerTransition)]
    assert transitions == [("CLOSED", "OPEN"), ("OPEN", "HALF_OPEN")]


async def test_all_circuits_open_fails_fast_without_sleeping() -> None:
    clock = FakeClock()
    a = ScriptedProvider("a", default=ServerError("down", status_code=500))
    client = make_client(a, clock=clock, breaker=BreakerPolicy(failure_threshold=1), retry=NO_RETRY)
    with pytest.raises(AllProvidersFailed):
        await client.chat(USER)
    sleeps_before = list(clock.sleeps)
    with pytest.raises(AllProvidersFailed) as info:
        await client.chat(USER)
    assert "circuit open" in str(info.value)
    assert clock.sleeps == sleeps_before
    assert client.get_metrics()["circuit_breaker_blocks"] == 1


async def test_client_side_rate_limit_waits_its_turn() -> None:
    clock = FakeClock()
    a = ScriptedProvider("a", default="ok")
    client = make_client(a, clock=clock, rate_limits=RateLimits(requests_per_minute=2))
    events = record(client)
    for _ in range(3):
        await client.chat(USER)
    # The third request waits for the first to leave the window (and its guard: the
    # server counted the first on arrival), asking the store again every second (that
    # keeps its place in the account's queue).
    assert sum(clock.sleeps) == pytest.approx(60.0 + WINDOW_GUARD)
    assert max(clock.sleeps) <= 1.0
    waits = [e for e in events if isinstance(e, RateLimitWait)]
    assert [w.delay for w in waits] == [pytest.approx(60.0 + WINDOW_GUARD)]
    assert client.get_metrics()["rate_limited"] == 1


async def test_request_bigger_than_budget_fails_over_at_once() -> None:
    clock = FakeClock()
    a = ScriptedProvider("a", default="never")
    b = ScriptedProvider("b", default="from b")
    client = make_client(a, b, clock=clock, rate_limits=RateLimits(tokens_per_minute=500))
    big = [{"role": "user", "content": "x" * 8000}]
    with pytest.raises(AllProvidersFailed) as info:
        await client.chat(big)
    assert all(isinstance(f.error, RequestTooLarge) for f in info.value.failures)
    assert (a.calls, b.calls) == (0, 0)
    assert clock.sleeps == []
    # Nothing was sent: no provider is blamed for the request's size.
    assert client.get_metrics()["providers"]["a"]["failure"] == 0
    assert client.status().providers[0].success_rate is None


async def test_streams_text_then_one_complete_result() -> None:
    clock = FakeClock()
    a = ScriptedProvider("a", "the quick brown fox")
    client = make_client(a, clock=clock)
    events = [e async for e in client.stream(USER)]
    texts = [e.text for e in events if isinstance(e, TextDelta)]
    assert "".join(texts) == "the quick brown fox"
    assert isinstance(events[-1], StreamEnd)
    assert events[-1].result.text == "the quick brown fox"


async def test_stream_broken_mid_answer_restarts_and_never_duplicates() -> None:
    clock = FakeClock()
    broken = Answer("one two three four", fail_after=2, error=ServerError("cut", status_code=502))
    a = ScriptedProvider("a", broken)
    b = ScriptedProvider("b", "alpha beta gamma")
    client = make_client(a, b, clock=clock)
    shown: list[str] = []
    restarts = 0
    async for event in client.stream(USER):
        if isinstance(event, TextDelta):
            shown.append(event.text)
        elif isinstance(event, StreamRestart):
            restarts += 1
            shown.clear()  # what a renderer does: drop the partial answer
        else:
            final = event.result
    assert restarts == 1
    assert "".join(shown) == final.text == "alpha beta gamma"
    assert final.provider == "b"


async def test_stream_failure_before_first_token_is_a_plain_retry() -> None:
    clock = FakeClock()
    a = ScriptedProvider("a", ConnectionFailed("reset"), "second try")
    client = make_client(a, clock=clock)
    events = [e async for e in client.stream(USER)]
    assert not any(isinstance(e, StreamRestart) for e in events)
    assert isinstance(events[-1], StreamEnd)
    assert events[-1].result.text == "second try"


async def test_stream_error_reaches_the_consumer() -> None:
    clock = FakeClock()
    a = ScriptedProvider("a", default=BadRequestError("bad", status_code=400))
    client = make_client(a, clock=clock)
    with pytest.raises(BadRequestError):
        async for _ in client.stream(USER):
            pass


async def test_interrupted_stream_counts_as_breaker_failure() -> None:
    clock = FakeClock()
    broken = Answer("a b c", fail_after=1, error=StreamInterrupted("cut", after_first_token=True))
    a = ScriptedProvider("a", broken, broken, default="fine")
    client = make_client(
        a, clock=clock, breaker=BreakerPolicy(failure_threshold=2), retry=RetryPolicy(max_retries=1)
    )
    with pytest.raises(AllProvidersFailed):
        async for _ in client.stream(USER):
            pass
    assert client.status().providers[0].state == "OPEN"


async def test_cancel_during_backoff_stops_at_once() -> None:
    release = asyncio.Event()
    slept: list[float] = []

    async def sleep(delay: float) -> None:
        slept.append(delay)
        await release.wait()

    a = ScriptedProvider("a", default=ServerError("down", status_code=503))
    client = LLMClient([a], sleep=sleep, rng=random.Random(1))
    task = asyncio.create_task(client.chat(USER))
    await settle()
    assert slept  # the client is in its backoff sleep
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert a.calls == 1


async def test_cancel_releases_half_open_trial() -> None:
    clock = FakeClock()
    a = ScriptedProvider("a", ServerError("down", status_code=500), Answer(hang=True))
    client = make_client(
        a, clock=clock, breaker=BreakerPolicy(failure_threshold=1, half_open_max_calls=1)
    )
    with pytest.raises(AllProvidersFailed):
        await client.chat(USER)
    clock.advance(61)
    task = asyncio.create_task(client.chat(USER))
    await settle()
    assert a.calls == 2  # the trial call is in flight, hanging
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    a.default = "ok"
    # The cancelled trial gave its slot back: the next request is let through.
    assert (await client.chat(USER)).text == "ok"


async def test_attempt_timeout_is_enforced_by_the_client() -> None:
    a = ScriptedProvider("a", Answer(hang=True))
    b = ScriptedProvider("b", "from b")
    client = LLMClient([a, b], timeouts=Timeouts(attempt=0.05))
    result = await client.chat(USER)
    assert result.provider == "b"
    assert "no answer within" in result.failed_attempts[0][1]


async def test_timeout_error_is_request_timeout() -> None:
    a = ScriptedProvider("a", Answer(hang=True))
    client = LLMClient([a], timeouts=Timeouts(attempt=0.05), retry=NO_RETRY)
    with pytest.raises(AllProvidersFailed) as info:
        await client.chat(USER)
    assert isinstance(info.value.failures[0].error, RequestTimeout)


async def test_usage_is_estimated_when_provider_gives_none() -> None:
    clock = FakeClock()
    a = ScriptedProvider("a", Answer("word " * 40, no_usage=True))
    result = await make_client(a, clock=clock).chat(USER)
    assert result.usage.completion_tokens > 0
    assert result.usage.total_tokens == result.usage.prompt_tokens + result.usage.completion_tokens


async def test_reconciles_limiter_with_real_usage() -> None:
    clock = FakeClock()
    a = ScriptedProvider("a", Answer("x", usage=Usage(5, 5, 10)), max_tokens=1000)
    client = make_client(a, clock=clock, rate_limits=RateLimits(tokens_per_minute=5000))
    await client.chat(USER)
    assert client.status().providers[0].tpm_left == 4990


async def test_broken_listener_does_not_break_request() -> None:
    clock = FakeClock()
    client = make_client(ScriptedProvider("a"), clock=clock)

    def explode(event: ClientEvent) -> None:
        raise RuntimeError("listener bug")

    client.subscribe(explode)
    assert (await client.chat(USER)).text == "ok"


async def test_reset_circuit_breaker_closes_it() -> None:
    clock = FakeClock()
    a = ScriptedProvider("a", default=ServerError("down", status_code=500))
    client = make_client(a, clock=clock, breaker=BreakerPolicy(failure_threshold=1), retry=NO_RETRY)
    with pytest.raises(AllProvidersFailed):
        await client.chat(USER)
    assert client.status().providers[0].state == "OPEN"
    await client.reset_circuit_breaker("a")
    assert client.status().providers[0].state == "CLOSED"


async def test_from_settings_builds_http_providers() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            200,
            json={
                "model": "m",
                "choices": [{"message": {"content": "hi"}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            },
        )

    from qwen_dev_cli.core.settings import ClientSettings

    settings = ClientSettings(
        providers=(ProviderSettings("lab", "m", base_url="http://lab/v1", api_key="sk-123"),)
    )
    async with LLMClient.from_settings(settings, transport=httpx.MockTransport(handler)) as c:
        assert (await c.chat(USER)).text == "hi"
    assert seen[0].headers["authorization"] == "Bearer sk-123"
    assert seen[0].url == "http://lab/v1/chat/completions"


async def test_requests_queued_behind_a_cool_down_wait_instead_of_failing() -> None:
    clock = ManualClock()
    a = ScriptedProvider("a", RateLimited("slow down", status_code=429, retry_after=2.0))
    client = LLMClient([a], clock=clock, sleep=clock.sleep, rng=random.Random(3))
    events = record(client)
    first = asyncio.create_task(client.chat(USER))
    await settle()
    second = asyncio.create_task(client.chat(USER))
    await settle()
    assert a.calls == 1  # the second request did not hit the cooling provider
    assert any(isinstance(e, RateLimitWait) and e.delay == 2.0 for e in events)
    await clock.advance(2.0)
    assert (await first).attempts == 2
    assert (await second).attempts == 1
    # Only the request that got the 429 used a retry; the other just waited its turn.
    assert client.get_metrics()["retries"] == 1
    assert client.get_metrics()["success_rate"] == 100.0


class StallsAfterFirstToken(ScriptedProvider):
    async def stream(self, request: ChatRequest) -> AsyncIterator[ProviderChunk]:
        self.calls += 1
        yield TextDelta("partial")
        await asyncio.Event().wait()


async def test_stream_that_stalls_mid_answer_times_out_and_restarts() -> None:
    stalled = StallsAfterFirstToken("a")
    b = ScriptedProvider("b", "complete answer")
    client = LLMClient([stalled, b], timeouts=Timeouts(attempt=0.05))
    events = [e async for e in client.stream(USER)]
    kinds = [type(e).__name__ for e in events]
    assert kinds[:2] == ["TextDelta", "StreamRestart"]
    assert isinstance(events[-1], StreamEnd)
    assert events[-1].result.text == "complete answer"
    assert "no data for 0.05s" in events[-1].result.failed_attempts[0][1]


async def test_a_slow_consumer_is_not_mistaken_for_a_silent_provider() -> None:
    a = ScriptedProvider("a", "one two three four")
    client = LLMClient([a], timeouts=Timeouts(attempt=0.05))
    texts = []
    async for event in client.stream(USER):
        if isinstance(event, TextDelta):
            texts.append(event.text)
            await asyncio.sleep(0.12)  # the renderer is busy for longer than the timeout
    assert "".join(texts) == "one two three four"
    assert a.calls == 1


async def test_cancelling_the_consumer_is_not_a_timeout() -> None:
    stalled = StallsAfterFirstToken("a")
    client = LLMClient([stalled], timeouts=Timeouts(attempt=30.0))
    started = asyncio.Event()

    async def consume() -> None:
        async for _ in client.stream(USER):
            started.set()

    task = asyncio.create_task(consume())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert stalled.calls == 1
    assert client.get_metrics()["providers"]["a"]["failure"] == 0


async def test_no_backoff_sleep_once_every_breaker_has_opened() -> None:
    clock = FakeClock()
    a = ScriptedProvider("a", default=ServerError("down", status_code=500))
    client = make_client(
        a, clock=clock, breaker=BreakerPolicy(failure_threshold=2), retry=RetryPolicy(max_retries=3)
    )
    with pytest.raises(AllProvidersFailed):
        await client.chat(USER)
    # The second failure opened the breaker: sleeping again would only meet a refusal.
    assert a.calls == 2
    assert len(clock.sleeps) == 1


async def test_should_retry_true_retries_even_a_bad_request() -> None:
    clock = FakeClock()
    error = BadRequestError("try again", status_code=400)
    error.retryable = True  # what x-should-retry: true does
    a = ScriptedProvider("a", error, "second time lucky")
    assert (await make_client(a, clock=clock).chat(USER)).text == "second time lucky"
    assert a.calls == 2


async def test_should_retry_false_on_5xx_still_counts_against_the_breaker() -> None:
    clock = FakeClock()
    error = ServerError("down", status_code=500)
    error.retryable = False
    a = ScriptedProvider("a", default=error)
    client = make_client(a, clock=clock, breaker=BreakerPolicy(failure_threshold=2), retry=NO_RETRY)
    for _ in range(2):
        with pytest.raises(AllProvidersFailed):
            await client.chat(USER)
    assert client.status().providers[0].state == "OPEN"


async def test_4xx_retryable_statuses_do_not_trip_the_breaker() -> None:
    from qwen_dev_cli.core.errors import TransientError

    clock = FakeClock()
    a = ScriptedProvider("a", default=TransientError("conflict", status_code=409))
    client = make_client(
        a, clock=clock, breaker=BreakerPolicy(failure_threshold=2), retry=RetryPolicy(max_retries=3)
    )
    with pytest.raises(AllProvidersFailed):
        await client.chat(USER)
    assert a.calls == 4
    assert client.status().providers[0].state == "CLOSED"
