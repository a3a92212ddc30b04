"""``qwen-dev ask``: one question, one answer, for people and for scripts.

stdout carries only the answer (or, with ``--json``, exactly one JSON object);
progress and retry notices go to stderr, and only when stderr is a terminal.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from .. import exit_codes
from ..agent import build_agent
from ..agent.context import ContextBudget
from ..agent.turn import (
    AssistantRestart,
    AssistantText,
    ContextCompacted,
    DenyAll,
    MessageAdded,
    ToolCallFinished,
    ToolCallStarted,
    TurnEnded,
)
from ..core import LLMClient, LLMError
from ..core.errors import AllProvidersFailed
from ..core.events import AttemptStarted, ClientEvent, describe
from ..core.telemetry import Telemetry
from ..session.metrics_log import MetricsLog
from ..session.store import SessionStore
from .notices import startup_notices
from .recorder import SessionRecorder
from .safe_text import printable

if TYPE_CHECKING:
    from ..agent.turn import AgentEvent, Turn, TurnResult
    from ..config import Settings
    from ..core.state import ProviderStateStore

#: Piped input beyond this is cut, with a note: a prompt, not a data dump.
MAX_STDIN_BYTES = 256 * 1024


@dataclass(frozen=True)
class AskOptions:
    prompt: str
    json_output: bool = False
    stream: bool = True
    max_steps: int = 25


def compose_prompt(prompt: str, piped: bytes | None) -> tuple[str, str | None]:
    """The prompt with piped input appended as context, and a note if it was cut.

    Binary or non-UTF-8 input is decoded with replacement characters rather than refused:
    ``git diff`` of a file with odd bytes should still be reviewable."""
    if not piped:
        return prompt, None
    notes = []
    if len(piped) > MAX_STDIN_BYTES:
        notes.append(f"stdin is longer than {MAX_STDIN_BYTES} bytes; only those are sent")
        piped = piped[:MAX_STDIN_BYTES]
    if b"\0" in piped[:8192]:
        notes.append("stdin looks binary; sending it with undecodable bytes replaced")
    note = "; ".join(notes) or None
    text = piped.decode("utf-8", errors="replace").rstrip("\n")
    context = f"```\n{text}\n```"
    return (f"{prompt}\n\n{context}" if prompt else context), note


async def run_ask(
    settings: Settings,
    options: AskOptions,
    *,
    out: TextIO,
    err: TextIO,
    interactive_err: bool,
    client: LLMClient | None = None,
    turn: Turn | None = None,
    state: ProviderStateStore | None = None,
) -> int:
    """Answer ``options.prompt`` in one turn, saved as a session; return the exit code.

    ``state`` is where budgets and breakers live (the caller opens and closes it);
    ``None``: this process only."""
    for note in startup_notices(settings, verbose=interactive_err):
        err.write(f"qwen-dev: {note}\n")
    try:
        client = client or LLMClient.from_settings(settings, state=state)
    except LLMError as exc:  # nothing to ask (every provider skipped or unbuildable)
        return _report(exc, Telemetry().snapshot(), options, out, err)
    if interactive_err:
        client.subscribe(lambda event: _notify(event, err))
    # One-shot runs ask nobody: whatever needs approval is denied, and the model told.
    turn = turn or build_agent(
        client,
        settings.approval,
        workspace=Path.cwd(),
        approver=DenyAll(),
        interactive=False,
        max_steps=options.max_steps,
        hidden_env=settings.secret_env_names,
        allow_network=settings.allow_network,
        context_window=ContextBudget.for_settings(settings.client.providers).window,
    )

    def warn(message: str) -> None:
        err.write(f"qwen-dev: {message}\n")

    store = SessionStore(settings.home / "sessions", warn=warn)
    store.prune(settings.session_retention_days)
    session = store.create(Path.cwd())
    recorder = SessionRecorder(session)
    printer = (
        _StreamPrinter(out, err, show_tools=interactive_err)
        if options.stream and not options.json_output
        else None
    )

    def sink(event: AgentEvent) -> None:
        recorder(event)
        if printer is not None:
            printer(event)

    try:
        result = await turn.run([], options.prompt, sink)
        if options.json_output:
            payload = success_payload(result, client.get_metrics(), session.id)
            out.write(json.dumps(payload) + "\n")
        elif printer is None:
            out.write(result.text.rstrip("\n") + "\n")
        return exit_codes.OK
    except LLMError as exc:
        return _report(exc, client.get_metrics(), options, out, err)
    except asyncio.CancelledError:
        recorder.interrupted()
        raise
    finally:
        out.flush()
        session.close()
        MetricsLog(settings.home / "metrics.jsonl").append(client.get_metrics())
        await client.aclose()


def _report(
    exc: LLMError, metrics: dict[str, Any], options: AskOptions, out: TextIO, err: TextIO
) -> int:
    if options.json_output:
        out.write(json.dumps(failure_payload(exc, metrics)) + "\n")
    err.write(f"qwen-dev: {exc}\n")
    return exit_codes.for_error(exc)


class _StreamPrinter:
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
        self._held: list[str] = []

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
                self._write("".join(self._held))
                self._held.clear()
            self._end_line()
        if self.show_tools and isinstance(event, ToolCallStarted):
            arguments = json.dumps(event.arguments, ensure_ascii=False)
            self.err.write(f"qwen-dev: tool {event.name} {_clip(arguments)}\n")
        elif self.show_tools and isinstance(event, ContextCompacted):
            self.err.write(f"qwen-dev: {event.description}\n")
        elif self.show_tools and isinstance(event, ToolCallFinished) and event.status != "ok":
            self.err.write(f"qwen-dev: tool {event.name} {event.status}: {_clip(event.output)}\n")

    def _write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()
        self.at_line_start = text.endswith("\n")

    def _end_line(self) -> None:
        if not self.at_line_start:
            self.out.write("\n")
            self.at_line_start = True


def _clip(text: str, limit: int = 120) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _notify(event: ClientEvent, err: TextIO) -> None:
    if isinstance(event, AttemptStarted):
        return
    err.write(f"qwen-dev: {describe(event)}\n")
    err.flush()


def success_payload(
    result: TurnResult, metrics: dict[str, Any], session_id: str | None
) -> dict[str, Any]:
    """The ``ask --json`` object of DESIGN section 2."""
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
        "metrics": metrics,
    }


def config_failure_payload(message: str) -> dict[str, Any]:
    """The ``ask --json`` failure object for a configuration error (exit code 2)."""
    error = {"type": "config_error", "message": message, "providers": []}
    return {"ok": False, "error": error, "metrics": Telemetry().snapshot()}


def failure_payload(exc: LLMError, metrics: dict[str, Any]) -> dict[str, Any]:
    providers = []
    if isinstance(exc, AllProvidersFailed):
        providers = [{"name": f.provider, "error": f.error.message} for f in exc.failures]
    elif exc.provider:
        providers = [{"name": exc.provider, "error": exc.message}]
    error: dict[str, Any] = {"type": exc.kind, "message": str(exc), "providers": providers}
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        error["retry_after"] = retry_after
    return {"ok": False, "error": error, "metrics": metrics}
