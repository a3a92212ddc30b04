"""Any OpenAI-compatible ``/chat/completions`` endpoint over one pooled ``httpx.AsyncClient``:
SambaNova, the Hugging Face router, Ollama, vLLM, llama.cpp's server, LM Studio..."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from ..errors import (
    MalformedResponse,
    ProviderError,
    ResponseTooLarge,
    StreamInterrupted,
    mid_answer,
)
from ..headers import parse_rate_limit_headers
from ..settings import DEFAULT_CONTEXT_WINDOW
from ..sse import SSEDecoder
from ..types import ChatRequest, ProviderChunk, ProviderReply, RateLimitHeaders, TextDelta
from .assembler import StreamAssembler, loads_reply, reply_from_body
from .body import encode
from .bounds import DEFAULT_RESPONSE_LIMITS, ByteBudget, Redactor, ResponseLimits
from .http_errors import error_from_exception, error_from_status

if TYPE_CHECKING:
    from .kinds import RateLimitDialect

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
        tool_format: the text format of the model's calls when ``native_tools`` is
            false (see :class:`~qwen_dev_cli.core.settings.ProviderSettings`).
        max_tokens: default ``max_tokens`` of each request.
        context_window: the model's window in tokens, prompt and answer together (the
            server does not say; the configuration does).
        rate_limit_headers: reads the rate-limit headers of a response (its kind's
            dialect; ``None``: none are read).
        transport: an ``httpx.AsyncBaseTransport`` (``httpx.MockTransport`` in tests).
        headers: extra headers for every request.
        limits: how much a response may hold before it is cut off.
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
        tool_format: str = "auto",
        max_tokens: int | None = None,
        context_window: int = DEFAULT_CONTEXT_WINDOW,
        rate_limit_headers: RateLimitDialect | None = parse_rate_limit_headers,
        transport: httpx.AsyncBaseTransport | None = None,
        headers: Mapping[str, str] | None = None,
        limits: ResponseLimits = DEFAULT_RESPONSE_LIMITS,
    ) -> None:
        self.name = name
        self.limits = limits
        self._redact = Redactor([api_key])
        self.model = model
        self.native_tools = native_tools
        self.tool_format = tool_format
        self.max_tokens = max_tokens
        self.context_window = context_window
        self._rate_limits = rate_limit_headers
        all_headers = {"accept": "application/json", **(headers or {})}
        if api_key:
            all_headers["authorization"] = f"Bearer {api_key}"
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers=all_headers,
            timeout=httpx.Timeout(timeout),
            limits=DEFAULT_LIMITS,
            transport=transport,
            verify=_tls_for(base_url),
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
        http_request = self._request(self.body(request, stream=False), _JSON)
        try:
            response = await self._http.send(http_request, stream=True)
        except httpx.RequestError as exc:
            raise error_from_exception(exc, provider=self.name) from exc
        try:
            if response.status_code >= 300:
                raise self._status_error(response, await self._error_body(response))
            content = await self._read(response)
        except httpx.RequestError as exc:
            raise error_from_exception(exc, provider=self.name) from exc
        finally:
            await response.aclose()
        try:
            body = loads_reply(content)
        except (ValueError, RecursionError) as exc:
            raise MalformedResponse(
                f"response is not JSON (HTTP {response.status_code})", provider=self.name
            ) from exc
        try:
            return reply_from_body(
                body,
                provider=self.name,
                model=self.model,
                rate_limit=self._rate_limit(response),
            )
        except ProviderError as exc:
            raise self._scrubbed(exc) from None

    async def stream(self, request: ChatRequest) -> AsyncIterator[ProviderChunk]:
        limits = self.limits
        assembler = StreamAssembler(
            self.name,
            self.model,
            max_tool_arguments=limits.tool_argument_chars,
            ends_apart=request.ends_apart,
        )
        budget = ByteBudget(limits.response_bytes, self.name)
        http_request = self._request(self.body(request, stream=True), _SSE)
        try:
            response = await self._http.send(http_request, stream=True)
        except httpx.RequestError as exc:
            raise error_from_exception(exc, provider=self.name) from exc
        try:
            if response.status_code >= 300:
                raise self._status_error(response, await self._error_body(response))
            decoder = SSEDecoder()
            async for raw in response.aiter_bytes():
                budget.spend(len(raw))
                events = decoder.feed(raw)
                if decoder.pending_chars > limits.line_chars:
                    raise ResponseTooLarge(
                        f"one stream line longer than {limits.line_chars} characters: cut off",
                        provider=self.name,
                    )
                for event in events:
                    # Every event, text or not (a tool call's arguments, reasoning),
                    # shows the provider is alive; an empty delta carries just that.
                    yield TextDelta(assembler.feed(event.data) or "")
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
            exc = self._scrubbed(exc)
            if assembler.started:
                raise mid_answer(exc) from exc
            raise exc from None
        finally:
            await response.aclose()
        if not assembler.complete:
            raise StreamInterrupted(
                "stream ended before the answer was complete",
                provider=self.name,
                after_first_token=assembler.started,
            )
        yield assembler.reply(self._rate_limit(response))

    def _request(self, body: dict[str, Any], headers: dict[str, str]) -> httpx.Request:
        """The POST of ``body``: its bytes, or for a huge conversation the same bytes
        encoded a piece at a time as they are sent (:mod:`.body`), never whole."""
        payload = encode(body)
        if isinstance(payload, bytes):
            return self._http.build_request(
                "POST", "/chat/completions", content=payload, headers=headers
            )
        # An explicit Content-Length: httpx then sends no Transfer-Encoding.
        return self._http.build_request(
            "POST", "/chat/completions", content=payload, headers={**headers, **payload.headers}
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    def _rate_limit(self, response: httpx.Response) -> RateLimitHeaders | None:
        return None if self._rate_limits is None else self._rate_limits(response.headers)

    async def _read(self, response: httpx.Response) -> bytes:
        """The whole (decompressed) body, within the response limit."""
        budget = ByteBudget(self.limits.response_bytes, self.name)
        parts = []
        async for raw in response.aiter_bytes():
            budget.spend(len(raw))
            parts.append(raw)
        return b"".join(parts)

    async def _error_body(self, response: httpx.Response) -> bytes:
        """The start of an error body: enough for its message, never all of a huge one."""
        limit = self.limits.error_body_bytes
        parts: list[bytes] = []
        size = 0
        try:
            async for raw in response.aiter_bytes():
                parts.append(raw)
                size += len(raw)
                if size >= limit:
                    break
        except httpx.RequestError:
            pass
        return b"".join(parts)[:limit]

    def _status_error(self, response: httpx.Response, body: bytes) -> ProviderError:
        error = error_from_status(response.status_code, response.headers, body, provider=self.name)
        return self._scrubbed(error)

    def _scrubbed(self, error: ProviderError) -> ProviderError:
        """``error`` with any secret a server echoed taken out of its message."""
        clean = self._redact(error.message)
        if clean != error.message:
            error.message = clean
            error.args = (clean,)
        return error


_JSON = {"content-type": "application/json"}
_SSE = {"content-type": "application/json", "accept": "text/event-stream"}


def _tls_for(base_url: str) -> ssl.SSLContext | bool:
    """What verifies TLS for ``base_url``: the usual trust store for ``https``. A plain
    ``http`` endpoint (ollama, vLLM, llama.cpp's server on this machine) never uses one,
    and loading the CA bundle costs about 50 ms of every ``ask``; it gets a context that
    trusts nothing, so if TLS ever came into play there, every certificate is refused
    (redirects are not followed)."""
    if urlsplit(base_url).scheme.lower() == "http":
        return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    return True
