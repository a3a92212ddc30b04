"""Cheap token estimates, used before the provider's real count is known.

About four characters per token for English and code, plus a few tokens of framing per
message. The rate limiter reconciles the estimate with the real usage afterwards, so
this only needs to be in the right range, and fast."""

from __future__ import annotations

import json
from typing import Any

from .types import Message, ToolSpec, tool_calls_of

#: Characters of English or code per token, on average: what every estimate here, and
#: any conversion between a token budget and a length of text, assumes.
CHARS_PER_TOKEN = 4
_PER_MESSAGE = 4


def _content_chars(content: Any) -> int:
    if isinstance(content, str):
        return len(content)
    if isinstance(content, list):
        return sum(
            len(part.get("text", "")) if isinstance(part, dict) else len(str(part))
            for part in content
        )
    return 0 if content is None else len(str(content))


def estimate_prompt_tokens(messages: list[Message], tools: list[ToolSpec] | None = None) -> int:
    chars = 0
    for message in messages:
        chars += _content_chars(message.get("content"))
        for function in tool_calls_of(message):
            chars += len(str(function.get("name", ""))) + len(str(function.get("arguments", "")))
    if tools:
        chars += len(json.dumps(tools))
    return chars // CHARS_PER_TOKEN + _PER_MESSAGE * len(messages) + 1


def estimate_message_tokens(message: Message) -> int:
    """One message's share of :func:`estimate_prompt_tokens` (its text and calls, plus
    the per-message framing): the estimates of a conversation's messages add up to the
    conversation's, so they can be cached one message at a time."""
    chars = _content_chars(message.get("content"))
    for function in tool_calls_of(message):
        chars += len(str(function.get("name", ""))) + len(str(function.get("arguments", "")))
    return chars // CHARS_PER_TOKEN + _PER_MESSAGE


def estimate_text_tokens(text: str) -> int:
    return estimate_chars_tokens(len(text))


def estimate_chars_tokens(chars: int) -> int:
    """Tokens in ``chars`` characters of text."""
    return max(1, chars // CHARS_PER_TOKEN) if chars > 0 else 0
