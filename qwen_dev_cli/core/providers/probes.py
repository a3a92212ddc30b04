"""Is a provider usable? The checks ``qwen-dev doctor`` runs, one per way of knowing:
a one-token request to an HTTP endpoint, or, for an in-process model, whether its
runtime and model file are installed (without loading the model).

Each kind names its probe (:mod:`.kinds`). A probe never retries: a dead endpoint
costs one timeout, not a backoff schedule.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx

    from ..settings import ProviderSettings
    from .kinds import ProviderKindSpec

PROBE_MESSAGE = "Reply with the word ok."


@dataclass(frozen=True)
class Probed:
    """What a probe found out.

    Args:
        ok: it answered (or, in-process, everything it needs is installed).
        detail: what happened, in a few words (no secret in it).
        model: the model that answered, else the configured one.
        latency_ms: the probe's round trip, when a request was made.
        probed: ``False`` when it could not be tried (no key).
    """

    ok: bool
    detail: str
    model: str
    latency_ms: float | None = None
    probed: bool = True


async def probe_by_request(
    spec: ProviderKindSpec,
    settings: ProviderSettings,
    seconds: float,
    transport: httpx.AsyncBaseTransport | None,
) -> Probed:
    """Ask for one token, within ``seconds``; not tried without the API key it needs."""
    import asyncio
    import dataclasses

    from ..errors import LLMError
    from ..types import ChatRequest

    if settings.api_key_env and not settings.api_key:
        return Probed(
            False, f"not probed: export {settings.api_key_env}", settings.model, None, False
        )
    provider = spec.build(dataclasses.replace(settings, timeout=seconds), transport=transport)
    request = ChatRequest([{"role": "user", "content": PROBE_MESSAGE}], max_tokens=1)
    started = time.perf_counter()
    try:
        async with asyncio.timeout(seconds):
            reply = await provider.chat(request)
    except (LLMError, TimeoutError) as exc:
        latency = (time.perf_counter() - started) * 1000
        message = str(exc) or f"no answer within {seconds:g}s"
        return Probed(False, redact(message, settings.api_key), settings.model, latency)
    finally:
        await provider.aclose()
    latency = (time.perf_counter() - started) * 1000
    return Probed(True, "answers", reply.model or settings.model, latency)


async def probe_model_file(
    spec: ProviderKindSpec,
    settings: ProviderSettings,
    seconds: float,
    transport: httpx.AsyncBaseTransport | None,
) -> Probed:
    """Whether llama.cpp and the GGUF file are installed; the model is not loaded."""
    return model_file_state(settings)


def model_file_state(settings: ProviderSettings) -> Probed:
    """:func:`probe_model_file`'s finding: a lookup of the package and one ``stat``."""
    import importlib.util

    from .llama_cpp import INSTALL_HINT, default_model_path

    installed = importlib.util.find_spec("llama_cpp") is not None
    path = Path(settings.model_path).expanduser() if settings.model_path else default_model_path()
    found = path is not None and path.is_file()
    parts = [
        "llama-cpp installed" if installed else "llama-cpp missing",
        f"model file {path}" if found else "model file missing",
    ]
    ok = installed and found
    detail = ", ".join(parts) + ("" if ok else f"; {INSTALL_HINT}")
    return Probed(ok, detail, settings.model)


def redact(text: str, secret: str | None) -> str:
    """``text`` without ``secret``, by the client's redactor: placeholder keys ("x",
    "EMPTY") are not secrets, and masking them would mangle ordinary words."""
    from .bounds import Redactor

    return Redactor([secret])(text)
