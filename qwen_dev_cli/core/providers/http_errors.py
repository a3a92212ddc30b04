"""Translation of HTTP statuses, error bodies and httpx exceptions into the client's
error tree: the one place where transport errors become :class:`LLMError`."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import httpx

from ...safe_text import printable
from ..errors import (
    AuthenticationError,
    BadRequestError,
    ConnectionFailed,
    ContextLengthExceeded,
    InsufficientQuota,
    NotFoundError,
    Overloaded,
    PermanentError,
    ProviderError,
    RateLimited,
    Redirected,
    RequestTimeout,
    ServerError,
    TransientError,
    is_insufficient_quota,
    says_quota,
)
from ..headers import parse_retry_after, parse_retry_hint, parse_should_retry

_CONTEXT_LENGTH = re.compile(
    r"context[_ ]length|context window|maximum context|too many tokens|prompt is too long"
    r"|reduce the length|exceeds the (?:maximum|model)",
    re.IGNORECASE,
)
_MAX_MESSAGE = 300


def error_from_status(
    status: int, headers: Mapping[str, str], body: bytes | str, *, provider: str
) -> ProviderError:
    """The error a non-2xx response means. ``x-should-retry`` overrides the status."""
    message, code = error_details(body)
    text = f"HTTP {status}: {message}" if message else f"HTTP {status}"
    retry_after = parse_retry_after(headers)
    if retry_after is None and status == 429:
        retry_after = parse_retry_hint(body)
    error = _by_status(status, code, message, text, provider, retry_after)
    should_retry = parse_should_retry(headers)
    if should_retry is not None:
        error.retryable = should_retry
    return error


def error_from_event(payload: Any, *, provider: str) -> ProviderError:
    """The error an ``{"error": ...}`` event inside a stream means."""
    message, code = _details_of(payload)
    status = code if isinstance(code, int) else None
    if status is None and isinstance(code, str) and code.isdigit():
        status = int(code)
    text = f"stream error: {message or 'no message'}"
    if status is not None and 400 <= status < 600:
        return _by_status(status, code, message, text, provider, None)
    if message and _CONTEXT_LENGTH.search(message):
        return ContextLengthExceeded(text, provider=provider)
    return ServerError(text, provider=provider)


def error_from_exception(exc: Exception, *, provider: str) -> ProviderError:
    """Translate an httpx request exception (caller chains it with ``from``)."""
    name = type(exc).__name__
    detail = str(exc) or name
    if isinstance(exc, httpx.TimeoutException):
        return RequestTimeout(f"timed out ({name})", provider=provider)
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return PermanentError(f"bad base_url: {detail}", provider=provider)
    if isinstance(exc, httpx.ConnectError):
        return ConnectionFailed(f"cannot connect: {detail}", provider=provider)
    return ConnectionFailed(f"connection lost: {detail}", provider=provider)


def error_details(body: bytes | str) -> tuple[str, Any]:
    """The message and code of an OpenAI-style error body (or its first line of text).
    The message is the server's text, printed on terminals and logs later: its control
    characters are made visible escapes here, once (an OSC 52 in a 500's body would set
    the user's clipboard)."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        line = body.strip().splitlines()[0] if body.strip() else ""
        return printable(line[:_MAX_MESSAGE]), None
    return _details_of(payload)


def _details_of(payload: Any) -> tuple[str, Any]:
    error = payload.get("error", payload) if isinstance(payload, dict) else payload
    if isinstance(error, dict):
        message = error.get("message") or error.get("detail") or ""
        code = error.get("code") or error.get("type")
        return printable(str(message)[:_MAX_MESSAGE]), code
    if isinstance(error, str):
        return printable(error[:_MAX_MESSAGE]), None
    return "", None


def _by_status(
    status: int,
    code: Any,
    message: str,
    text: str,
    provider: str,
    retry_after: float | None,
) -> ProviderError:
    kwargs: dict[str, Any] = {"provider": provider, "status_code": status}
    code_text = str(code or "").lower()
    if status == 429:
        if is_insufficient_quota(code):
            return InsufficientQuota(f"{text} (quota exhausted)", retry_after=retry_after, **kwargs)
        limited = RateLimited(text, retry_after=retry_after, **kwargs)
        limited.quota = says_quota(code, message)
        return limited
    if status == 403 and says_quota(code, message):
        return InsufficientQuota(f"{text} (quota exhausted)", **kwargs)
    if status in (401, 403):
        return AuthenticationError(text, **kwargs)
    if status == 404:
        return NotFoundError(text, **kwargs)
    if 300 <= status < 400:
        return Redirected(
            f"HTTP {status}: the endpoint moved (not followed); set base_url to the new "
            "address if you trust it",
            **kwargs,
        )
    if status in (400, 413, 422):
        if "context_length" in code_text or _CONTEXT_LENGTH.search(message):
            return ContextLengthExceeded(text, **kwargs)
        return BadRequestError(text, **kwargs)
    if status == 408:
        return RequestTimeout(text, retry_after=retry_after, **kwargs)
    if status == 409:
        return TransientError(text, retry_after=retry_after, **kwargs)
    if status == 529 or (status == 503 and "overload" in message.lower()):
        return Overloaded(text, retry_after=retry_after, **kwargs)
    if status >= 500:
        return ServerError(text, retry_after=retry_after, **kwargs)
    return PermanentError(text, **kwargs)
