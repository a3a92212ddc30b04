"""What a client's telemetry counts of real calls: requests against attempts, failures
by kind, retries and failovers per provider, tokens in and out, the time to a stream's
first token, and concurrent requests kept apart."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from qwen_dev_cli.core import LLMClient, RateLimited, RetryPolicy, ServerError, StreamEnd
from qwen_dev_cli.core.types import Usage

from .fakes import FakeClock
from .scripted import Answer, ScriptedProvider

USER = [{"role": "user", "content": "hello"}]


def make_client(*providers: ScriptedProvider, clock: FakeClock, **kwargs: Any) -> LLMClient:
    options: dict[str, Any] = {"clock": clock, "sleep": clock.sleep, "rng": random.Random(3)}
    options.update(kwargs)
    return LLMClient(list(providers), **options)


async def test_a_retried_then_failed_over_request_is_one_request_of_many_attempts() -> None:
    clock = FakeClock()
    a = ScriptedProvider(
        "a", ServerError("boom", status_code=503), RateLimited("slow", status_code=429)
    )
    b = ScriptedProvider(
        "b", ServerError("down", status_code=500), Answer("hi", usage=Usage(7, 2, 9))
    )
    client = make_client(a, b, clock=clock, retry=RetryPolicy(max_retries=2))
    result = await client.chat(USER)
    assert (result.provider, result.attempts) == ("b", 4)
    metrics = client.get_metrics()
    assert (metrics["total_requests"], metrics["successful_requests"]) == (1, 1)
    assert metrics["success_rate"] == 100.0
    assert (metrics["total_attempts"], metrics["failed_attempts"]) == (4, 3)
    assert metrics["failures"]["5xx"] == 2
    assert metrics["failures"]["429"] == 1
    pa, pb = metrics["providers"]["a"], metrics["providers"]["b"]
    assert (pa["attempts"], pa["retries"], pa["requests"], pa["failovers"]) == (2, 1, 0, 2)
    assert (pb["attempts"], pb["retries"], pb["requests"], pb["request_successes"]) == (
        2,
        1,
        1,
        1,
    )
    assert (pb["input_tokens"], pb["output_tokens"]) == (7, 2)
    assert (metrics["input_tokens"], metrics["output_tokens"]) == (7, 2)
    assert metrics["retries"] == 1
    assert metrics["failovers"] == 2


async def test_a_stream_records_its_time_to_first_token() -> None:
    clock = FakeClock()
    a = ScriptedProvider("a", Answer("one two three"))
    client = make_client(a, clock=clock)
    async for event in client.stream(USER):
        if not isinstance(event, StreamEnd):
            clock.advance(0.25)  # each delta takes a while to be consumed
    metrics = client.get_metrics()
    assert metrics["p50_ttft_ms"] == 0  # the first delta came at once
    assert metrics["p50_latency_ms"] > 0
    assert metrics["histograms"]["ttft_ms"]["count"] == 1
    assert metrics["histograms"]["providers"]["a"]["ttft_ms"]["count"] == 1
    await client.chat(USER)  # no stream: no first token to time
    assert client.get_metrics()["histograms"]["ttft_ms"]["count"] == 1


async def test_concurrent_requests_count_their_own_retries() -> None:
    clock = FakeClock()
    a = ScriptedProvider("a", ServerError("x", status_code=503), default="ok")
    b = ScriptedProvider("b", default="ok")
    client = make_client(a, b, clock=clock, retry=RetryPolicy(max_retries=0))
    results = await asyncio.gather(*(client.chat(USER) for _ in range(4)))
    assert len(results) == 4
    metrics = client.get_metrics()
    assert metrics["total_requests"] == 4
    # One attempt on a failed and that request went to b: no request retried a provider.
    assert sum(row["retries"] for row in metrics["providers"].values()) == 0
    assert sum(row["requests"] for row in metrics["providers"].values()) == 4


async def test_an_abandoned_stream_is_not_a_request() -> None:
    clock = FakeClock()
    client = make_client(ScriptedProvider("a", Answer("one two three")), clock=clock)
    stream = client.stream(USER)
    async for _ in stream:
        break
    await stream.aclose()  # type: ignore[attr-defined]  # an async generator; typed as AsyncIterator
    assert client.get_metrics()["total_requests"] == 0
