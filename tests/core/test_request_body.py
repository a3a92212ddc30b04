"""A huge request's body is encoded a piece at a time (``core/providers/body.py``) and
the server receives exactly ``json.dumps(body)``: checked on a real loopback server
that keeps the raw bytes, through the client's retry after a 503."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from qwen_dev_cli.core import LLMClient, OpenAICompatProvider, RetryPolicy
from qwen_dev_cli.core.providers import body as body_module
from qwen_dev_cli.core.providers.body import STREAM_AT, JsonBody, blocks, encode

from .fakes import FakeClock as Clock

#: Text that is not ASCII: accents, CJK, an astral emoji (a surrogate pair escaped),
#: control characters, quotes and backslashes, a lone surrogate.
ODD = 'é中😀\u2028\x00\x1f"\\\n\t\ud800z'


def _text(rng: random.Random, chars: int) -> str:
    alphabet = [*ODD, "a", "b", " ", "<", "/"]
    return "".join(rng.choices(alphabet, k=chars))


def _value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(9 if depth < 3 else 5)
    if kind == 0:
        return _text(rng, rng.randrange(0, 40))
    if kind == 1:
        return rng.randrange(-(10**12), 10**12)
    if kind == 2:
        return rng.choice([0.1, -2.5e-300, 1e300, 3.0, float("nan"), float("inf")])
    if kind == 3:
        return rng.choice([True, False, None])
    if kind == 4:
        return _text(rng, rng.randrange(70_000, 140_000))  # crosses slice boundaries
    if kind in (5, 6):
        return {_text(rng, rng.randrange(0, 6)): _value(rng, depth + 1) for _ in range(4)}
    if kind == 7:
        return [_value(rng, depth + 1) for _ in range(rng.randrange(0, 4))]
    return ({}, [], (), ("a", 1))[rng.randrange(4)]


@pytest.mark.parametrize("seed", range(6))
def test_blocks_are_json_dumps(seed: int) -> None:
    rng = random.Random(seed)
    body = {"model": "m", "messages": [{"role": "user", "content": _value(rng)}], "x": _value(rng)}
    expected = json.dumps(body).encode()
    assert b"".join(blocks(body)) == expected
    assert JsonBody(body).length == len(expected)


def test_odd_values_are_json_dumps() -> None:
    astral = "😀" * (body_module.SLICE_CHARS + 3)  # a pair at every slice edge
    values: list[Any] = [
        {1: "a", None: "b", 2.5: "c", False: "d"},  # keys json converts itself
        {"a": {}, "b": [], "c": ()},
        astral,
        "\ud83d" * 70_000,  # lone surrogates, escaped one by one
        "x" * body_module.SLICE_CHARS,
        "x" * (body_module.SLICE_CHARS + 1),
        "",
        [[[[]]]],
    ]
    for value in values:
        assert b"".join(blocks(value)) == json.dumps(value).encode()


def test_small_bodies_keep_the_bytes() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi é"}]}
    assert encode(body) == json.dumps(body).encode()
    huge = {"model": "m", "messages": [{"role": "user", "content": "a" * STREAM_AT}]}
    assert isinstance(encode(huge), JsonBody)


async def test_body_can_be_sent_twice() -> None:
    body = {"messages": [{"role": "user", "content": "é" * (STREAM_AT + 5)}]}
    stream = JsonBody(body)
    first = b"".join([block async for block in stream])
    second = b"".join([block async for block in stream])
    assert first == second == json.dumps(body).encode()
    assert max(len(b) for b in [block async for block in stream]) < 8 * body_module.BLOCK_BYTES


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class RawServer:
    """An OpenAI-compatible endpoint that keeps each request's raw bytes: the first
    request gets a 503, every later one an answer (SSE when asked to stream)."""

    received: list[Received] = field(default_factory=list)
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")[1:]
                headers = {
                    k.strip().lower(): v.strip()
                    for k, _, v in (line.partition(":") for line in lines if line)
                }
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self.received.append(Received(headers, body))
                writer.write(self._answer(len(self.received), json.loads(body)))
                await writer.drain()
        writer.close()

    def _answer(self, number: int, request: dict[str, Any]) -> bytes:
        if number == 1:
            payload = b'{"error": {"message": "busy", "type": "server_error"}}'
            return _response(503, "application/json", payload)
        message = {"role": "assistant", "content": "ok"}
        if not request.get("stream"):
            answer = {"choices": [{"index": 0, "message": message, "finish_reason": "stop"}]}
            return _response(200, "application/json", json.dumps(answer).encode())
        events = [
            {"choices": [{"index": 0, "delta": message}]},
            {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
        ]
        sse = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events)
        return _response(200, "text/event-stream", sse + b"data: [DONE]\n\n")


def _response(status: int, kind: str, payload: bytes) -> bytes:
    head = f"HTTP/1.1 {status} X\r\ncontent-type: {kind}\r\ncontent-length: {len(payload)}\r\n\r\n"
    return head.encode() + payload


@pytest.fixture
async def raw_server() -> AsyncIterator[RawServer]:
    srv = RawServer()
    server = await asyncio.start_server(srv.handle, "127.0.0.1", 0)
    srv.port = server.sockets[0].getsockname()[1]
    async with server:
        yield srv


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("size", [1000, STREAM_AT + 1000])
async def test_server_receives_json_dumps_after_a_retry(
    raw_server: RawServer, stream: bool, size: int
) -> None:
    rng = random.Random(size)
    messages: list[Any] = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": _text(rng, size)},
        {"role": "user", "content": "next 😀"},
    ]
    provider = OpenAICompatProvider(
        "raw", base_url=f"http://127.0.0.1:{raw_server.port}/v1", model="m", max_tokens=64
    )
    clock = Clock()
    client = LLMClient([provider], retry=RetryPolicy(max_retries=2), clock=clock, sleep=clock.sleep)
    try:
        if stream:
            chunks = [event async for event in client.stream(messages)]
            assert chunks
        else:
            result = await client.chat(messages)
            assert result.text == "ok"
    finally:
        await client.aclose()
    assert len(raw_server.received) == 2  # the 503, then the retry
    first, retry = (received.body for received in raw_server.received)
    sent = json.loads(first)
    assert sent["messages"] == messages
    assert sent.get("stream", False) is stream
    # Exactly the bytes json.dumps gives for what was sent, both times.
    assert first == retry == json.dumps(sent).encode()
    for received in raw_server.received:
        assert received.headers["content-length"] == str(len(first))
        assert "transfer-encoding" not in received.headers
