"""Writes a turn's events into its session as they happen."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..agent.turn import (
    AssistantRestart,
    AssistantText,
    ContextCompacted,
    MessageAdded,
    TurnEnded,
)
from .spool import TextSpool

if TYPE_CHECKING:
    from ..agent.turn import AgentEvent
    from ..session.store import Session


class SessionRecorder:
    """An event sink that appends each completed message to ``session`` and keeps the
    text of the message being streamed, so an interrupted answer is not lost."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._partial = TextSpool()  # a huge answer waits on disk, not in memory

    def __call__(self, event: AgentEvent) -> None:
        if isinstance(event, AssistantText):
            self._partial.append(event.text)
        elif isinstance(event, AssistantRestart):
            self._partial.clear()
        elif isinstance(event, MessageAdded):
            if event.message.get("role") == "assistant":
                self._partial.clear()
            self.session.append(event.message)
        elif isinstance(event, ContextCompacted):
            self.session.compacted(event.view, **event.meta)
        elif isinstance(event, TurnEnded):
            result = event.result
            self.session.note(
                "turn",
                provider=result.provider,
                model=result.model,
                usage=result.usage.to_dict(),
                attempts=result.attempts,
                latency_ms=round(result.latency_ms),
                stopped=result.stopped,
            )

    def interrupted(self) -> None:
        """The turn was cancelled: keep what the assistant had said, marked as such."""
        if self._partial:
            text = self._partial.text()
            self._partial.clear()
            self.session.append({"role": "assistant", "content": text}, interrupted=True)
