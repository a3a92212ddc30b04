"""What ``qwen-dev ask`` writes on stdout: one output per format, chosen once.

- ``text``, streamed (:class:`StreamedText`): the answer as it comes; into a pipe or a
  file, each model message once complete (a retried stream never shows twice).
- ``text``, not streamed (:class:`WholeText`): the final answer, once.
- ``json`` (:class:`JsonObject`): exactly one object (docs/architecture.md section 2),
  on success and on failure.

Each output sees the turn's events as they happen, then its end: :meth:`answered` or
:meth:`failed`. What the user must know whatever the format (errors, denials) goes to
stderr from the command itself, not from here.
- ``stream-json`` (:class:`~qwen_dev_cli.ui.stream_json.StreamJson`): one JSON event a
  line as the turn happens, in Claude Code's message schema; it also hears the run's
  start (:meth:`AskOutput.started`) and the client's resilience
  (:meth:`AskOutput.client_event`), which the other formats ignore.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Literal, Protocol, TextIO

from ..agent.turn import (
    AssistantRestart,
    AssistantText,
    ContextCompacted,
    MessageAdded,
    ToolCallFinished,
    ToolCallStarted,
    TurnEnded,
)
from ..session.jsonl import write_json_line
from .safe_text import printable
from .spool import TextSpool

if TYPE_CHECKING:
    from ..agent.turn import AgentEvent, TurnResult
    from ..core import LLMError
    from ..core.events import ClientEvent
    from .stream_json import StartInfo

OutputFormat = Literal["text", "json", "stream-json"]
_PIECE = 1 << 16


class AskOutput(Protocol):
    """One format of ``ask``'s stdout."""

    def started(self, info: StartInfo) -> None:
        """The session exists and the turn is about to start."""

    def client_event(self, event: ClientEvent) -> None:
        """The client retried, failed over, saw a circuit change or waited for its
        budget. Must not raise (the client calls it)."""

    def __call__(self, event: AgentEvent) -> None:
        """An event of the turn, as it happens."""

    def answered(self, result: TurnResult, metrics: dict[str, Any], session_id: str) -> None:
        """The turn ended with an answer."""

    def failed(
        self,
        exc: LLMError,
        metrics: dict[str, Any],
        *,
        providers: list[dict[str, str]] | None = None,
    ) -> None:
        """No answer: ``exc`` says why (``providers``: each one's end, when the error
        itself cannot say)."""


def output_for(
    output_format: OutputFormat,
    *,
    stream: bool,
    out: TextIO,
    err: TextIO,
    show_tools: bool,
    partial: bool = False,
) -> AskOutput:
    """The output of ``output_format``; ``stream``: text as it comes (text only);
    ``show_tools``: say on ``err`` each tool call as it starts (a person is watching);
    ``partial``: stream-json's text deltas (``--include-partial-messages``)."""
    if output_format == "stream-json":
        from .stream_json import StreamJson

        return StreamJson(out, partial=partial)
    if output_format == "json":
        return JsonObject(out)
    if stream:
        return StreamedText(out, err, show_tools=show_tools)
    return WholeText(out)


class _Output:
    """What an output does not override: nothing."""

    def started(self, info: StartInfo) -> None:
        pass

    def client_event(self, event: ClientEvent) -> None:
        pass

    def __call__(self, event: AgentEvent) -> None:
        pass

    def answered(self, result: TurnResult, metrics: dict[str, Any], session_id: str) -> None:
        pass

    def failed(
        self,
        exc: LLMError,
        metrics: dict[str, Any],
        *,
        providers: list[dict[str, str]] | None = None,
    ) -> None:
        pass


class JsonObject(_Output):
    """``--json``: one object on stdout, whatever happened."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def answered(self, result: TurnResult, metrics: dict[str, Any], session_id: str) -> None:
        self._write(success_payload(result, metrics, session_id))

    def failed(
        self,
        exc: LLMError,
        metrics: dict[str, Any],
        *,
        providers: list[dict[str, str]] | None = None,
    ) -> None:
        self._write(failure_payload(exc, metrics, providers=providers))

    def _write(self, payload: dict[str, Any]) -> None:
        write_json_line(self.out, payload, ensure_ascii=True)  # no copy of a huge answer
        self.out.flush()


class WholeText(_Output):
    """``--no-stream``: the final answer, once it is complete."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def answered(self, result: TurnResult, metrics: dict[str, Any], session_id: str) -> None:
        text = result.text
        end = _end_of_last_line(text)
        for start in range(0, end, _PIECE):  # a piece at a time: no copy of it whole
            self.out.write(text[start : min(end, start + _PIECE)])
        self.out.write("\n")
        self.out.flush()


