"""Building providers from their settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .kinds import kind_of

if TYPE_CHECKING:
    import httpx

    from ..settings import ProviderSettings
    from .base import Provider


def build_provider(
    settings: ProviderSettings, *, transport: httpx.AsyncBaseTransport | None = None
) -> Provider:
    """The provider ``settings`` describe, built as its kind builds it (:mod:`.kinds`)."""
    return kind_of(settings).build(settings, transport=transport)
