"""``qwen-dev ask``: one question, one answer, for people and for scripts.

stdout carries only the answer (or, with ``--json``, exactly one JSON object);
progress and retry notices go to stderr, and only when stderr is a terminal. What the
user must know whatever stderr is goes there too: tool calls that were denied (with
how to allow them), ``@path`` mentions not attached as written, a provider skipped for
want of its key when none is left.

A run whose model answered exits 0 even when tool calls were denied: the command did
its job (it answered, and said what it did not do); a script that needs the changes
made passes ``--approval auto-edit`` or ``yolo``.
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
from ..core.errors import AllProvidersFailed, NoProviderConfigured
from ..core.events import AttemptStarted, ClientEvent, describe
from ..core.telemetry import Telemetry
from ..tools.read import looks_binary
from .denials import DenialLog
from .mentions import attach_mentions
from .notices import NoticeLog, no_provider_error, startup_notices, workspace_notice
from .recorder import SessionRecorder
from .safe_text import printable
from .turnview import why_cut

if TYPE_CHECKING:
    from ..agent.turn import AgentEvent, Turn, TurnResult
    from ..config import Settings
    from ..runtime import Runtime

#: Piped input beyond this is cut, with a note: a prompt, not a data dump.
MAX_STDIN_BYTES = 256 * 1024


@dataclass(frozen=True)
class AskOptions:
    prompt: str
    json_output: bool = False
    stream: bool = True
    max_steps: int = 25


@dataclass(frozen=True)
class PreparedPrompt:
    """The prompt as the model will get it.

    Args:
        text: the prompt, mentioned files and piped input appended.
        notes: what the user should know about it (for stderr).
        attached: the ``@`` paths attached.
    """

    text: str
    notes: tuple[str, ...] = ()
    attached: tuple[str, ...] = ()


def prepare_prompt(
    prompt: str, piped: bytes | None, settings: Settings, *, workspace: Path
) -> PreparedPrompt:
    """``prompt`` with its ``@path`` mentions attached, as the REPL does (sized against
    the providers' context window), then piped input appended as context (mentions in
    piped input are not followed: it is data, not the user's words)."""
    mentioned = attach_mentions(
        prompt, workspace, budget=ContextBudget.for_settings(settings.client.providers)
    )
    text, note = compose_prompt(mentioned.text, piped)
    notes = (*mentioned.warnings, *((note,) if note else ()))
    return PreparedPrompt(text, notes, mentioned.attached)


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
    if looks_binary(piped):
        notes.append("stdin looks binary; sending it with undecodable bytes replaced")
    note = "; ".join(notes) or None
    text = piped.decode("utf-8", errors="replace").rstrip("\n")
    context = f"```\n{text}\n```"
    return (f"{prompt}\n\n{context}" if prompt else context), note


async def run_ask(
    runtime: Runtime,
    options: AskOptions,
    *,
    out: TextIO,
    err: TextIO,
    interactive_err: bool,
    client: LLMClient | None = None,
    turn: Turn | None = None,
) -> int:
    """Answer ``options.prompt`` in one turn, saved as a session; return the exit code.
    ``client`` and ``turn`` replace the ones ``runtime`` would build (tests)."""
    settings, home = runtime.settings, runtime.home
    daily = NoticeLog(home.notices)
    for note in startup_notices(settings, verbose=interactive_err, daily=daily):
        err.write(f"qwen-dev: {note}\n")
    wide = workspace_notice(Path.cwd())
    if wide is not None and interactive_err:
        err.write(f"qwen-dev: {wide}\n")
    try:
        client = client or runtime.client()
    except NoProviderConfigured:  # every provider skipped: say which, and why
        skipped = [{"name": n, "error": why} for n, why in settings.skipped_providers.items()]
        error = no_provider_error(settings)
        return _report(error, Telemetry().snapshot(), options, out, err, providers=skipped)
    except LLMError as exc:  # a provider that cannot be built
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
        own_files=settings.own_files,
        allow_network=settings.allow_network,
        context_window=ContextBudget.for_settings(settings.client.providers).window,
    )

    def warn(message: str) -> None:
        err.write(f"qwen-dev: {message}\n")

    store = home.session_store(warn)
    store.prune(settings.session_retention_days)
    session = store.create(Path.cwd(), kind="ask")
    recorder = SessionRecorder(session)
    denials = DenialLog()
    printer = (
        _StreamPrinter(out, err, show_tools=interactive_err)
        if options.stream and not options.json_output
        else None
    )

    def sink(event: AgentEvent) -> None:
        recorder(event)
        denials(event)
        if printer is not None:
            printer(event)

    try:
        result = await turn.run([], options.prompt, sink)
        if options.json_output:
            payload = success_payload(result, client.get_metrics(), session.id)
            out.write(json.dumps(payload) + "\n")
        elif printer is None:
            out.write(result.text.rstrip("\n") + "\n")
        out.flush()
        cut = why_cut(result)
        if cut:
            err.write(f"qwen-dev: {cut}\n")
        _tell_denials(denials, err)
        return exit_codes.OK
    except LLMError as exc:
        _tell_denials(denials, err)
        return _report(exc, client.get_metrics(), options, out, err)
    except asyncio.CancelledError:
        recorder.interrupted()
        raise
    finally:
        out.flush()
        session.close()
        home.metrics_log().append(client.get_metrics())
        await client.aclose()


def _report(
    exc: LLMError,
    metrics: dict[str, Any],
    options: AskOptions,
    out: TextIO,
    err: TextIO,
    *,
    providers: list[dict[str, str]] | None = None,
) -> int:
    if options.json_output:
        out.write(json.dumps(failure_payload(exc, metrics, providers=providers)) + "\n")
    err.write(f"qwen-dev: {exc}\n")
    return exit_codes.for_error(exc)


def _tell_denials(denials: DenialLog, err: TextIO) -> None:
    """Whatever stderr is (DESIGN section 7: "stderr says so")."""
    if not denials.denials:
        return
    from ..tools.sandbox import detect_sandbox

    for line in denials.report(detect_sandbox()):
        err.write(f"qwen-dev: {line}\n")
    err.flush()


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
        "finish_reason": result.finish_reason,
        "metrics": metrics,
    }


def config_failure_payload(message: str) -> dict[str, Any]:
    """The ``ask --json`` failure object for a configuration error (exit code 2)."""
    error = {"type": "config_error", "message": message, "providers": []}
    return {"ok": False, "error": error, "metrics": Telemetry().snapshot()}


def failure_payload(
    exc: LLMError, metrics: dict[str, Any], *, providers: list[dict[str, str]] | None = None
) -> dict[str, Any]:
    """The ``ask --json`` failure object; ``providers``: what each provider ended with,
    when the error itself cannot say (providers skipped before any was tried)."""
    if providers is None:
        providers = _providers_of(exc)
    error: dict[str, Any] = {"type": exc.kind, "message": str(exc), "providers": providers}
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        error["retry_after"] = retry_after
    return {"ok": False, "error": error, "metrics": metrics}


def _providers_of(exc: LLMError) -> list[dict[str, str]]:
    if isinstance(exc, AllProvidersFailed):
        return [{"name": f.provider, "error": f.error.message} for f in exc.failures]
    if exc.provider:
        return [{"name": exc.provider, "error": exc.message}]
    return []
