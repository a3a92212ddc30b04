"""A scripted in-memory provider: each call consumes the next scripted outcome, so
client logic is tested without HTTP (the fault server covers the wire)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from qwen_dev_cli.core.errors import ProviderError
from qwen_dev_cli.core.settings import DEFAULT_CONTEXT_WINDOW
from qwen_dev_cli.core.types import (
    ChatRequest,
    ProviderChunk,
    ProviderReply,
    TextDelta,
    ToolCall,
    Usage,
)


@dataclass
class Answer:
    """A successful answer; ``fail_after`` breaks a stream after that many deltas."""

    text: str = "ok"
    tool_calls: list[ToolCall] = field(default_factory=list)
    usage: Usage | None = None
    fail_after: int | None = None
    error: ProviderError | None = None
    hang: bool = False
    #: Report no usage at all, as some servers do.
    no_usage: bool = False


Outcome = Answer | ProviderError | str


class ScriptedProvider:
    def __init__(
        self, name: str, *script: Outcome, default: Outcome = "ok", max_tokens: int | None = None
    ) -> None:
        self.name = name
        self.model = f"{name}-model"
        self.max_tokens = max_tokens
        self.context_window = DEFAULT_CONTEXT_WINDOW
        self.script = list(script)
        self.default = default
        self.calls = 0
        self.requests: list[ChatRequest] = []
        self.closed = False

    def _next(self, request: ChatRequest) -> Answer:
        self.calls += 1
        self.requests.append(request)
        outcome = self.script.pop(0) if self.script else self.default
        if isinstance(outcome, ProviderError):
            outcome.provider = self.name
            raise outcome
        return Answer(outcome) if isinstance(outcome, str) else outcome

    def _reply(self, answer: Answer) -> ProviderReply:
        words = len(answer.text.split())
        usage = None if answer.no_usage else answer.usage or Usage(10, words, 10 + words)
        return ProviderReply(answer.text, answer.tool_calls, usage, self.model, "stop")

    async def chat(self, request: ChatRequest) -> ProviderReply:
        answer = self._next(request)
        if answer.hang:
            await asyncio.Event().wait()
        return self._reply(answer)

    async def stream(self, request: ChatRequest) -> AsyncIterator[ProviderChunk]:
        answer = self._next(request)
        if answer.hang:
            await asyncio.Event().wait()
        for i, word in enumerate(answer.text.split(" ")):
            if answer.fail_after is not None and i == answer.fail_after:
                assert answer.error is not None
                answer.error.provider = self.name
                raise answer.error
            yield TextDelta(word if i == 0 else " " + word)
        yield self._reply(answer)

    async def aclose(self) -> None:
        self.closed = True
