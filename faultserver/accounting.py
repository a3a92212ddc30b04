"""Deterministic token counts and the server-side rate limits (requests and tokens
per sliding minute) a real provider would enforce.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

WINDOW_SECONDS = 60.0


def count_prompt_tokens(messages: Any) -> int:
    """Characters of all message contents // 4, at least 1."""
    chars = 0
    if isinstance(messages, list):
        for message in messages:
            if isinstance(message, dict):
                chars += _content_chars(message.get("content"))
    return max(1, chars // 4)


def _content_chars(content: Any) -> int:
    if isinstance(content, str):
        return len(content)
    if isinstance(content, list):
        texts = (part.get("text") for part in content if isinstance(part, dict))
        return sum(len(text) for text in texts if isinstance(text, str))
    return 0


def count_completion_tokens(text: str | None, arguments: Sequence[str] = ()) -> int:
    """Whitespace-separated words of the text plus len(arguments) // 4 per call, at least 1."""
    words = len(text.split()) if text else 0
    return max(1, words + sum(len(args) // 4 for args in arguments))


# --------------------------------------------------------------------------- rate limits


class Throttle(NamedTuple):
    limit: str  # "requests" or "tokens"
    wait: float  # seconds until the request would fit


class RateWindow:
    """Sliding 60 s window enforcing requests-per-minute and tokens-per-minute budgets."""

    def __init__(self, rpm: int | None, tpm: int | None, clock: Callable[[], float]) -> None:
        self.rpm = rpm
        self.tpm = tpm
        self._clock = clock
        self._events: deque[tuple[float, int]] = deque()
        self._tokens = 0

    @property
    def enabled(self) -> bool:
        return self.rpm is not None or self.tpm is not None

    def clear(self) -> None:
        self._events.clear()
        self._tokens = 0

    def admit(self, tokens: int) -> Throttle | None:
        """Record the request and return None, or return why and how long to wait."""
        if not self.enabled:
            return None
        now = self._clock()
        self._prune(now)
        if self.rpm is not None and len(self._events) >= self.rpm:
            wait = self._events[0][0] + WINDOW_SECONDS - now if self._events else WINDOW_SECONDS
            return Throttle("requests", wait)
        if self.tpm is not None and self._tokens + tokens > self.tpm:
            return Throttle("tokens", self._wait_for_tokens(now, tokens))
        self._events.append((now, tokens))
        self._tokens += tokens
        return None

    def _prune(self, now: float) -> None:
        while self._events and self._events[0][0] <= now - WINDOW_SECONDS:
            self._tokens -= self._events.popleft()[1]

    def _wait_for_tokens(self, now: float, tokens: int) -> float:
        assert self.tpm is not None
        excess = self._tokens + tokens - self.tpm
        if tokens > self.tpm:
            return WINDOW_SECONDS
        for stamp, spent in self._events:
            excess -= spent
            if excess <= 0:
                return stamp + WINDOW_SECONDS - now
        return WINDOW_SECONDS

    def headers(self) -> dict[str, str]:
        out: dict[str, str] = {}
        if self.rpm is not None:
            out["x-ratelimit-limit-requests"] = str(self.rpm)
            out["x-ratelimit-remaining-requests"] = str(max(0, self.rpm - len(self._events)))
        if self.tpm is not None:
            out["x-ratelimit-limit-tokens"] = str(self.tpm)
            out["x-ratelimit-remaining-tokens"] = str(max(0, self.tpm - self._tokens))
        return out
