"""The fault server does what it promises, checked over real sockets with plain httpx."""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from faultserver import (
    DEFAULT_TEXT,
    ChaosMix,
    FaultServer,
    FaultServerProcess,
    Outcome,
    count_completion_tokens,
    count_prompt_tokens,
)

TEXT = "one two three four five six"
MESSAGES = [
    {"role": "system", "content": "x" * 21},  # 21 + 20 = 41 chars -> 10 prompt tokens
    {"role": "user", "content": "y" * 20},
]
TRANSPORT_ERRORS = (httpx.RemoteProtocolError, httpx.ReadError, httpx.ConnectError)


def chat(stream: bool = False, **extra: Any) -> dict[str, Any]:
    return {"model": "fault-model", "messages": MESSAGES, "stream": stream, **extra}


def sse_data(raw: bytes) -> list[str]:
    """The data payloads of an SSE body, whatever its line endings."""
    text = raw.decode().replace("\r\n", "\n")
    payloads = []
    for event in text.split("\n\n"):
        for line in event.split("\n"):
            if line.startswith("data:"):
                payloads.append(line[5:].removeprefix(" "))
    return payloads


def chunks_of(raw: bytes) -> list[dict[str, Any]]:
    return [json.loads(p) for p in sse_data(raw) if p != "[DONE]"]


@pytest.fixture
async def srv() -> AsyncIterator[FaultServer]:
    async with FaultServer(text=TEXT) as server:
        yield server


@pytest.fixture
async def client(srv: FaultServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=srv.base_url, timeout=5) as c:
        yield c


async def stream_raw(client: httpx.AsyncClient, **extra: Any) -> tuple[httpx.Response, bytes]:
    async with client.stream("POST", "/chat/completions", json=chat(True, **extra)) as response:
        raw = b"".join([piece async for piece in response.aiter_raw()])
    return response, raw


# --------------------------------------------------------------------------- basics


