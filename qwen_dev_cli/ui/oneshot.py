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
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Literal, TextIO

from .. import exit_codes
from ..agent.context import ContextBudget
from ..agent.turn import DenyAll, why_cut
from ..core import LLMError
from ..core.errors import NoProviderConfigured
from ..core.telemetry import Telemetry
from ..session.store import SessionError
from ..tools.read import looks_binary
from .denials import DenialLog
from .mentions import attach_mentions
from .notices import ClientNotices, workspace_notice
from .output import OutputFormat, config_failure_payload, output_for
from .recorder import SessionRecorder
from .stream_json import StartInfo, StreamJson, config_failure_event
from .tool_lines import ToolLines

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..agent import Agent
    from ..agent.turn import AgentEvent, Approver, EventSink
    from ..config import Settings
    from ..core import LLMClient
    from ..runtime import Runtime
    from ..session.store import Session
    from ..tools.rules import ToolRules
    from .checkpointing import Checkpoints
    from .output import AskOutput

#: Piped input beyond this is cut, with a note: a prompt, not a data dump.
MAX_STDIN_BYTES = 256 * 1024


@dataclass(frozen=True)
class AskOptions:
    """What ``qwen-dev ask`` was asked.

    Args:
        prompt: the prompt as prepared (:func:`prepare_prompt`).
        output_format: ``text``, ``json`` (``--json``) or ``stream-json``.
        stream: text as it comes (``--no-stream``: once complete).
        max_steps: model calls the turn may make.
        partial: stream-json's text deltas (``--include-partial-messages``).
        verbose: notices, retries and failovers on stderr even without a terminal.
        system_prompt, append_system_prompt, read_only: as :meth:`Runtime.agent` takes
            them (``--system-prompt``, ``--append-system-prompt``, ``--permission-mode
            plan``).
        input_format: ``stream-json``: turns and control requests from stdin.
        session_id: ``--session-id``: the new session's id.
        resume_id, continue_latest: ``--resume ID`` and ``--continue``: the turn goes on
            in that saved session (``--continue``: this folder's latest, of any kind).
        rules: ``--allowedTools``/``--disallowedTools``.
    """

    prompt: str
    output_format: OutputFormat = "text"
    stream: bool = True
    max_steps: int = 25
    partial: bool = False
    verbose: bool = False
    system_prompt: str | None = None
    append_system_prompt: str | None = None
    read_only: bool = False
    input_format: Literal["text", "stream-json"] = "text"
    session_id: str | None = None
    resume_id: str | None = None
    continue_latest: bool = False
    rules: ToolRules | None = None


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
    stdin: BinaryIO | None = None,
) -> int:
    """Answer ``options.prompt`` in one turn, saved as a session; return the exit code.
    With ``options.input_format`` ``stream-json``, the turns (after ``options.prompt``,
    if any) come from ``stdin`` (:mod:`.stream_input`)."""
    output = output_for(
        options.output_format,
        stream=options.stream,
        out=out,
        err=err,
        show_tools=interactive_err,
        partial=options.partial,
    )

    def warn(message: str) -> None:
        err.write(f"qwen-dev: {message}\n")

    if options.rules:
        runtime = dataclasses.replace(runtime, rules=options.rules)
        for note in options.rules.ignored(tool.name for tool in runtime.tools.tools()):
            warn(note)
    wide = workspace_notice(runtime.workspace)
    chatty = interactive_err or options.verbose
    guard = HeadlessCheckpoints(runtime, _checkpoint_notices(output, warn, chatty=chatty))
    try:
        async with runtime.open_client(warn, verbose=chatty) as client:
            if wide is not None and chatty:
                warn(wide)
            client.subscribe(ClientNotices(lambda line: _notify(line, err), chatty=chatty))
            client.subscribe(output.client_event)
            if isinstance(output, StreamJson):
                output.watch_budget(client.status)
            if options.input_format == "stream-json":
                assert isinstance(output, StreamJson)
                assert stdin is not None
                return await _stream_session(runtime, options, client, output, stdin, warn, guard)
            # One-shot runs ask nobody: whatever needs approval is denied, and the model
            # told.
            turn = runtime.agent(
                client,
                DenyAll(),
                interactive=False,
                max_steps=options.max_steps,
                system_prompt=options.system_prompt,
                append_system_prompt=options.append_system_prompt,
                read_only=options.read_only,
                before_command=guard.before_command,
            )
            if may_change_files(turn, interactive=False, rules=bool(runtime.rules)):
                guard.enable()
            sinks: list[EventSink] = [output]
            if options.output_format == "text" and not interactive_err:
                sinks.append(ToolLines(err))  # a CI log shows what ran
            return await _answer(runtime, options, turn, client, sinks, output, warn, guard)
    except NoProviderConfigured as exc:  # every provider skipped: say which, and why
        skipped = [
            {"name": name, "error": why} for name, why in runtime.settings.skipped_providers.items()
        ]
        return _report(exc, Telemetry().snapshot(), output, warn, providers=skipped)
    except LLMError as exc:  # a provider that cannot be built
        return _report(exc, Telemetry().snapshot(), output, warn)
    except SessionError as exc:  # --resume, --session-id: checked before, but races
        _session_failed(str(exc), options.output_format, out)
        warn(str(exc))
        return exit_codes.USAGE_ERROR