class StreamedText(_Output):
    """Writes the answer to stdout as it streams.

    On a terminal, text appears token by token, and a restarted answer is announced
    on stderr before it streams again. Into a pipe or a file, printed text could never
    be taken back, so each model message is written once it is complete: a restart
    then simply discards the partial one, and a script never reads an answer twice."""

    def __init__(self, out: TextIO, err: TextIO, *, show_tools: bool) -> None:
        self.out = out
        self.err = err
        self.show_tools = show_tools
        self.live = out.isatty()
        self.at_line_start = True
        self._held = TextSpool()  # a huge answer waits on disk, not in memory

    def __call__(self, event: AgentEvent) -> None:
        if isinstance(event, AssistantText):
            if self.live:  # a terminal: nothing the model sends may drive it
                self._write(printable(event.text))
            else:
                self._held.append(event.text)
        elif isinstance(event, AssistantRestart):
            self._held.clear()
            if self.live:
                self.err.write(f"\nqwen-dev: answer interrupted ({event.reason}); restarting it\n")
                self._end_line()
        elif isinstance(event, MessageAdded | TurnEnded):
            # The end of one model message: the next (after its tool calls) starts afresh.
            if self._held:
                self._write_held()
            self._end_line()
        if self.show_tools:
            self._tell_tool(event)

    def _tell_tool(self, event: AgentEvent) -> None:
        if isinstance(event, ToolCallStarted):
            arguments = json.dumps(event.arguments, ensure_ascii=False)
            self.err.write(f"qwen-dev: tool {event.name} {_clip(arguments)}\n")
        elif isinstance(event, ContextCompacted):
            self.err.write(f"qwen-dev: {event.description}\n")
        elif isinstance(event, ToolCallFinished) and event.status != "ok":
            self.err.write(f"qwen-dev: tool {event.name} {event.status}: {_clip(event.output)}\n")

    def _write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()
        self.at_line_start = text.endswith("\n")

    def _write_held(self) -> None:
        """The held message, a piece at a time (no copy of it whole, as text or bytes)."""
        last = ""
        for piece in self._held.pieces():
            self.out.write(piece)
            last = piece
        self._held.clear()
        self.out.flush()
        self.at_line_start = last.endswith("\n")

    def _end_line(self) -> None:
        if not self.at_line_start:
            self.out.write("\n")
            self.out.flush()
            self.at_line_start = True


def _end_of_last_line(text: str) -> int:
    """``len(text.rstrip("\\n"))``, without making that copy of a huge text."""
    end = len(text)
    while end > 0:
        piece = text[max(0, end - _PIECE) : end]
        kept = piece.rstrip("\n")
        end -= len(piece) - len(kept)
        if kept:
            break
    return end


def _clip(text: str, limit: int = 120) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def success_payload(
    result: TurnResult, metrics: dict[str, Any], session_id: str | None
) -> dict[str, Any]:
    """The ``ask --json`` object (docs/architecture.md section 2)."""
    return {
        "ok": True,
        "text": result.text,
        "provider": result.provider,
        "model": result.model,
        "session_id": session_id,
        "usage": result.usage.to_dict(),
        "attempts": result.attempts,
        "latency_ms": round(result.latency_ms),
        "tool_calls": [call.to_dict() for call in result.tool_calls],
        "finish_reason": result.finish_reason,
        "metrics": metrics,
    }


def config_failure_payload(message: str, *, kind: str = "config_error") -> dict[str, Any]:
    """The ``ask --json`` failure object for a configuration error (exit code 2;
    ``kind``: ``session_error`` for a session that cannot be opened)."""
    from ..core.telemetry import Telemetry

    error = {"type": kind, "message": message, "providers": []}
    return {"ok": False, "error": error, "metrics": Telemetry().snapshot()}


def failure_payload(
    exc: LLMError, metrics: dict[str, Any], *, providers: list[dict[str, str]] | None = None
) -> dict[str, Any]:
    """The ``ask --json`` failure object; ``providers``: what each provider ended with,
    when the error itself cannot say (providers skipped before any was tried)."""
    return {"ok": False, "error": exc.to_dict(providers), "metrics": metrics}
