"""Plain data that crosses the client's boundary: requests, results, stream events."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

#: An OpenAI chat message: ``{"role": "user", "content": "..."}`` and friends.
Message = dict[str, Any]
#: An OpenAI tool definition: ``{"type": "function", "function": {...}}``.
ToolSpec = dict[str, Any]


def tool_calls_of(message: Message) -> list[dict[str, Any]]:
    """The ``function`` part (``name``, ``arguments``) of each tool call ``message``
    makes, in order; ``{}`` for an entry that is not a call object (a session file or a
    server may hold anything)."""
    functions = []
    for call in message.get("tool_calls") or ():
        function = call.get("function") if isinstance(call, dict) else None
        functions.append(function if isinstance(function, dict) else {})
    return functions


@dataclass(frozen=True)
class Usage:
    """Token counts as the provider reported them (or as estimated when it did not)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0

    def to_dict(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }


@dataclass(frozen=True)
class ToolCall:
    """A function call the model asked for. ``arguments`` is the raw JSON text it sent."""

    id: str
    name: str
    arguments: str

    def to_message(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }


@dataclass(frozen=True)
class ChatRequest:
    """One logical call: the conversation and the knobs that shape the answer.

    ``messages`` and ``tools`` are in OpenAI's form (calls in ``tool_calls``, results in
    ``tool`` messages). ``text_tools``, if set, rewrites the request for each attempt on
    a provider without native tool calling (:func:`~.providers.base.request_for`).
    ``ends_apart``: a streamed answer of plain prose comes back with the blanks at its
    ends held apart (:attr:`ProviderReply.lead` and :attr:`ProviderReply.trail`)."""

    messages: list[Message]
    tools: list[ToolSpec] | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    text_tools: TextTools | None = None
    ends_apart: bool = False


class TextTools(Protocol):
    """Writes a request's tools, and the calls and results of its conversation, into the
    text of its messages, for a provider whose model gets no OpenAI ``tools``. The
    caller supplies it (the agent: prompt text is its business, not the client's); the
    client applies it per attempt, so failover may change protocol mid-conversation."""

    def render(self, request: ChatRequest, *, model: str, tool_format: str) -> ChatRequest:
        """``request`` for a provider serving ``model`` whose configured text format is
        ``tool_format``: without ``tools`` (they are described in the prompt)."""
        ...


@dataclass(frozen=True)
class RateLimitHeaders:
    """What a provider's ``x-ratelimit-*`` headers said, in requests/tokens and seconds."""

    remaining_requests: int | None = None
    remaining_tokens: int | None = None
    reset_requests: float | None = None
    reset_tokens: float | None = None


@dataclass(frozen=True)
class ProviderReply:
    """One successful answer from one provider. Its text is ``lead + text + trail``:
    the blanks at its ends are held apart only when the request asked for it
    (:attr:`ChatRequest.ends_apart`) and the answer is plain prose, so that a huge
    answer is never held both whole and trimmed (docs/benchmarks.md section 14)."""

    text: str
    tool_calls: list[ToolCall]
    usage: Usage | None
    model: str
    finish_reason: str | None = None
    rate_limit: RateLimitHeaders | None = None
    lead: str = ""
    trail: str = ""

    def whole(self) -> str:
        """The answer's text, blanks at its ends included (a copy when they were apart)."""
        return self.lead + self.text + self.trail if self.lead or self.trail else self.text


@dataclass(frozen=True)
class ChatResult:
    """The answer to a logical call, with how it was obtained."""

    text: str
    tool_calls: list[ToolCall]
    usage: Usage
    provider: str
    model: str
    attempts: int
    latency_ms: float
    finish_reason: str | None = None
    #: Errors of the attempts that failed before this answer, as ``(provider, message)``.
    failed_attempts: list[tuple[str, str]] = field(default_factory=list)
    #: The blanks at the text's ends, when held apart (:class:`ProviderReply`).
    lead: str = ""
    trail: str = ""

    def whole(self) -> str:
        """The answer's text, blanks at its ends included (a copy when they were apart)."""
        return self.lead + self.text + self.trail if self.lead or self.trail else self.text


# --- stream events -------------------------------------------------------------------


@dataclass(slots=True)
class TextDelta:
    """A piece of answer text, in order. (Not frozen: one is made per token.)"""

    text: str


@dataclass(frozen=True)
class StreamRestart:
    """The partial answer shown so far is void: an attempt broke mid-stream and the
    request is being re-issued (perhaps on another provider). Discard it."""

    provider: str
    reason: str


@dataclass(frozen=True)
class StreamEnd:
    """The stream finished; ``result`` holds the complete answer exactly once."""

    result: ChatResult


StreamEvent = TextDelta | StreamRestart | StreamEnd
#: What a provider's stream yields: text as it comes, then exactly one reply.
ProviderChunk = TextDelta | ProviderReply