async def _stream_session(
    runtime: Runtime,
    options: AskOptions,
    client: LLMClient,
    output: StreamJson,
    stdin: BinaryIO,
    warn: Callable[[str], None],
    guard: HeadlessCheckpoints,
) -> int:
    """Turns from stdin: the caller answers approval questions (``can_use_tool``)."""
    from .stream_input import run_stream_session

    def make_agent(approver: Approver) -> Agent:
        agent = runtime.agent(
            client,
            approver,
            interactive=True,
            max_steps=options.max_steps,
            system_prompt=options.system_prompt,
            append_system_prompt=options.append_system_prompt,
            read_only=options.read_only,
            before_command=guard.before_command,
        )
        if may_change_files(agent, interactive=True, rules=bool(runtime.rules)):
            guard.enable()
        return agent

    session = open_session(runtime, options, warn)
    return await run_stream_session(
        checkpoints=guard,
        session=session,
        stdin=stdin,
        output=output,
        warn=warn,
        client=client,
        make_agent=make_agent,
        start_info=lambda agent, session_id: _start_info(
            runtime, agent, client, session_id, plan=options.read_only
        ),
        first_prompt=options.prompt or None,
    )


async def _answer(
    runtime: Runtime,
    options: AskOptions,
    turn: Agent,
    client: LLMClient,
    sinks: list[EventSink],
    output: AskOutput,
    warn: Callable[[str], None],
    guard: HeadlessCheckpoints,
) -> int:
    """The turn, recorded as a session of kind ``ask``, its events told to ``sinks``
    (``output`` first) and its end to ``output``; the workspace checkpointed around it
    when ``guard`` is enabled."""
    session = open_session(runtime, options, warn)
    recorder = SessionRecorder(session)
    denials = DenialLog()

    def sink(event: AgentEvent) -> None:
        recorder(event)
        denials(event)
        for each in sinks:
            each(event)

    ended = True  # the end of the turn is checkpointed (not when it was cancelled)
    try:
        output.started(_start_info(runtime, turn, client, session.id, plan=options.read_only))
        await guard.turn_started(session, options.prompt)
        result = await turn.run(list(session.view), options.prompt, sink)
        output.answered(result, client.get_metrics(), session.id)
        cut = why_cut(result)
        if cut:
            warn(cut)
        _tell_denials(denials, warn)
        return exit_codes.OK
    except LLMError as exc:
        _tell_denials(denials, warn)
        return _report(exc, client.get_metrics(), output, warn)
    except asyncio.CancelledError:
        ended = False
        recorder.interrupted()
        if isinstance(output, StreamJson) and output.gone:
            # stdout's reader left and the turn was cancelled for it: end quietly.
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            return exit_codes.INTERRUPTED
        raise
    finally:
        if ended:
            await guard.turn_ended()
        guard.close()
        session.close()


def open_session(runtime: Runtime, options: AskOptions, warn: Callable[[str], None]) -> Session:
    """The session the headless turns go into: the one ``--resume`` names, this folder's
    latest (``--continue``; a new one when there is none, said on stderr), or a new one
    of kind ``ask`` (of ``--session-id``'s id, if given). Raises
    :class:`~qwen_dev_cli.session.store.SessionError`."""
    store = runtime.home.session_store(warn)
    store.prune(runtime.settings.session_retention_days)
    resume = options.resume_id
    if options.continue_latest:
        latest = store.latest(runtime.workspace)
        if latest is None:
            warn("no earlier session in this folder; starting a new one")
        else:
            resume = latest.id
    if resume is not None:
        return store.resume(resume)
    return store.create(runtime.workspace, kind="ask", session_id=options.session_id)


