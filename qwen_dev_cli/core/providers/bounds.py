"""How much a server may send: limits that cut a broken or hostile server off before it
exhausts memory, and the redaction of secrets from what it says.

Every limit raises :class:`~qwen_dev_cli.core.errors.ResponseTooLarge`, a broken
response like any other: it is retried or failed over, never a traceback.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from ..errors import ResponseTooLarge

MiB = 1024 * 1024


@dataclass(frozen=True)
class ResponseLimits:
    """Args:
    response_bytes: bytes of one attempt's body, after decompression (so a gzip bomb
        stops here too).
    line_chars: characters of one SSE line still waiting for its end.
    tool_argument_chars: characters of one tool call's arguments.
    error_body_bytes: bytes of an error body read (the message shown is shorter still).
    """

    response_bytes: int = 64 * MiB
    line_chars: int = 8 * MiB
    tool_argument_chars: int = 4 * MiB
    error_body_bytes: int = 64 * 1024


DEFAULT_RESPONSE_LIMITS = ResponseLimits()


class ByteBudget:
    """Counts the bytes of one response against ``limit``."""

    def __init__(self, limit: int, provider: str) -> None:
        self.limit = limit
        self.provider = provider
        self.used = 0

    def spend(self, size: int) -> None:
        self.used += size
        if self.used > self.limit:
            raise ResponseTooLarge(
                f"response larger than {self.limit // MiB} MiB: cut off", provider=self.provider
            )


_BEARER = re.compile(r"(?i)\b(bearer|token|api[-_ ]?key)([\s:=\"']+)([A-Za-z0-9._~+/=-]{8,})")
#: Keys shorter than this are placeholders (``EMPTY``, ``x``, ``sk-local``), not secrets:
#: redacting them would mangle ordinary words.
MIN_SECRET = 12


class Redactor:
    """Removes secrets from text a server sent before it reaches a user, a log or a
    session: the configured keys' values (long enough to be secrets) and anything
    presented as a bearer token or API key."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        self._secrets = sorted(
            {s for s in secrets if s and len(s) >= MIN_SECRET}, key=len, reverse=True
        )

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, "***")
        return _BEARER.sub(lambda m: f"{m.group(1)}{m.group(2)}***", text)
