"""Reading what providers say in response headers: Retry-After, x-should-retry and
``x-ratelimit-*``. Every parser is total: odd or hostile values give ``None``, never raise."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime

from .types import RateLimitHeaders

# Waits are clamped to a year: bigger values are nonsense but still mean "not soon".
_MAX_SANE_SECONDS = 365 * 24 * 3600.0


def parse_retry_after(
    headers: Mapping[str, str], *, now: Callable[[], float] = time.time
) -> float | None:
    """Seconds the server asked us to wait, or ``None`` when it did not say (usably).

    ``retry-after-ms`` wins over ``retry-after``, which may be seconds (int or float)
    or an HTTP date. Negative, NaN and unparsable values are ignored; huge ones (``inf``
    too) are clamped to a year; a date in the past means 0. ``now`` gives wall-clock
    time for HTTP dates.
    """
    ms = _get(headers, "retry-after-ms")
    if ms is not None:
        value = _parse_number(ms, cap=_MAX_SANE_SECONDS * 1000.0)
        if value is not None:
            return value / 1000.0
    raw = _get(headers, "retry-after")
    if raw is None:
        return None
    value = _parse_number(raw)
    if value is not None:
        return value
    return _parse_http_date(raw, now())


#: Where a 429's body says when to come back: Gemini's ``"retryDelay": "37s"`` and
#: "Please retry in 37.5s", or "try again in 20s" (OpenAI's rate-limit messages).
_RETRY_HINT = re.compile(
    r'"retryDelay"\s*:\s*"(\d+(?:\.\d+)?)s"|(?:retry|try again) in (\d+(?:\.\d+)?)\s*(ms|s)\b',
    re.IGNORECASE,
)


def parse_retry_hint(body: bytes | str) -> float | None:
    """Seconds a 429's body (not its headers) asks the client to wait, or ``None``."""
    if isinstance(body, bytes):
        body = body[:65536].decode("utf-8", errors="replace")
    match = _RETRY_HINT.search(body[:65536])
    if match is None:
        return None
    if match.group(1) is not None:
        return min(float(match.group(1)), _MAX_SANE_SECONDS)
    seconds = float(match.group(2)) / (1000.0 if match.group(3).lower() == "ms" else 1.0)
    return min(seconds, _MAX_SANE_SECONDS)


def parse_should_retry(headers: Mapping[str, str]) -> bool | None:
    """The ``x-should-retry`` header as OpenAI's servers send it: true, false or absent."""
    raw = _get(headers, "x-should-retry")
    if raw is None:
        return None
    raw = raw.strip().lower()
    if raw == "true":
        return True
    if raw == "false":
        return False
    return None


def parse_rate_limit_headers(headers: Mapping[str, str]) -> RateLimitHeaders | None:
    """The ``x-ratelimit-remaining-*`` and ``x-ratelimit-reset-*`` headers, if any."""
    rem_req = _parse_count(_get(headers, "x-ratelimit-remaining-requests"))
    rem_tok = _parse_count(_get(headers, "x-ratelimit-remaining-tokens"))
    if rem_req is None and rem_tok is None:
        return None
    return RateLimitHeaders(
        remaining_requests=rem_req,
        remaining_tokens=rem_tok,
        reset_requests=parse_duration(_get(headers, "x-ratelimit-reset-requests")),
        reset_tokens=parse_duration(_get(headers, "x-ratelimit-reset-tokens")),
    )


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


def parse_duration(raw: str | None) -> float | None:
    """OpenAI-style reset durations: ``"1s"``, ``"6m0s"``, ``"250ms"``, ``"1h2m3.5s"``, or
    bare seconds (``"20"``, ``"0.5"``)."""
    if raw is None:
        return None
    text = raw.strip().lower()
    plain = _parse_number(text)
    if plain is not None:
        return plain
    pos = 0
    total = 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            return None
        pos = match.end()
        amount = float(match.group(1))
        total += amount * {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[match.group(2)]
    if pos == 0 or pos != len(text):
        return None
    return min(total, _MAX_SANE_SECONDS)


def _get(headers: Mapping[str, str], name: str) -> str | None:
    # httpx.Headers is case-insensitive; a plain dict may spell a name any way
    # (``X-RateLimit-Remaining-Requests``), so fall back to a case-insensitive scan.
    value = headers.get(name)
    # Only a plain dict needs the scan: it runs for every response, on the hot path.
    if value is None and isinstance(headers, dict):
        for key, candidate in headers.items():
            if key.lower() == name:
                return str(candidate)
    return value


def _parse_number(raw: str, cap: float = _MAX_SANE_SECONDS) -> float | None:
    text = raw.strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    if math.isnan(value) or value < 0:
        return None
    # A huge wait is still a wait: clamp it so it exceeds any max_retry_after.
    return min(value, cap)


def _parse_count(raw: str | None) -> int | None:
    if raw is None:
        return None
    text = raw.strip()
    # isdigit() alone admits "²", which int() refuses.
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        return None
    return int(text)


def _parse_http_date(raw: str, now: float) -> float | None:
    try:
        when = parsedate_to_datetime(raw.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None or when.tzinfo is None:
        return None
    try:
        delta = when.timestamp() - now
    except (OverflowError, OSError, ValueError):
        return None
    return min(max(0.0, delta), _MAX_SANE_SECONDS)
