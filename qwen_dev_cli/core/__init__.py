"""The resilient LLM client: retries, Retry-After, rate limits, circuit breakers,
failover and telemetry over any OpenAI-compatible endpoint.

This package knows nothing of terminals, tools or sessions. Its public surface is
``__all__``; the modules behind it are private.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_getattr

if TYPE_CHECKING:
    from .breaker import BreakerState, CircuitBreaker
    from .client import LLMClient
    from .errors import (
        AllProvidersFailed,
        AuthenticationError,
        BadRequestError,
        CircuitOpenError,
        ConnectionFailed,
        ContextLengthExceeded,
        LLMError,
        MalformedResponse,
        NoProviderConfigured,
        NotFoundError,
        Overloaded,
        PermanentError,
        ProviderError,
        ProviderFailure,
        ProviderSetupError,
        ProviderUnavailable,
        RateLimited,
        RateLimitExhausted,
        RequestTimeout,
        RequestTooLarge,
        ServerError,
        StreamInterrupted,
        TransientError,
    )
    from .events import (
        AttemptStarted,
        BreakerTransition,
        ClientEvent,
        Failover,
        RateLimitWait,
        RetryScheduled,
    )
    from .limiter import RateLimiter
    from .providers.base import Provider
    from .providers.openai_compat import OpenAICompatProvider
    from .settings import BreakerSettings, ClientSettings, ProviderSettings, RetrySettings
    from .state import FallbackStore, MemoryStore, ProviderStateStore, StoreError, open_store
    from .state_redis import RedisStore
    from .state_sqlite import SqliteStore
    from .status import ClientStatus, ProviderStatus
    from .types import (
        ChatRequest,
        ChatResult,
        Message,
        ProviderReply,
        StreamEnd,
        StreamEvent,
        StreamRestart,
        TextDelta,
        ToolCall,
        ToolSpec,
        Usage,
    )

# Imported on first use, so that `import qwen_dev_cli.core.settings` (and the CLI's
# --help) does not pay for httpx and tenacity.
_WHERE = {
    "AllProvidersFailed": ".errors",
    "AttemptStarted": ".events",
    "AuthenticationError": ".errors",
    "BadRequestError": ".errors",
    "BreakerSettings": ".settings",
    "BreakerState": ".breaker",
    "BreakerTransition": ".events",
    "ChatRequest": ".types",
    "ChatResult": ".types",
    "CircuitBreaker": ".breaker",
    "CircuitOpenError": ".errors",
    "ClientEvent": ".events",
    "ClientSettings": ".settings",
    "ClientStatus": ".status",
    "ConnectionFailed": ".errors",
    "ContextLengthExceeded": ".errors",
    "Failover": ".events",
    "FallbackStore": ".state",
    "LLMClient": ".client",
    "LLMError": ".errors",
    "MalformedResponse": ".errors",
    "MemoryStore": ".state",
    "Message": ".types",
    "NoProviderConfigured": ".errors",
    "NotFoundError": ".errors",
    "OpenAICompatProvider": ".providers.openai_compat",
    "Overloaded": ".errors",
    "PermanentError": ".errors",
    "Provider": ".providers.base",
    "ProviderError": ".errors",
    "ProviderFailure": ".errors",
    "ProviderReply": ".types",
    "ProviderSettings": ".settings",
    "ProviderSetupError": ".errors",
    "ProviderStateStore": ".state",
    "ProviderStatus": ".status",
    "ProviderUnavailable": ".errors",
    "RateLimitExhausted": ".errors",
    "RateLimitWait": ".events",
    "RateLimited": ".errors",
    "RateLimiter": ".limiter",
    "RedisStore": ".state_redis",
    "RequestTimeout": ".errors",
    "RequestTooLarge": ".errors",
    "RetryScheduled": ".events",
    "RetrySettings": ".settings",
    "ServerError": ".errors",
    "SqliteStore": ".state_sqlite",
    "StoreError": ".state",
    "StreamEnd": ".types",
    "StreamEvent": ".types",
    "StreamInterrupted": ".errors",
    "StreamRestart": ".types",
    "TextDelta": ".types",
    "ToolCall": ".types",
    "ToolSpec": ".types",
    "TransientError": ".errors",
    "Usage": ".types",
    "open_store": ".state",
}

__all__ = [
    "AllProvidersFailed",
    "AttemptStarted",
    "AuthenticationError",
    "BadRequestError",
    "BreakerSettings",
    "BreakerState",
    "BreakerTransition",
    "ChatRequest",
    "ChatResult",
    "CircuitBreaker",
    "CircuitOpenError",
    "ClientEvent",
    "ClientSettings",
    "ClientStatus",
    "ConnectionFailed",
    "ContextLengthExceeded",
    "Failover",
    "FallbackStore",
    "LLMClient",
    "LLMError",
    "MalformedResponse",
    "MemoryStore",
    "Message",
    "NoProviderConfigured",
    "NotFoundError",
    "OpenAICompatProvider",
    "Overloaded",
    "PermanentError",
    "Provider",
    "ProviderError",
    "ProviderFailure",
    "ProviderReply",
    "ProviderSettings",
    "ProviderSetupError",
    "ProviderStateStore",
    "ProviderStatus",
    "ProviderUnavailable",
    "RateLimitExhausted",
    "RateLimitWait",
    "RateLimited",
    "RateLimiter",
    "RedisStore",
    "RequestTimeout",
    "RequestTooLarge",
    "RetryScheduled",
    "RetrySettings",
    "ServerError",
    "SqliteStore",
    "StoreError",
    "StreamEnd",
    "StreamEvent",
    "StreamInterrupted",
    "StreamRestart",
    "TextDelta",
    "ToolCall",
    "ToolSpec",
    "TransientError",
    "Usage",
    "open_store",
]


__getattr__ = lazy_getattr(__name__, _WHERE, globals())
