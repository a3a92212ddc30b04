"""A streamed answer that does not begin in time fails over (a person is waiting), a
tool call streaming longer than the silence timeout is not silence, the status says
who is being waited for, and a failed attempt gives back the budget it did not use.
Real HTTP against the fault server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from faultserver import FaultServer, Outcome
from qwen_dev_cli.core import (
    AllProvidersFailed,
    LLMClient,
    ProviderSettings,
    RetryPolicy,
    RetryScheduled,
    StreamEnd,
    TextDelta,
    Timeouts,
)
from qwen_dev_cli.core import client as client_module
from qwen_dev_cli.core.settings import FIRST_BYTE_TIMEOUT

USER = [{"role": "user", "content": "hello there"}]
NO_RETRY = RetryPolicy(max_retries=0)


@pytest.fixture
async def alpha() -> AsyncIterator[FaultServer]:
    async with FaultServer() as srv:
        yield srv


@pytest.fixture
async def beta() -> AsyncIterator[FaultServer]:
    async with FaultServer() as srv:
        yield srv


def settings(srv: FaultServer, name: str, **kwargs: object) -> ProviderSettings:
    return ProviderSettings(name=name, model=f"{name}-m", base_url=srv.base_url, **kwargs)  # type: ignore[arg-type]  # keywords checked by the dataclass


def test_remote_providers_get_a_short_first_byte_deadline_and_local_ones_none() -> None:
    remote = ProviderSettings(name="a", model="m", base_url="https://api.example.com/v1")
    assert remote.first_byte_deadline() == FIRST_BYTE_TIMEOUT < remote.timeout
    # A model on this machine may take long to begin (loading, prefill on the same CPU):
    # restarting it would only start that work again.
    local = ProviderSettings(name="local", model="m", kind="llama-cpp")
    assert local.first_byte_deadline() is None
    for url in ("http://127.0.0.1:11434/v1", "http://localhost:8000/v1", "http://[::1]:80/v1"):
        assert ProviderSettings(name="o", model="m", base_url=url).first_byte_deadline() is None
    assert ProviderSettings(name="a", model="m", first_byte_timeout=5.0).first_byte_deadline() == 5


async def test_a_stream_that_does_not_begin_fails_over_at_the_first_byte_deadline(
    alpha: FaultServer, beta: FaultServer
) -> None:
    alpha.script(Outcome.hang())
    beta.script(Outcome.ok("from beta"))
    client = LLMClient(
        [
            settings(alpha, "alpha", timeout=30.0, first_byte_timeout=0.3),
            settings(beta, "beta", timeout=30.0),
        ],
        retry=NO_RETRY,
    )
    try:
        # Waiting the whole 30 s timeout would trip this bound: the deadline is what ends it.
        async with asyncio.timeout(10):
            text = [e.text async for e in client.stream(USER) if isinstance(e, TextDelta)]
    finally:
        await client.aclose()
    assert "".join(text) == "from beta"
    failovers = client.get_metrics()["failovers"]
    assert failovers == 1


async def test_the_timeout_message_says_the_answer_never_began(alpha: FaultServer) -> None:
    alpha.script(Outcome.hang())
    client = LLMClient([settings(alpha, "alpha", first_byte_timeout=0.2)], retry=NO_RETRY)
    try:
        with pytest.raises(AllProvidersFailed, match=r"no answer began within 0\.2s"):
            await asyncio.wait_for(drain(client), 10)
    finally:
        await client.aclose()


async def drain(client: LLMClient) -> None:
    async for _ in client.stream(USER):
        pass


@pytest.mark.slow  # two seconds of a real read timeout at work
async def test_a_tool_call_streaming_longer_than_the_timeout_is_not_silence(
    alpha: FaultServer,
) -> None:
    arguments = json.dumps({"path": "notes.txt", "content": "x " * 200})
    # Six events 0.35 s apart: two seconds of tool call, no answer text, no long gap.
    alpha.script(
        Outcome.ok(tool_calls=[{"name": "write_file", "arguments": arguments}], chunk_delay=0.35)
    )
    client = LLMClient([settings(alpha, "alpha")], timeouts=Timeouts(attempt=1.0), retry=NO_RETRY)
    try:
        events = [event async for event in client.stream(USER)]
    finally:
        await client.aclose()
    end = events[-1]
    assert isinstance(end, StreamEnd)
    calls = end.result.tool_calls
    assert [c.name for c in calls] == ["write_file"]
    assert json.loads(calls[0].arguments) == json.loads(arguments)


async def test_the_status_says_who_is_being_waited_for(
    alpha: FaultServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_module, "WAITING_SHOWN_AFTER", 0.1)
    alpha.script(Outcome.slow_first_byte(1.0, "late but here"))
    client = LLMClient([settings(alpha, "alpha", first_byte_timeout=5.0)], retry=NO_RETRY)
    seen: list[str | None] = []

    async def watch() -> None:
        while True:
            seen.append(client.status().activity)
            await asyncio.sleep(0.05)

    watcher = asyncio.create_task(watch())
    try:
        text = [e.text async for e in client.stream(USER) if isinstance(e, TextDelta)]
    finally:
        watcher.cancel()
        await client.aclose()
    assert "".join(text) == "late but here"
    waiting = [s for s in seen if s]
    assert waiting
    assert waiting[-1].startswith("alpha: no answer yet")
    assert "of 5s" in waiting[-1]
    assert client.status().activity is None


async def test_a_failed_attempt_gives_back_the_completion_it_reserved(alpha: FaultServer) -> None:
    alpha.script(Outcome.status(500), Outcome.rate_limited("0"))
    client = LLMClient(
        [settings(alpha, "alpha", tpm=100_000, max_tokens=4000)],
        retry=NO_RETRY,
        breaker=None,
    )
    try:
        for _ in range(2):
            with pytest.raises(Exception):  # noqa: B017, PT011  # any failure will do
                await client.chat(USER)
        status = await client.refresh_status()
    finally:
        await client.aclose()
    left = status.providers[0].tpm_left
    assert left is not None
    # The 500 counts its prompt (a few tokens), the 429 nothing; neither keeps the 4000
    # tokens reserved for an answer that never came.
    assert 100_000 - 50 < left < 100_000


async def test_a_retry_says_which_provider_failed_and_how(alpha: FaultServer) -> None:
    alpha.script(Outcome.status(503), Outcome.ok("fine"))
    client = LLMClient(
        [settings(alpha, "alpha")], retry=RetryPolicy(max_retries=1, base_delay=0.01)
    )
    events: list[object] = []
    client.subscribe(events.append)
    try:
        result = await client.chat(USER)
    finally:
        await client.aclose()
    assert result.text == "fine"
    retry = next(e for e in events if isinstance(e, RetryScheduled))
    assert retry.reason == "alpha: 503 unavailable"