async def test_ok_has_the_openai_shape_and_deterministic_usage(
    srv: FaultServer, client: httpx.AsyncClient
) -> None:
    response = await client.post(
        "/chat/completions", json=chat(), headers={"X-Trace": "abc", "Authorization": "Bearer k"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"id", "object", "created", "model", "choices", "usage"}
    assert body["object"] == "chat.completion"
    assert body["model"] == "fault-model"
    assert body["id"].startswith("chatcmpl-")
    assert isinstance(body["created"], int)
    assert body["choices"] == [
        {"index": 0, "message": {"role": "assistant", "content": TEXT}, "finish_reason": "stop"}
    ]
    assert body["usage"] == {"prompt_tokens": 10, "completion_tokens": 6, "total_tokens": 16}

    [record] = srv.requests
    assert (record.method, record.path, record.outcome, record.stream) == (
        "POST",
        "/v1/chat/completions",
        "ok",
        False,
    )
    assert record.headers["x-trace"] == "abc"
    assert record.headers["authorization"] == "Bearer k"
    assert record.json == chat()


def test_token_counting_rules() -> None:
    assert count_prompt_tokens([]) == 1
    assert count_prompt_tokens(MESSAGES) == 10
    parts = [{"role": "user", "content": [{"type": "text", "text": "z" * 8}, {"type": "image"}]}]
    assert count_prompt_tokens(parts) == 2
    assert count_completion_tokens("") == 1
    assert count_completion_tokens(" a  b\nc ") == 3
    assert count_completion_tokens(None, ['{"path": "x"}']) == 3


async def test_default_text_and_overrides(srv: FaultServer, client: httpx.AsyncClient) -> None:
    srv.configure(text=DEFAULT_TEXT)
    srv.script(
        Outcome.ok(),
        Outcome.ok("custom", headers={"x-ratelimit-remaining-requests": "7"}, usage={"x": 1}),
    )
    first = await client.post("/chat/completions", json=chat())
    assert first.json()["choices"][0]["message"]["content"] == DEFAULT_TEXT
    second = await client.post("/chat/completions", json=chat())
    assert second.headers["x-ratelimit-remaining-requests"] == "7"
    assert second.json()["choices"][0]["message"]["content"] == "custom"
    assert second.json()["usage"] == {
        "prompt_tokens": 10,
        "completion_tokens": 1,
        "total_tokens": 11,
        "x": 1,
    }


async def test_keep_alive_serves_many_requests_on_one_connection(
    srv: FaultServer, client: httpx.AsyncClient
) -> None:
    for _ in range(5):
        assert (await client.post("/chat/completions", json=chat())).status_code == 200
    assert srv.connections_total == 1
    assert {r.connection for r in srv.requests} == {1}


async def test_connection_close_is_honoured(srv: FaultServer, client: httpx.AsyncClient) -> None:
    response = await client.post("/chat/completions", json=chat(), headers={"Connection": "close"})
    assert response.headers["connection"] == "close"
    await client.post("/chat/completions", json=chat())
    assert srv.connections_total == 2


async def test_models_404_and_bad_request(srv: FaultServer, client: httpx.AsyncClient) -> None:
    models = (await client.get("/models")).json()
    assert models["object"] == "list"
    assert [m["id"] for m in models["data"]] == ["fault-model"]
    missing = await client.get("/nope")
    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == "not_found_error"
    bad = await client.post("/chat/completions", content=b"{oops")
    assert bad.status_code == 400
    assert [r.outcome for r in srv.requests] == ["models", "not_found", "bad_request"]


async def test_many_sequential_requests_are_all_answered(
    srv: FaultServer, client: httpx.AsyncClient
) -> None:
    # How fast: scripts/bench_fault_server.py (docs/benchmarks.md).
    statuses = [
        (await client.post("/chat/completions", json=chat())).status_code for _ in range(300)
    ]
    assert statuses == [200] * 300
    assert len(srv.requests) == 300
    assert srv.connections_total == 1


async def test_stop_closes_idle_and_hanging_connections() -> None:
    server = FaultServer(default=Outcome.hang())
    await server.start()
    async with httpx.AsyncClient(base_url=server.base_url, timeout=5) as c:
        pending = asyncio.create_task(c.post("/chat/completions", json=chat()))
        await asyncio.wait_for(server.received(1), 5)
        assert server.open_connections == 1
        started = time.perf_counter()
        await server.stop()
        assert time.perf_counter() - started < 1.0
        assert server.open_connections == 0
        with pytest.raises(TRANSPORT_ERRORS):
            await pending


async def test_held_requests_are_received_unanswered_until_released(
    srv: FaultServer, client: httpx.AsyncClient
) -> None:
    srv.hold()
    sent = [asyncio.create_task(client.post("/chat/completions", json=chat())) for _ in range(3)]
    arrived = await asyncio.wait_for(srv.received(3), 5)
    assert len(arrived) == 3
    assert [r.outcome for r in arrived] == ["", "", ""]  # no outcome chosen yet
    assert not any(task.done() for task in sent)
    srv.release()
    responses = await asyncio.gather(*sent)
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert [r.outcome for r in srv.requests] == ["ok", "ok", "ok"]
    assert await srv.received(2) == srv.requests[:2]  # at once: they have arrived


async def test_stop_drops_held_requests() -> None:
    server = FaultServer()
    await server.start()
    server.hold()
    async with httpx.AsyncClient(base_url=server.base_url, timeout=5) as c:
        pending = asyncio.create_task(c.post("/chat/completions", json=chat()))
        await asyncio.wait_for(server.received(1), 5)
        await server.stop()
        assert server.open_connections == 0
        with pytest.raises(TRANSPORT_ERRORS):
            await pending


# --------------------------------------------------------------------------- streaming


async def test_stream_shape_with_usage_chunk(client: httpx.AsyncClient) -> None:
    response, raw = await stream_raw(client, stream_options={"include_usage": True})
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["transfer-encoding"] == "chunked"
    payloads = sse_data(raw)
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    contents = [c["choices"][0]["delta"].get("content") for c in chunks[1:-2]]
    assert len(contents) == 6
    assert "".join(contents) == TEXT
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {"prompt_tokens": 10, "completion_tokens": 6, "total_tokens": 16}


async def test_stream_without_include_usage_has_no_usage_chunk(
    srv: FaultServer, client: httpx.AsyncClient
) -> None:
    srv.script(Outcome.ok(chunk_size=4))
    _, raw = await stream_raw(client)
    chunks = chunks_of(raw)
    assert all(c["choices"] for c in chunks)
    assert all("usage" not in c for c in chunks)
    deltas = [c["choices"][0]["delta"].get("content") or "" for c in chunks]
    assert deltas[1:-1] == ["one ", "two ", "thre", "e fo", "ur f", "ive ", "six"]
    assert srv.requests[0].stream is True


async def test_stream_tool_call_deltas_reassemble(
    srv: FaultServer, client: httpx.AsyncClient
) -> None:
    calls = [
        {"name": "read_file", "arguments": '{"path": "src/main.py"}'},
        {"name": "run", "arguments": '{"cmd": "pytest -q"}'},
    ]
    srv.script(Outcome.ok(tool_calls=calls))
    _, raw = await stream_raw(client)
    chunks = chunks_of(raw)
    assembled: dict[int, dict[str, str]] = {}
    pieces = 0
    for chunk in chunks:
        for delta in chunk["choices"][0]["delta"].get("tool_calls", []):
            slot = assembled.setdefault(delta["index"], {"id": "", "name": "", "arguments": ""})
            slot["id"] += delta.get("id", "")
            slot["name"] += delta.get("function", {}).get("name", "")
            slot["arguments"] += delta.get("function", {}).get("arguments", "")
            pieces += 1
    assert assembled == {
        0: {"id": "call_1", "name": "read_file", "arguments": calls[0]["arguments"]},
        1: {"id": "call_2", "name": "run", "arguments": calls[1]["arguments"]},
    }
    assert pieces >= 6  # arguments really arrive in several pieces
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


async def test_non_stream_tool_calls(srv: FaultServer, client: httpx.AsyncClient) -> None:
    srv.script(Outcome.ok(tool_calls=[{"name": "ls", "arguments": {"dir": "."}}]))
    choice = (await client.post("/chat/completions", json=chat())).json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    assert choice["message"]["tool_calls"] == [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "ls", "arguments": '{"dir": "."}'},
        }
    ]


