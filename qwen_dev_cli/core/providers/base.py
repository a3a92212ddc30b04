"""What the client needs of a provider: two calls and a close.

The resilience layers (breaker, limiter, retries, failover, telemetry) live in the
client and wrap every provider alike, so an HTTP endpoint and an in-process model
plug in the same way. A provider translates its own failures into the
:mod:`qwen_dev_cli.core.errors` tree and does no retrying of its own."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol, runtime_checkable

from ..types import ChatRequest, ProviderChunk, ProviderReply


@runtime_checkable
class Provider(Protocol):
    """A model endpoint.

    ``name`` is the configured name (``sambanova``), ``model`` the model it serves,
    ``max_tokens`` its default completion cap (``None``: the server decides)."""

    name: str
    model: str
    max_tokens: int | None

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
