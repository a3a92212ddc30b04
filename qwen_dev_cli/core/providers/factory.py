"""Building providers from their settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ProviderSetupError
from ..settings import DEFAULT_CONTEXT_WINDOW, ProviderSettings
from .openai_compat import OpenAICompatProvider

if TYPE_CHECKING:
    import httpx

    from .base import Provider


def build_provider(
    settings: ProviderSettings, *, transport: httpx.AsyncBaseTransport | None = None
) -> Provider:
    if settings.kind == "llama-cpp":
        # Cheap: llama.cpp itself is imported, and the model loaded, on first use.
        from .llama_cpp import LlamaCppProvider

        return LlamaCppProvider.from_settings(settings)
    if not settings.base_url:
        raise ProviderSetupError("base_url is not set", provider=settings.name)
    return OpenAICompatProvider(
        settings.name,
        base_url=settings.base_url,
        model=settings.model,
        api_key=settings.api_key,
        timeout=settings.timeout,
        native_tools=settings.native_tools,
        tool_format=settings.tool_format,
        max_tokens=settings.max_tokens,
        context_window=settings.context_window or DEFAULT_CONTEXT_WINDOW,
        transport=transport,
    )
