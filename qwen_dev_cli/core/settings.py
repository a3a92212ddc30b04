"""Frozen settings of the client layers. ``qwen_dev_cli.config`` builds them from TOML,
environment and flags; the client only reads them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal, get_args

JitterMode = Literal["proportional", "full"]
ProviderKind = Literal["openai", "llama-cpp"]
#: How a model without native tools writes its calls (the agent's formats, or ``auto``:
#: by model name).
ToolFormatSetting = Literal["auto", "hermes", "qwen3_coder"]
TOOL_FORMATS: Final[tuple[str, ...]] = get_args(ToolFormatSetting)

#: The context window assumed for an OpenAI-compatible server that does not say (tokens):
#: small enough for most local servers; ``context_window`` in the config overrides it.
DEFAULT_CONTEXT_WINDOW: Final = 8192
#: Seconds an HTTP provider's streamed answer may take to begin, unless configured: a
#: person is waiting, and a hung provider should cost this long, not a whole timeout,
#: before another is asked. Non-streamed calls (batch) wait the full ``timeout``.
FIRST_BYTE_TIMEOUT: Final = 20.0
#: The window the in-process model allocates (its ``n_ctx``) unless configured.
LOCAL_CONTEXT_WINDOW: Final = 8192


@dataclass(frozen=True)
class ProviderSettings:
    """One provider as configured.

    Args:
        name: the key under ``[providers.NAME]``.
        kind: ``openai`` for any OpenAI-compatible HTTP endpoint, ``llama-cpp`` in-process.
        base_url: e.g. ``https://api.sambanova.ai/v1`` (``openai`` kind only).
        model: the model name sent to the endpoint.
        api_key: resolved from ``api_key_env`` at load time; never printed.
        api_key_env: the variable the key came from, for messages.
        rpm, tpm: client-side budget per minute; ``None`` is unlimited.
        timeout: seconds per request (connect, read, write).
        first_byte_timeout: seconds a streamed answer may take to begin before the
            attempt fails over (``None``: :data:`FIRST_BYTE_TIMEOUT` for ``openai``, no
            shorter limit than ``timeout`` for ``llama-cpp``, whose wait is its own work).
        native_tools: send OpenAI ``tools``; false uses the text tool protocol.
        tool_format: on the text protocol, the format the model writes its calls in:
            ``hermes`` (``<tool_call>`` JSON), ``qwen3_coder`` (its XML) or ``auto``
            (chosen by the model's name).
        max_tokens: completion cap sent with each request; also the completion-token
            estimate the rate limiter reserves before the real usage is known.
        model_path: GGUF file for ``llama-cpp``.
        context_window: the model's context window in tokens (prompt and answer
            together); for ``llama-cpp`` also the ``n_ctx`` it allocates. ``None``:
            unknown (:data:`DEFAULT_CONTEXT_WINDOW` is assumed).
    """

    name: str
    model: str
    kind: ProviderKind = "openai"
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    api_key_env: str | None = None
    rpm: int | None = None
    tpm: int | None = None
    timeout: float = 60.0
    first_byte_timeout: float | None = None
    native_tools: bool = True
    tool_format: ToolFormatSetting = "auto"
    max_tokens: int | None = None
    model_path: str | None = None
    context_window: int | None = None

    def first_byte_deadline(self) -> float | None:
        """Seconds a streamed answer may take to begin (``None``: ``timeout``)."""
        if self.first_byte_timeout is not None:
            return self.first_byte_timeout
        return FIRST_BYTE_TIMEOUT if self.kind == "openai" else None


@dataclass(frozen=True)
class RetrySettings:
    """Backoff: delay before retry n is ``min(base_delay * 2**n, max_delay)`` plus jitter."""

    max_retries: int = 3
    base_delay: float = 1.0
    max_delay: float = 60.0
    max_retry_after: float = 60.0
    jitter: JitterMode = "proportional"


@dataclass(frozen=True)
class BreakerSettings:
    enabled: bool = True
    failure_threshold: int = 5
    recovery_timeout: float = 60.0
    half_open_max_calls: int = 3


@dataclass(frozen=True)
class ClientSettings:
    """Everything ``LLMClient.from_settings`` needs.

    ``state_store`` is the ``[state] store`` spec (``memory``, ``local`` or a Redis URL,
    which may hold a password: kept out of ``repr``). A client built in code stays per
    process unless told otherwise; the CLI's configuration defaults to ``local``.
    """

    providers: tuple[ProviderSettings, ...]
    retry: RetrySettings = RetrySettings()
    circuit_breaker: BreakerSettings = BreakerSettings()
    rate_limit_enabled: bool = True
    telemetry_enabled: bool = True
    state_store: str = field(default="memory", repr=False)
