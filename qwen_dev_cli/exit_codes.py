"""The process exit codes of docs/architecture.md section 2, and which error means which."""

from __future__ import annotations

OK = 0
INTERNAL_ERROR = 1
USAGE_ERROR = 2
#: Retries and failover did not help: circuits open, rate limited beyond the cap, all down.
PROVIDER_FAILURE = 3
#: A provider refused the request for good: auth, bad request, context too long.
PROVIDER_REJECTED = 4
INTERRUPTED = 130


def for_error(exc: BaseException) -> int:
    """The exit code a failed run ends with."""
    # Imported here: the CLI's --help must not pay for the client's modules.
    from .config import ConfigError
    from .core.errors import (
        AllProvidersFailed,
        LLMError,
        NoProviderConfigured,
        PermanentError,
    )

    if isinstance(exc, KeyboardInterrupt):
        return INTERRUPTED
    if isinstance(exc, ConfigError | NoProviderConfigured):
        return USAGE_ERROR
    if isinstance(exc, AllProvidersFailed):
        return PROVIDER_REJECTED if exc.permanent else PROVIDER_FAILURE
    if isinstance(exc, PermanentError):
        return PROVIDER_REJECTED
    if isinstance(exc, LLMError):
        return PROVIDER_FAILURE
    return INTERNAL_ERROR
