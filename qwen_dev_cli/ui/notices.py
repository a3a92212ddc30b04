"""What to tell the user once at start-up about the providers in use."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..config import Settings


def offline_notice(settings: Settings) -> str | None:
    """One line when only in-process models will answer (no remote provider usable)."""
    active = settings.client.providers
    if not active or any(p.kind != "llama-cpp" for p in active):
        return None
    missing = [
        p.api_key_env
        for name, p in settings.providers.items()
        if name in settings.provider_order and p.api_key_env and not p.api_key
    ]
    why = f" (no API key set: {', '.join(missing)})" if missing else ""
    return (
        f"answering offline with the local model {active[0].model}{why}. "
        "It is small: for real work export a provider key, or run `qwen-dev config init`."
    )


def startup_notices(settings: Settings, *, verbose: bool) -> list[str]:
    """The offline notice always; the per-provider notes (skipped providers...) only when
    ``verbose`` (an interactive terminal), so scripts' stderr stays quiet."""
    notes = list(settings.notices) if verbose else []
    offline = offline_notice(settings)
    if offline:
        notes = [n for n in notes if "skipped" not in n]
        notes.append(offline)
    return notes