def may_change_files(agent: Agent, *, interactive: bool, rules: bool) -> bool:
    """Whether a headless turn of ``agent`` can change the workspace, so needs a
    checkpoint: it has a tool that writes or runs something, and someone can approve
    it (``interactive``: a stream-json caller), or the approval mode or the
    ``--allowedTools`` ``rules`` let some run unasked. (``ask`` without a terminal in
    the default mode changes nothing: whatever would, is denied.)"""
    if all(tool.kind == "read" for tool in agent.tools.values()):
        return False
    return interactive or agent.policy.mode != "ask" or rules


class HeadlessCheckpoints:
    """A headless run's checkpoints (:class:`~.checkpointing.Checkpoints`, headless):
    before each turn, before each approved command and at each turn's end, once
    :meth:`enable` d. Until then each call does nothing, and the checkpoint modules are
    not imported: ``ask`` in the default mode, which can change nothing, pays nothing.

    Args:
        runtime: whose workspace and home.
        notices: how a missing checkpoint is said, and how skipped files are
            (:func:`_checkpoint_notices`).
    """

    def __init__(
        self,
        runtime: Runtime,
        notices: tuple[Callable[[str], None], Callable[[str], None]],
    ) -> None:
        self.runtime = runtime
        self.notices = notices
        self.checkpoints: Checkpoints | None = None

    def enable(self) -> None:
        if self.checkpoints is None:
            from .checkpointing import Checkpoints

            warn, note = self.notices
            self.checkpoints = Checkpoints.for_runtime(self.runtime, warn, note=note, headless=True)

    async def turn_started(self, session: Session, prompt: str) -> None:
        if self.checkpoints is not None:
            await self.checkpoints.turn_started(session, prompt)

    async def before_command(self, command: str) -> None:
        if self.checkpoints is not None:
            await self.checkpoints.before_command(command)

    async def turn_ended(self) -> None:
        if self.checkpoints is not None:
            await self.checkpoints.turn_ended()

    def close(self) -> None:
        if self.checkpoints is not None:
            self.checkpoints.close()


def _checkpoint_notices(
    output: AskOutput, warn: Callable[[str], None], *, chatty: bool
) -> tuple[Callable[[str], None], Callable[[str], None]]:
    """How a headless run says a checkpoint is missing (a ``system`` ``warning`` event
    in stream-json, else a stderr line), and which files checkpoints leave out (the
    same, but on stderr only with a terminal or ``--verbose``)."""
    if isinstance(output, StreamJson):

        def event(message: str) -> None:
            output.notice("warning", message)

        return event, event
    return warn, (warn if chatty else _ignore)


def _ignore(message: str) -> None:
    pass


def _session_failed(message: str, output_format: OutputFormat, out: TextIO) -> None:
    """A session that cannot be opened, for a script: the failure object or event."""
    if output_format == "json":
        out.write(json.dumps(config_failure_payload(message, kind="session_error")) + "\n")
    elif output_format == "stream-json":
        out.write(json.dumps(config_failure_event(message, kind="session_error")) + "\n")
    out.flush()


#: Claude Code's names of our approval modes (``--permission-mode``).
PERMISSION_MODES = {"ask": "default", "auto-edit": "acceptEdits", "yolo": "bypassPermissions"}


def _start_info(
    runtime: Runtime, agent: Agent, client: LLMClient, session_id: str, *, plan: bool
) -> StartInfo:
    from .. import __version__

    mode = "plan" if plan else PERMISSION_MODES.get(agent.policy.mode, agent.policy.mode)
    providers = client.providers
    return StartInfo(
        session_id=session_id,
        cwd=str(runtime.workspace),
        model=providers[0].model if providers else "",
        tools=list(agent.tools),
        permission_mode=mode,
        providers=[provider.name for provider in providers],
        version=__version__,
    )


def _report(
    exc: LLMError,
    metrics: dict[str, Any],
    output: AskOutput,
    warn: Callable[[str], None],
    *,
    providers: list[dict[str, str]] | None = None,
) -> int:
    output.failed(exc, metrics, providers=providers)
    warn(str(exc))
    return exit_codes.for_error(exc)


def _tell_denials(denials: DenialLog, warn: Callable[[str], None]) -> None:
    """Whatever stderr is (docs/architecture.md section 7: "stderr says so")."""
    if not denials.denials:
        return
    from ..tools.sandbox import detect_sandbox

    for line in denials.report(detect_sandbox()):
        warn(line)


def _notify(line: str, err: TextIO) -> None:
    err.write(f"qwen-dev: {line}\n")
    err.flush()
