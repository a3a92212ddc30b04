"""The OpenAI-compatible provider and the client against the fault server: real sockets,
real HTTP, every failure the wire can produce."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator
from email.utils import formatdate
from typing import Any

import pytest

from faultserver import DEFAULT_TEXT, FaultServer, Outcome
from qwen_dev_cli.core import (
    AllProvidersFailed,
    AuthenticationError,
    BadRequestError,
    ConnectionFailed,
    ContextLengthExceeded,
    LLMClient,
    MalformedResponse,
    NotFoundError,
    OpenAICompatProvider,
    Overloaded,
    ProviderError,
    RateLimited,
    RequestTimeout,
    RetryPolicy,
    ServerError,
    StreamEnd,
    StreamInterrupted,
    StreamRestart,
    TextDelta,
)
from qwen_dev_cli.core.types import ChatRequest, ProviderReply

from .fakes import FakeClock as Clock

USER = [{"role": "user", "content": "hello there"}]
REQUEST = ChatRequest(USER)


@pytest.fixture
async def server() -> AsyncIterator[FaultServer]:
    async with FaultServer() as srv:
        yield srv


def provider_for(srv: FaultServer, name: str = "fault", **kwargs: Any) -> OpenAICompatProvider:
    return OpenAICompatProvider(name, base_url=srv.base_url, model="fault-model", **kwargs)


def first_body(srv: FaultServer) -> dict[str, Any]:
    body = srv.requests[0].json
    assert isinstance(body, dict)
    return body


async def collect(provider: OpenAICompatProvider) -> tuple[str, ProviderReply]:
    text = []
    reply = None
    async for chunk in provider.stream(REQUEST):
        if isinstance(chunk, TextDelta):
            text.append(chunk.text)
        else:
            reply = chunk
    assert reply is not None
    return "".join(text), reply


async def provider_chat(provider: OpenAICompatProvider) -> ProviderReply:
    return await provider.chat(REQUEST)


# --- the provider on its own ------------------------------------------------------------


async def test_chat_returns_text_usage_and_model(server: FaultServer) -> None:
    provider = provider_for(server, api_key="sk-test")
    reply = await provider.chat(REQUEST)
    await provider.aclose()
    assert reply.text == DEFAULT_TEXT
    assert reply.usage is not None
    assert reply.usage.completion_tokens == len(DEFAULT_TEXT.split())
    assert reply.finish_reason == "stop"
    sent = server.requests[0]
    assert sent.headers["authorization"] == "Bearer sk-test"
    assert sent.json is not None
    assert sent.json["messages"] == USER


async def test_requests_share_one_connection(server: FaultServer) -> None:
    provider = provider_for(server)
    for _ in range(5):
        await provider.chat(REQUEST)
    await provider.aclose()
    assert server.connections_total == 1


@pytest.mark.parametrize(
    "variant",
    [
        {},
        {"keepalive": True},
        {"crlf": True},
        {"no_space": True},
        {"omit_done": True},
        {"split_utf8": True, "chunk_size": 3},
    ],
)
async def test_stream_variants_give_the_same_answer(
    server: FaultServer, variant: dict[str, Any]
) -> None:
    server.script(Outcome.ok(**variant))
    provider = provider_for(server)
    text, reply = await collect(provider)
    await provider.aclose()
    assert text == reply.text
    assert text.startswith(DEFAULT_TEXT)
    assert reply.usage is not None  # from the include_usage chunk
    assert first_body(server)["stream_options"] == {"include_usage": True}


async def test_streamed_tool_call_deltas_are_assembled_by_index(server: FaultServer) -> None:
    calls = [
        {"name": "read_file", "arguments": json.dumps({"path": "src/app.py"})},
        {"name": "grep", "arguments": json.dumps({"pattern": "def main", "path": "."})},
    ]
    server.script(Outcome.ok(tool_calls=calls))
    provider = provider_for(server)
    _, reply = await collect(provider)
    await provider.aclose()
    assert [(c.name, json.loads(c.arguments)) for c in reply.tool_calls] == [
        ("read_file", {"path": "src/app.py"}),
        ("grep", {"pattern": "def main", "path": "."}),
    ]
    assert reply.finish_reason == "tool_calls"


async def test_non_streamed_tool_calls(server: FaultServer) -> None:
    server.script(Outcome.ok(tool_calls=[{"name": "list_dir", "arguments": '{"path": "."}'}]))
    provider = provider_for(server)
    reply = await provider.chat(ChatRequest(USER, tools=[{"type": "function"}]))
    await provider.aclose()
    assert reply.tool_calls[0].name == "list_dir"
    assert first_body(server)["tools"] == [{"type": "function"}]


async def test_text_tool_protocol_provider_does_not_send_tools(server: FaultServer) -> None:
    provider = provider_for(server, native_tools=False)
    await provider.chat(ChatRequest(USER, tools=[{"type": "function"}]))
    await provider.aclose()
    assert "tools" not in first_body(server)


@pytest.mark.parametrize(
    ("outcome", "error", "retryable"),
    [
        (Outcome.status(500), ServerError, True),
        (Outcome.status(502), ServerError, True),
        (Outcome.status(529), Overloaded, True),
        (Outcome.status(408), RequestTimeout, True),
        (Outcome.status(401), AuthenticationError, False),
        (Outcome.status(403), AuthenticationError, False),
        (Outcome.status(404), NotFoundError, False),
        (Outcome.status(400), BadRequestError, False),
        (Outcome.status(422), BadRequestError, False),
        (Outcome.context_length_exceeded(), ContextLengthExceeded, False),
        (Outcome.status(503, headers={"x-should-retry": "false"}), ServerError, False),
    ],
)
async def test_statuses_become_typed_errors(
    server: FaultServer, outcome: Outcome, error: type[ProviderError], retryable: bool
) -> None:
    for call in (provider_chat, collect):
        server.script(outcome)
        provider = provider_for(server)
        with pytest.raises(error) as info:
            await call(provider)
        await provider.aclose()
        assert info.value.retryable is retryable
        assert info.value.provider == "fault"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "3"}, 3.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after": formatdate(0, usegmt=True)}, 0.0),  # a date in the past
    ],
)
async def test_rate_limit_carries_retry_after(
    server: FaultServer, headers: dict[str, str], expected: float
) -> None:
    server.script(Outcome.status(429, headers=headers))
    provider = provider_for(server)
    with pytest.raises(RateLimited) as info:
        await provider.chat(REQUEST)
    await provider.aclose()
    assert info.value.retry_after == pytest.approx(expected)


async def test_reset_before_any_byte_is_a_connection_failure(server: FaultServer) -> None:
    server.script(Outcome.reset(), Outcome.reset())
    provider = provider_for(server)
    with pytest.raises(ConnectionFailed):
        await provider.chat(REQUEST)
    with pytest.raises(ConnectionFailed):
        await collect(provider)
    await provider.aclose()


async def test_hang_is_a_timeout(server: FaultServer) -> None:
    server.script(Outcome.hang())
    provider = provider_for(server, timeout=0.2)
    with pytest.raises(RequestTimeout):
        await provider.chat(REQUEST)
    await provider.aclose()


async def test_stream_cut_mid_answer_is_interrupted_after_first_token(server: FaultServer) -> None:
    server.script(Outcome.stream_cut(after=2))
    provider = provider_for(server)
    with pytest.raises(StreamInterrupted) as info:
        await collect(provider)
    await provider.aclose()
    assert info.value.after_first_token
    assert info.value.retryable


async def test_garbage_sse_is_malformed_before_the_first_token(server: FaultServer) -> None:
    server.script(Outcome.garbage(after=0), Outcome.garbage(after=2))
    provider = provider_for(server)
    with pytest.raises(MalformedResponse):
        await collect(provider)
    with pytest.raises(StreamInterrupted):
        await collect(provider)
    await provider.aclose()


async def test_non_json_body_is_malformed(server: FaultServer) -> None:
    server.script(Outcome.garbage())
    provider = provider_for(server)
    with pytest.raises(MalformedResponse):
        await provider.chat(REQUEST)
    await provider.aclose()


async def test_error_event_mid_stream(server: FaultServer) -> None:
    server.script(Outcome.stream_error(after=0), Outcome.stream_error(after=2))
    provider = provider_for(server)
    with pytest.raises(ServerError) as before:
        await collect(provider)
    assert not isinstance(before.value, StreamInterrupted)
    with pytest.raises(StreamInterrupted):
        await collect(provider)
    await provider.aclose()


async def test_unreachable_server_is_connection_failure() -> None:
    provider = OpenAICompatProvider("gone", base_url="http://127.0.0.1:9/v1", model="m")
    with pytest.raises(ConnectionFailed):
        await provider.chat(REQUEST)
    await provider.aclose()


# --- the client over HTTP ---------------------------------------------------------------


async def test_client_recovers_from_each_transient_fault(server: FaultServer) -> None:
    clock = Clock()
    server.script(
        Outcome.rate_limited("1"),
        Outcome.status(503),
        Outcome.reset(),
        Outcome.status(529),
    )
    client = LLMClient(
        [provider_for(server)],
        retry=RetryPolicy(max_retries=4),
        clock=clock,
        sleep=clock.sleep,
        rng=random.Random(1),
    )
    result = await client.chat(USER)
    await client.aclose()
    assert result.text == DEFAULT_TEXT
    assert result.attempts == 5
    assert len(clock.sleeps) == 4
    assert clock.sleeps[0] >= 1.0  # Retry-After honoured as a floor


async def test_client_streams_with_restart_after_cut(server: FaultServer) -> None:
    clock = Clock()
    server.script(Outcome.stream_cut(after=3))
    client = LLMClient([provider_for(server)], clock=clock, sleep=clock.sleep)
    shown: list[str] = []
    restarts = 0
    async for event in client.stream(USER):
        if isinstance(event, TextDelta):
            shown.append(event.text)
        elif isinstance(event, StreamRestart):
            restarts += 1
            shown.clear()
        elif isinstance(event, StreamEnd):
            final = event.result
    await client.aclose()
    assert restarts == 1
    assert "".join(shown) == final.text == DEFAULT_TEXT
    assert final.attempts == 2


async def test_client_fails_over_between_two_servers() -> None:
    async with FaultServer(default=Outcome.status(503)) as sick, FaultServer() as healthy:
        clock = Clock()
        client = LLMClient(
            [provider_for(sick, "sick"), provider_for(healthy, "healthy")],
            clock=clock,
            sleep=clock.sleep,
        )
        for _ in range(4):
            assert (await client.chat(USER)).provider == "healthy"
        tried = len(sick.requests)
        # Demoted by its record (or its breaker) before the threshold of 5...
        assert 1 <= tried <= 5
        for _ in range(4):
            assert (await client.chat(USER)).provider == "healthy"
        await client.aclose()
        # ...and then left alone: no more attempts, no sleeping.
        assert len(sick.requests) == tried
        assert clock.sleeps == []


async def test_server_rate_limit_headers_tighten_the_client_budget() -> None:
    async with FaultServer(rpm=3) as srv:
        clock = Clock()
        client = LLMClient([provider_for(srv)], clock=clock, sleep=clock.sleep)
        for _ in range(3):
            await client.chat(USER)
        status = client.status().providers[0]
        assert status.rpm_left == 0  # learned from x-ratelimit-remaining-requests
        await client.aclose()


async def test_server_side_rpm_429_is_honoured() -> None:
    async with FaultServer(rpm=2) as srv:
        clock = Clock()
        # No client-side budget: the server's 429 and Retry-After do the pacing.
        client = LLMClient(
            [provider_for(srv)],
            rate_limits=None,
            clock=clock,
            sleep=clock.sleep,
            retry=RetryPolicy(max_retry_after=120),
        )
        await client.chat(USER)
        await client.chat(USER)
        with pytest.raises(AllProvidersFailed) as info:
            await client.chat(USER)
        await client.aclose()
    # The fake clock does not move the server's real window: every retry is refused.
    assert any(isinstance(f.error, RateLimited) for f in info.value.failures)
    assert clock.sleeps
    assert min(clock.sleeps) > 1.0
