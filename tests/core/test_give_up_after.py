"""One request has a time in all (``[retry] give_up_after``, default ten minutes):
attempts, retry sleeps, failovers and waits for a cool-down or budget all count against
it (issue 22, finding 13: a provider trickling a token every 5 s, retried, kept one
request alive about 40 minutes)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from qwen_dev_cli.core import (
    AllProvidersFailed,
    LLMClient,
    RateLimited,
    RateLimits,
    RetryPolicy,
    ServerError,
)

from .fakes import FakeClock
from .scripted import Answer, ScriptedProvider

USER = [{"role": "user", "content": "hello"}]


def make_client(*providers: ScriptedProvider, clock: FakeClock, **kwargs: Any) -> LLMClient:
    options: dict[str, Any] = {"clock": clock, "sleep": clock.sleep, "rng": random.Random(7)}
    options.update(kwargs)
    return LLMClient(list(providers), **options)


def test_the_default_is_ten_minutes_and_bounds_are_checked() -> None:
    assert RetryPolicy().give_up_after == 600.0
    with pytest.raises(ValueError, match="give_up_after"):
        RetryPolicy(give_up_after=0)


async def test_retries_stop_when_the_next_would_begin_past_the_time() -> None:
    clock = FakeClock()
    failing = ScriptedProvider("a", default=ServerError("boom", status_code=503))
    retry = RetryPolicy(max_retries=10, base_delay=100.0, max_delay=100.0, give_up_after=250.0)
    client = make_client(failing, clock=clock, retry=retry)
    with pytest.raises(AllProvidersFailed, match=r"gave up after 250s in all .* 3 attempts"):
        await client.chat(USER)
    assert failing.calls == 3  # not 11: the fourth would have begun past 250 s
    assert clock.now < 250.0


async def test_a_cool_down_longer_than_the_time_left_is_not_waited_for() -> None:
    clock = FakeClock()
    limited = ScriptedProvider("a", RateLimited("slow down", retry_after=50.0), "late")
    retry = RetryPolicy(max_retries=3, max_retry_after=100.0, give_up_after=30.0)
    client = make_client(limited, clock=clock, retry=retry)
    with pytest.raises(AllProvidersFailed):
        await client.chat(USER)
    assert clock.sleeps == []  # it did not sleep 50 s of a 30 s budget
    assert limited.calls == 1


def one_a_minute(clock: FakeClock) -> tuple[ScriptedProvider, LLMClient]:
    """A provider allowing one request a minute, and requests of 20 s in all."""
    busy = ScriptedProvider("a", default="ok")
    client = make_client(
        busy,
        clock=clock,
        retry=RetryPolicy(max_retries=0, give_up_after=20.0),
        rate_limits=RateLimits(requests_per_minute=1),
    )
    return busy, client


async def test_waiting_for_budget_stops_at_the_time() -> None:
    clock = FakeClock()
    busy, client = one_a_minute(clock)
    assert (await client.chat(USER)).text == "ok"  # the minute's one request
    clock.advance(5.0)
    # The budget frees in 56 s, after the request's 20: no use waiting for it at all.
    with pytest.raises(AllProvidersFailed, match=r"budget frees in 56s, past the request's"):
        await client.chat(USER)
    assert clock.sleeps == []
    assert busy.calls == 1


async def test_waiting_for_budget_that_frees_in_time() -> None:
    clock = FakeClock()
    busy, client = one_a_minute(clock)
    assert (await client.chat(USER)).text == "ok"
    clock.advance(50.0)  # the budget frees in 11 s, within the request's 20
    assert (await client.chat(USER)).text == "ok"
    assert sum(clock.sleeps) == pytest.approx(11.0)
    assert busy.calls == 2


async def test_an_attempt_gets_only_the_time_left() -> None:
    clock = FakeClock()
    slow = ScriptedProvider("a", ServerError("boom", status_code=503), Answer("done"))
    retry = RetryPolicy(max_retries=1, base_delay=5.0, max_delay=5.0, give_up_after=100.0)
    client = make_client(slow, clock=clock, retry=retry)
    dispatcher = client._dispatcher
    seen: list[float] = []
    original = dispatcher._bounded

    def spy(call: Any) -> Any:
        bounded = original(call)
        seen.append(bounded.stream_deadline)
        return bounded

    dispatcher._bounded = spy  # type: ignore[method-assign]  # watching one private step
    assert (await client.chat(USER)).text == "done"
    first, second = seen
    assert first == pytest.approx(100.0)
    assert second == pytest.approx(100.0 - clock.sleeps[0])  # the sleep counted
