"""The OpenAI chat payloads: what the server reads of a request (:class:`ChatRequest`)
and the exact ``chat.completion`` and ``chat.completion.chunk`` objects of an answer
(:class:`CompletionBuilder`), with the server-sent-event framing of a stream
(:class:`SseEncoder`).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .accounting import count_completion_tokens, count_prompt_tokens
from .http11 import JsonDict, dumps

_WORD = re.compile(r"\s*\S+")


@dataclass
class ChatRequest:
    """The parts of a chat request body the server cares about."""

    stream: bool
    include_usage: bool
    prompt_tokens: int
    budget_tokens: int  # charged against tpm

    @classmethod
    def from_body(cls, body: JsonDict) -> ChatRequest:
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        prompt = count_prompt_tokens(body.get("messages"))
        limit = body.get("max_completion_tokens", body.get("max_tokens"))
        extra = limit if isinstance(limit, int) and limit > 0 else 0
        return cls(body.get("stream") is True, include_usage, prompt, prompt + extra)


@dataclass(frozen=True)
class ServedCall:
    """A tool call the server answers with (``arguments``: the JSON text)."""

    id: str
    name: str
    arguments: str


class CompletionBuilder:
    """Builds the exact OpenAI chat.completion and chat.completion.chunk payloads."""

    def __init__(
        self,
        *,
        completion_id: str,
        model: str,
        content: str | None,
        tool_calls: list[ServedCall],
        prompt_tokens: int,
        usage_override: Mapping[str, int] | None,
        finish_override: str | None = None,
    ) -> None:
        self.completion_id = completion_id
        self.model = model
        self.created = int(time.time())
        self.content = content
        self.tool_calls = tool_calls
        self.prompt_tokens = prompt_tokens
        self.usage_override = usage_override
        self.finish_override = finish_override

    @property
    def finish_reason(self) -> str:
        if self.finish_override is not None:
            return self.finish_override
        return "tool_calls" if self.tool_calls else "stop"

    def usage(self) -> JsonDict:
        completion = count_completion_tokens(self.content, [t.arguments for t in self.tool_calls])
        usage: JsonDict = {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": self.prompt_tokens + completion,
        }
        usage.update(self.usage_override or {})
        return usage

    def completion(self) -> JsonDict:
        message: JsonDict = {"role": "assistant", "content": self.content}
        if self.tool_calls:
            message["tool_calls"] = [
                {
                    "id": t.id,
                    "type": "function",
                    "function": {"name": t.name, "arguments": t.arguments},
                }
                for t in self.tool_calls
            ]
        return {
            "id": self.completion_id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "message": message, "finish_reason": self.finish_reason}],
            "usage": self.usage(),
        }

    def chunks(self, chunk_size: int | None, include_usage: bool) -> tuple[list[JsonDict], int]:
        """All stream chunks (role, deltas, finish, usage?) and how many deltas there are."""
        role: JsonDict = {"role": "assistant", "content": "" if self.content is not None else None}
        deltas: list[JsonDict] = [{"content": p} for p in split_text(self.content, chunk_size)]
        deltas.extend(self._tool_deltas())
        chunks = [self._chunk(role), *(self._chunk(d) for d in deltas)]
        chunks.append(self._chunk({}, self.finish_reason))
        if include_usage:
            for chunk in chunks:
                chunk["usage"] = None
            chunks.append({**self._chunk({}), "choices": [], "usage": self.usage()})
        return chunks, len(deltas)

    def _tool_deltas(self) -> list[JsonDict]:
        deltas: list[JsonDict] = []
        for index, call in enumerate(self.tool_calls):
            function = {"name": call.name, "arguments": ""}
            first = {"index": index, "id": call.id, "type": "function", "function": function}
            deltas.append({"tool_calls": [first]})
            for piece in split_in_parts(call.arguments, 3):
                deltas.append({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
        return deltas

    def _chunk(self, delta: JsonDict, finish_reason: str | None = None) -> JsonDict:
        return {
            "id": self.completion_id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        }


def split_text(text: str | None, chunk_size: int | None) -> list[str]:
    """Word-ish pieces ("Hello", " world") or fixed-size pieces; joined they give the text."""
    if not text:
        return []
    if chunk_size:
        return [text[i : i + chunk_size] for i in range(0, len(text), chunk_size)]
    pieces: list[str] = _WORD.findall(text)
    rest = text[sum(len(p) for p in pieces) :]
    return [*pieces, rest] if rest else pieces


def split_in_parts(text: str, parts: int) -> list[str]:
    size = max(1, math.ceil(len(text) / parts))
    return [text[i : i + size] for i in range(0, len(text), size)]


class SseEncoder:
    """Formats server-sent events with the outcome's line-ending and spacing quirks."""

    def __init__(self, *, crlf: bool = False, no_space: bool = False) -> None:
        self._end = b"\r\n\r\n" if crlf else b"\n\n"
        self._prefix = b"data:" if no_space else b"data: "

    def data(self, payload: bytes) -> bytes:
        return self._prefix + payload + self._end

    def json(self, payload: Any) -> bytes:
        return self.data(dumps(payload))

    def comment(self, text: str) -> bytes:
        return b": " + text.encode() + self._end

    def done(self) -> bytes:
        return self.data(b"[DONE]")
