"""What the client needs of a provider: two calls and a close.

The resilience layers (breaker, limiter, retries, failover, telemetry) live in the
client and wrap every provider alike, so an HTTP endpoint and an in-process model
plug in the same way. A provider translates its own failures into the
:mod:`qwen_dev_cli.core.errors` tree and does no retrying of its own.

Two optional attributes say how tool calls travel: ``native_tools`` (send OpenAI
``tools``; a provider that does not say is given the text protocol, which any model
can follow) and ``tool_format`` (the text format its model family writes, passed to
the request's :class:`~qwen_dev_cli.core.types.TextTools`; default ``auto``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol, runtime_checkable

from ..types import ChatRequest, ProviderChunk, ProviderReply

#: The text format of a provider that sets no ``tool_format``.
AUTO_TOOL_FORMAT = "auto"


@runtime_checkable
class Provider(Protocol):
    """A model endpoint.

    ``name`` is the configured name (``sambanova``), ``model`` the model it serves,
    ``max_tokens`` its default completion cap (``None``: the server decides),
    ``context_window`` the tokens its model takes, prompt and answer together (what a
    conversation is compacted to fit)."""

    name: str
    model: str
    max_tokens: int | None

    @property
    def context_window(self) -> int: ...

    async def chat(self, request: ChatRequest) -> ProviderReply:
        """One complete answer."""
        ...

    def stream(self, request: ChatRequest) -> AsyncIterator[ProviderChunk]:
        """Text deltas as they are generated, then exactly one :class:`ProviderReply`
        holding the whole answer (text, tool calls, usage)."""
        ...

    async def aclose(self) -> None:
        """Release connections or model memory."""
        ...


def uses_native_tools(provider: object) -> bool:
    """Whether ``provider`` takes OpenAI ``tools`` (else: the text protocol)."""
    return bool(getattr(provider, "native_tools", False))


def tool_format_of(provider: object) -> str:
    """The text tool format configured for ``provider`` (``auto`` if none)."""
    value = getattr(provider, "tool_format", None)
    return value if isinstance(value, str) and value else AUTO_TOOL_FORMAT


def request_for(provider: Provider, request: ChatRequest) -> ChatRequest:
    """``request`` as ``provider`` takes it, for one attempt: as it is for a provider
    with native tools; for one without, rewritten by the request's ``text_tools`` (when
    it has tools and a renderer; else sent as it is, and ``tools`` are left out)."""
    if not request.tools or request.text_tools is None or uses_native_tools(provider):
        return request
    return request.text_tools.render(
        request, model=provider.model, tool_format=tool_format_of(provider)
    )