@pytest.mark.parametrize(
    ("option", "present", "absent"),
    [
        ("keepalive", b": keep-alive\n\n", None),
        ("crlf", b"}\r\n\r\ndata: ", b"}\n\n"),
        ("no_space", b'data:{"id"', b"data: "),
        ("omit_done", None, b"[DONE]"),
    ],
)
async def test_stream_format_variants_show_in_raw_bytes(
    srv: FaultServer,
    client: httpx.AsyncClient,
    option: str,
    present: bytes | None,
    absent: bytes | None,
) -> None:
    srv.script(Outcome.from_json({"kind": "ok", option: True}))
    _, raw = await stream_raw(client)
    if present is not None:
        assert present in raw
    if absent is not None:
        assert absent not in raw
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks_of(raw)) == TEXT


async def test_split_utf8_cuts_a_character_across_reads(
    srv: FaultServer, client: httpx.AsyncClient
) -> None:
    srv.script(Outcome.ok("caf\u00e9 au lait", split_utf8=True))
    async with client.stream("POST", "/chat/completions", json=chat(True)) as response:
        pieces = [piece async for piece in response.aiter_raw()]
    assert any(piece.endswith(b"caf\xc3") for piece in pieces)
    text = "".join(
        c["choices"][0]["delta"].get("content") or "" for c in chunks_of(b"".join(pieces))
    )
    assert text == "caf\u00e9 au lait"


async def test_chunk_delay_spreads_events(srv: FaultServer, client: httpx.AsyncClient) -> None:
    srv.script(Outcome.ok("a b", chunk_delay=0.02))
    started = time.perf_counter()
    await stream_raw(client)
    assert time.perf_counter() - started >= 0.08  # 4 gaps between role, 2 deltas, finish, DONE


