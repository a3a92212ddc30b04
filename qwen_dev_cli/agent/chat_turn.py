"""A turn without tools: the conversation goes to the model, its answer streams back."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..core import StreamEnd, StreamRestart, TextDelta
from .turn import AssistantRestart, AssistantText, MessageAdded, TurnEnded, TurnResult

if TYPE_CHECKING:
    from ..core import LLMClient, Message
    from .turn import EventSink

DEFAULT_SYSTEM_PROMPT = (
    "You are qwen-dev, a coding assistant working in the user's terminal. "
    "Answer precisely and concisely; use Markdown code blocks for code."
)


class ChatTurn:
    """One question, one streamed answer.

    Args:
        client: the resilient client.
        system_prompt: sent first on every call (not stored in the conversation).
    """

    def __init__(self, client: LLMClient, system_prompt: str = DEFAULT_SYSTEM_PROMPT) -> None:
        self.client = client
        self.system_prompt = system_prompt

    async def run(self, history: list[Message], user_text: str, sink: EventSink) -> TurnResult:
        user: Message = {"role": "user", "content": user_text}
        sink(MessageAdded(user))
        messages = [{"role": "system", "content": self.system_prompt}, *history, user]
        result = None
        async for event in self.client.stream(messages):
            if isinstance(event, TextDelta):
                sink(AssistantText(event.text))
            elif isinstance(event, StreamRestart):
                sink(AssistantRestart(event.reason))
            elif isinstance(event, StreamEnd):
                result = event.result
        assert result is not None
        sink(MessageAdded({"role": "assistant", "content": result.text}))
        turn = TurnResult(
            text=result.text,
            provider=result.provider,
            model=result.model,
            usage=result.usage,
            attempts=result.attempts,
            latency_ms=result.latency_ms,
            steps=1,
        )
        sink(TurnEnded(turn))
        return turn
