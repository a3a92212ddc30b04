"""Any OpenAI-compatible ``/chat/completions`` endpoint over one pooled ``httpx.AsyncClient``:
SambaNova, the Hugging Face router, Ollama, vLLM, llama.cpp's server, LM Studio..."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx

from ..errors import MalformedResponse, ProviderError, StreamInterrupted, mid_answer
from ..headers import parse_rate_limit_headers
from ..sse import SSEDecoder
from ..types import ChatRequest, ProviderChunk, ProviderReply, TextDelta
from .assembler import StreamAssembler, reply_from_body
from .http_errors import error_from_exception, error_from_status

# Enough for 200 concurrent streams without queueing on the pool.
DEFAULT_LIMITS = httpx.Limits(max_connections=256, max_keepalive_connections=64)


class OpenAICompatProvider:
    """An OpenAI-compatible chat endpoint.

    Args:
        name: the configured name, used in errors and telemetry.
        base_url: up to and including ``/v1``.
        model: sent as ``model`` in every request.
        api_key: sent as a bearer token when given.
        timeout: seconds for connect, read (per chunk while streaming), write and pool.
        native_tools: send ``tools``; when false the caller describes tools in text.
        max_tokens: default ``max_tokens`` of each request.
        transport: an ``httpx.AsyncBaseTransport`` (``httpx.MockTransport`` in tests).
        headers: extra headers for every request.
    """

    def __init__(
        self,
        name: str,
        *,
        base_url: str,
        model: str,
        api_key: str | None = None,
        timeout: float = 60.0,
        native_tools: bool = True,
        max_tokens: int | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.model = model
        self.native_tools = native_tools
        self.max_tokens = max_tokens
        all_headers = {"accept": "application/json", **(headers or {})}
        if api_key:
            all_headers["authorization"] = f"Bearer {api_key}"
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers=all_headers,
            timeout=httpx.Timeout(timeout),
            limits=DEFAULT_LIMITS,
            transport=transport,
        )

    def __repr__(self) -> str:  # never shows the key
        return f"OpenAICompatProvider({self.name!r}, model={self.model!r})"

    def body(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        """The JSON body for ``request``."""
        body: dict[str, Any] = {"model": self.model, "messages": request.messages}
        if request.tools and self.native_tools:
            body["tools"] = request.tools
        max_tokens = request.max_tokens or self.max_tokens
        if max_tokens:
            body["max_tokens"] = max_tokens
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return body

    async def chat(self, request: ChatRequest) -> ProviderReply:
        payload = json.dumps(self.body(request, stream=False)).encode()
        try:
            response = await self._http.post("/chat/completions", content=payload, headers=_JSON)
        except httpx.RequestError as exc:
            raise error_from_exception(exc, provider=self.name) from exc
        if response.status_code >= 400:
            raise error_from_status(
                response.status_code, response.headers, response.content, provider=self.name
            )
        try:
            body = json.loads(response.content)
        except ValueError as exc:
            raise MalformedResponse(
                f"response is not JSON (HTTP {response.status_code})", provider=self.name
            ) from exc
        return reply_from_body(
            body,
            provider=self.name,
            model=self.model,
            rate_limit=parse_rate_limit_headers(response.headers),
        )

    async def stream(self, request: ChatRequest) -> AsyncIterator[ProviderChunk]:
        payload = json.dumps(self.body(request, stream=True)).encode()
        assembler = StreamAssembler(self.name, self.model)
        http_request = self._http.build_request(
            "POST", "/chat/completions", content=payload, headers=_SSE
        )
        try:
            response = await self._http.send(http_request, stream=True)
        except httpx.RequestError as exc:
            raise error_from_exception(exc, provider=self.name) from exc
        try:
            if response.status_code >= 400:
                body = await _read_error_body(response)
                raise error_from_status(
                    response.status_code, response.headers, body, provider=self.name
                )
            decoder = SSEDecoder()
            async for raw in response.aiter_bytes():
                for event in decoder.feed(raw):
                    text = assembler.feed(event.data)
                    if text:
                        yield TextDelta(text)
                if assembler.done:
                    break
            if not assembler.done:
                for event in decoder.flush():
                    text = assembler.feed(event.data)
                    if text:
                        yield TextDelta(text)
        except httpx.RequestError as exc:
            error = error_from_exception(exc, provider=self.name)
            raise (mid_answer(error) if assembler.started else error) from exc
        except ProviderError as exc:
            if assembler.started:
                raise mid_answer(exc) from exc
            raise
        finally:
            await response.aclose()
        if not assembler.complete:
            raise StreamInterrupted(
                "stream ended before the answer was complete",
                provider=self.name,
                after_first_token=assembler.started,
            )
        yield assembler.reply(parse_rate_limit_headers(response.headers))

    async def aclose(self) -> None:
        await self._http.aclose()


_JSON = {"content-type": "application/json"}
_SSE = {"content-type": "application/json", "accept": "text/event-stream"}


async def _read_error_body(response: httpx.Response) -> bytes:
    try:
        return await response.aread()
    except httpx.RequestError:
        return b""