# --------------------------------------------------------------------------- error statuses


@pytest.mark.parametrize(
    "headers",
    [
        {"retry-after": "2"},
        {"retry-after-ms": "1500"},
        {"retry-after": email.utils.formatdate(time.time() + 3, usegmt=True)},
        {"x-should-retry": "false"},
    ],
)
async def test_rate_limited_with_each_retry_hint(
    srv: FaultServer, client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    srv.script(Outcome.rate_limited(retry_after=None, headers=headers))
    response = await client.post("/chat/completions", json=chat())
    assert response.status_code == 429
    for name, value in headers.items():
        assert response.headers[name] == value
    error = response.json()["error"]
    assert set(error) >= {"message", "type", "code"}
    assert error["code"] == "rate_limit_exceeded"
    assert srv.requests[0].outcome == "status"


async def test_status_outcomes(srv: FaultServer, client: httpx.AsyncClient) -> None:
    srv.script(
        Outcome.status(503, headers={"retry-after": "1"}),
        Outcome.context_length_exceeded(),
        {"kind": "status", "status": 529, "message": "busy"},
        Outcome.rate_limited(retry_after_ms="250"),
    )
    first = await client.post("/chat/completions", json=chat())
    assert (first.status_code, first.headers["retry-after"]) == (503, "1")
    assert first.json()["error"]["type"] == "server_error"
    second = await client.post("/chat/completions", json=chat())
    assert second.status_code == 400
    assert second.json()["error"]["code"] == "context_length_exceeded"
    third = await client.post("/chat/completions", json=chat())
    assert third.status_code == 529
    assert third.json()["error"]["message"] == "busy"
    fourth = await client.post("/chat/completions", json=chat())
    assert fourth.headers["retry-after"] == "1"
    assert fourth.headers["retry-after-ms"] == "250"
    assert srv.connections_total == 1  # error responses keep the connection


async def test_api_key_is_enforced() -> None:
    async with (
        FaultServer(require_api_key="sekret") as server,
        httpx.AsyncClient(base_url=server.base_url) as c,
    ):
        wrong = await c.post(
            "/chat/completions", json=chat(), headers={"Authorization": "Bearer x"}
        )
        assert wrong.status_code == 401
        assert wrong.json()["error"]["code"] == "invalid_api_key"
        right = await c.post(
            "/chat/completions", json=chat(), headers={"Authorization": "Bearer sekret"}
        )
        assert right.status_code == 200


# --------------------------------------------------------------------------- broken transports


async def test_reset_aborts_before_any_byte(srv: FaultServer, client: httpx.AsyncClient) -> None:
    srv.script(Outcome.reset())
    with pytest.raises(TRANSPORT_ERRORS):
        await client.post("/chat/completions", json=chat())
    assert (await client.post("/chat/completions", json=chat())).status_code == 200
    assert srv.connections_total == 2


async def test_hang_times_out_the_client(srv: FaultServer, client: httpx.AsyncClient) -> None:
    srv.script(Outcome.hang())
    with pytest.raises(httpx.ReadTimeout):
        await client.post("/chat/completions", json=chat(), timeout=0.1)
    assert srv.requests[0].outcome == "hang"


async def test_slow_first_byte_and_delay(srv: FaultServer, client: httpx.AsyncClient) -> None:
    srv.script(Outcome.slow_first_byte(0.1), Outcome.ok(delay=0.05))
    started = time.perf_counter()
    assert (await client.post("/chat/completions", json=chat())).status_code == 200
    assert time.perf_counter() - started >= 0.1
    with pytest.raises(httpx.ReadTimeout):
        await client.post("/chat/completions", json=chat(), timeout=0.01)


async def test_stream_cut_breaks_mid_body(srv: FaultServer, client: httpx.AsyncClient) -> None:
    srv.script(Outcome.stream_cut(after=2))
    received: list[str] = []

    async def read_stream() -> None:
        async with client.stream("POST", "/chat/completions", json=chat(True)) as response:
            assert response.status_code == 200
            async for line in response.aiter_lines():
                if line.startswith("data: "):
                    received.append(line)

    with pytest.raises(TRANSPORT_ERRORS):
        await read_stream()
    contents = [json.loads(line[6:])["choices"][0]["delta"].get("content") for line in received]
    assert contents == ["", "one", " two"]


async def test_stream_cut_without_streaming_truncates_the_body(
    srv: FaultServer, client: httpx.AsyncClient
) -> None:
    srv.script(Outcome.stream_cut())
    with pytest.raises(TRANSPORT_ERRORS):
        await client.post("/chat/completions", json=chat())


@pytest.mark.parametrize("then", ["close", "continue"])
async def test_garbage_in_stream(srv: FaultServer, client: httpx.AsyncClient, then: str) -> None:
    srv.script(Outcome.garbage(after=1, then=then))
    response, raw = await stream_raw(client)
    payloads = sse_data(raw)
    assert payloads[2] == "{not json!!"
    assert ("[DONE]" in payloads) is (then == "continue")
    assert (response.headers.get("connection") == "close") is (then == "close")
    assert (await client.post("/chat/completions", json=chat())).status_code == 200


async def test_garbage_without_streaming(srv: FaultServer, client: httpx.AsyncClient) -> None:
    srv.script(Outcome.garbage())
    response = await client.post("/chat/completions", json=chat())
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        response.json()


async def test_stream_error_event(srv: FaultServer, client: httpx.AsyncClient) -> None:
    srv.script(Outcome.stream_error(after=1, message="overloaded"))
    _, raw = await stream_raw(client)
    payloads = sse_data(raw)
    assert len(payloads) == 3
    assert json.loads(payloads[-1]) == {
        "error": {"message": "overloaded", "type": "server_error", "param": None, "code": 500}
    }


# --------------------------------------------------------------------------- rate limits


async def test_rpm_is_enforced_with_a_sliding_window() -> None:
    now = [1000.0]
    async with (
        FaultServer(rpm=2, clock=lambda: now[0]) as server,
        httpx.AsyncClient(base_url=server.base_url) as c,
    ):
        first = await c.post("/chat/completions", json=chat())
        assert first.headers["x-ratelimit-remaining-requests"] == "1"
        now[0] += 20
        assert (await c.post("/chat/completions", json=chat())).status_code == 200
        now[0] += 10.5
        limited = await c.post("/chat/completions", json=chat())
        assert limited.status_code == 429
        assert limited.headers["retry-after"] == "30"  # ceil(1000 + 60 - 1030.5)
        assert limited.json()["error"]["code"] == "rate_limit_exceeded"
        now[0] += 30
        assert (await c.post("/chat/completions", json=chat())).status_code == 200
        outcomes = [r.outcome for r in server.requests]
        assert outcomes == ["ok", "ok", "rate_limited", "ok"]


async def test_tpm_counts_prompt_and_max_tokens() -> None:
    now = [0.0]
    async with (
        FaultServer(tpm=100, clock=lambda: now[0]) as server,
        httpx.AsyncClient(base_url=server.base_url) as c,
    ):
        ok = await c.post("/chat/completions", json=chat(max_tokens=50))  # 10 + 50 tokens
        assert ok.headers["x-ratelimit-remaining-tokens"] == "40"
        now[0] += 5
        limited = await c.post("/chat/completions", json=chat(max_tokens=31))
        assert limited.status_code == 429
        assert limited.headers["retry-after"] == "55"
        assert limited.json()["error"]["type"] == "tokens"
        assert (await c.post("/chat/completions", json=chat(max_tokens=30))).status_code == 200


async def test_rate_limit_does_not_consume_the_script() -> None:
    async with (
        FaultServer(rpm=1) as server,
        httpx.AsyncClient(base_url=server.base_url) as c,
    ):
        server.script(Outcome.ok("first"), Outcome.ok("second"))
        await c.post("/chat/completions", json=chat())
        assert (await c.post("/chat/completions", json=chat())).status_code == 429
        server.reset()
        server.script(Outcome.ok("again"))
        again = await c.post("/chat/completions", json=chat())
        assert again.json()["choices"][0]["message"]["content"] == "again"


# --------------------------------------------------------------------------- chaos and control


async def test_chaos_is_seeded_and_mixes_outcomes() -> None:
    mix = ChaosMix(p429=0.3, p503=0.2, preset=0.1, seed=7)

    async def run() -> list[str]:
        async with (
            FaultServer(chaos=mix) as server,
            httpx.AsyncClient(base_url=server.base_url) as c,
        ):
            for _ in range(40):
                with contextlib.suppress(*TRANSPORT_ERRORS):
                    await c.post("/chat/completions", json=chat())
            return [r.outcome for r in server.requests]

    first, second = await run(), await run()
    assert first == second
    assert {"ok", "status", "reset"} <= set(first)


def test_outcome_json_round_trip_and_validation() -> None:
    outcome = Outcome.rate_limited(retry_after="3")
    assert Outcome.from_json(outcome.to_json()) == outcome
    assert outcome.to_json()["status"] == 429
    assert Outcome.from_json("hang") == Outcome.hang()
    with pytest.raises(ValueError, match="unknown outcome kind"):
        Outcome("explode")
    with pytest.raises(ValueError, match="unknown outcome option"):
        Outcome.from_json({"kind": "ok", "colour": "red"})
    with pytest.raises(ValueError, match="probabilities"):
        ChaosMix(p429=0.8, p503=0.5)


async def test_control_endpoints(srv: FaultServer, client: httpx.AsyncClient) -> None:
    control = srv.control_url
    script = [{"kind": "status", "status": 503}, "ok"]
    assert (await client.post(f"{control}/script", json=script)).json() == {"scripted": 2}
    assert (await client.post("/chat/completions", json=chat())).status_code == 503
    assert (await client.post("/chat/completions", json=chat())).status_code == 200

    log = (await client.get(f"{control}/requests")).json()
    assert [r["outcome"] for r in log] == ["status", "ok"]
    assert log[0]["json"]["messages"] == MESSAGES
    assert log[0]["headers"]["content-type"] == "application/json"

    config = await client.post(f"{control}/config", json={"default": {"kind": "status"}, "rpm": 5})
    assert config.json()["rpm"] == 5
    assert (await client.post("/chat/completions", json=chat())).status_code == 500
    await client.post(f"{control}/config", json={"chaos": {"p503": 1.0}})
    assert (await client.post("/chat/completions", json=chat())).status_code == 503

    await client.post(f"{control}/reset")
    assert (await client.get(f"{control}/requests")).json() == []
    stats = (await client.get(f"{control}/stats")).json()
    assert stats["connections"] == 1
    bad = await client.post(f"{control}/script", json=[{"kind": "nope"}])
    assert bad.status_code == 400


@pytest.mark.slow
async def test_fault_server_process_starts_serves_and_stops() -> None:
    async with FaultServerProcess(rpm=1000, text="from a child process") as proc:
        assert proc.port > 0
        proc.script(Outcome.status(503))
        async with httpx.AsyncClient(base_url=proc.base_url) as c:
            assert (await c.post("/chat/completions", json=chat())).status_code == 503
            answer = (await c.post("/chat/completions", json=chat())).json()
        assert answer["choices"][0]["message"]["content"] == "from a child process"
        assert [r["outcome"] for r in proc.requests()] == ["status", "ok"]
        proc.configure(default=Outcome.status(500))
        proc.reset()
        assert proc.stats()["requests"] == 0
        pid = proc.pid
    assert pid is not None
    assert proc.pid is None
    async with httpx.AsyncClient(base_url=proc.base_url, timeout=1) as c:
        with pytest.raises(httpx.ConnectError):
            await c.get("/models")


@pytest.mark.slow
def test_fault_server_process_sync_with_chaos() -> None:
    with FaultServerProcess(chaos=ChaosMix(p429=1.0, retry_after="4", seed=1)) as proc:
        response = httpx.post(f"{proc.base_url}/chat/completions", json=chat(), timeout=5)
    assert response.status_code == 429
    assert response.headers["retry-after"] == "4"
