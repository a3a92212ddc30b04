"""The client against hostile servers on loopback: every abuse ends in a typed error,
quickly and in bounded memory, and no echoed key reaches an error message."""

from __future__ import annotations

import asyncio
import resource

import pytest

from qwen_dev_cli.core import LLMClient, RetryPolicy, Timeouts
from qwen_dev_cli.core.errors import (
    AllProvidersFailed,
    AuthenticationError,
    BadRequestError,
    LLMError,
    MalformedResponse,
    Redirected,
    RequestTimeout,
    ResponseTooLarge,
    StreamInterrupted,
)
from qwen_dev_cli.core.providers.bounds import MiB, Redactor, ResponseLimits
from qwen_dev_cli.core.providers.openai_compat import OpenAICompatProvider
from tests.hostile_server import HostileServer

pytestmark = pytest.mark.slow

USER = [{"role": "user", "content": "hello"}]
KEY = "sk-live-0123456789abcdefghij"
SMALL = ResponseLimits(
    response_bytes=4 * MiB, line_chars=MiB, tool_argument_chars=256 * 1024, error_body_bytes=4096
)


def client_for(srv: HostileServer, attempt_deadline: float | None) -> LLMClient:
    provider = OpenAICompatProvider(
        "hostile", base_url=srv.base_url, model="m", api_key=KEY, timeout=10.0, limits=SMALL
    )
    timeouts = Timeouts(attempt=10.0, deadline=attempt_deadline)
    return LLMClient([provider], retry=RetryPolicy(max_retries=0), timeouts=timeouts)


async def ask(client: LLMClient, *, stream: bool) -> None:
    async with asyncio.timeout(30):
        if stream:
            async for _ in client.stream(USER):
                pass
        else:
            await client.chat(USER)


async def failure(
    mode: str, *, stream: bool = True, attempt_deadline: float | None = None
) -> Exception:
    async with HostileServer(mode) as srv:
        client = client_for(srv, attempt_deadline)
        try:
            with pytest.raises(LLMError) as info:
                await ask(client, stream=stream)
        finally:
            await client.aclose()
    assert KEY not in str(info.value)
    if isinstance(info.value, AllProvidersFailed):
        return info.value.failures[0].error
    return info.value  # a 400 is the request's fault: raised as it is


def cut_off(error: Exception) -> bool:
    """A limit's error; once text was shown it reaches the caller as an interrupted
    stream (the answer so far is void), still saying why."""
    return isinstance(error, ResponseTooLarge | StreamInterrupted) and "cut off" in str(error)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.mark.parametrize("mode", ["endless", "tool_flood"])
async def test_an_endless_stream_is_cut_off_at_the_response_limit(mode: str) -> None:
    before = peak_rss_mib()
    error = await failure(mode)
    assert cut_off(error)
    assert peak_rss_mib() - before < 200


async def test_a_line_that_never_ends_is_cut_off() -> None:
    error = await failure("long_line")
    assert cut_off(error)
    assert "line" in str(error)


async def test_a_gzip_bomb_stops_at_the_limit() -> None:
    before = peak_rss_mib()
    error = await failure("gzip_bomb", stream=False)
    assert cut_off(error)
    assert peak_rss_mib() - before < 300  # 1 GiB inflated would be far more


async def test_a_huge_error_body_is_read_only_as_far_as_its_message() -> None:
    error = await failure("huge_error", stream=False)
    assert isinstance(error, BadRequestError)
    assert len(error.message) < 400


async def test_a_key_echoed_by_a_gateway_never_reaches_the_message() -> None:
    error = await failure("echo_key")
    assert isinstance(error, AuthenticationError)
    assert KEY not in error.message
    assert "***" in error.message


async def test_deeply_nested_json_is_a_malformed_response_not_a_crash() -> None:
    error = await failure("deep_json")
    assert isinstance(error, MalformedResponse)


async def test_a_trickle_cannot_keep_an_attempt_alive_past_its_deadline() -> None:
    error = await failure("trickle", attempt_deadline=1.0)
    assert isinstance(error, RequestTimeout | StreamInterrupted)
    assert "longer than 1s" in str(error)


@pytest.mark.parametrize("stream", [True, False])
async def test_a_redirect_is_reported_as_one_and_not_followed(stream: bool) -> None:
    error = await failure("redirect", stream=stream)
    assert isinstance(error, Redirected)
    assert "evil.invalid" not in error.message


def test_redactor_takes_out_keys_and_bearer_tokens_but_not_placeholders() -> None:
    redact = Redactor([KEY, "EMPTY", "x", None])
    text = f"key {KEY} and Authorization: Bearer abcdefghijkl1234 and no answer within 10s"
    clean = redact(text)
    assert KEY not in clean
    assert "abcdefghijkl1234" not in clean
    assert "no answer within 10s" in clean  # "x" and "EMPTY" are not secrets
