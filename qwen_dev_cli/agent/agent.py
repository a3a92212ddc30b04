"""The agent: one user turn, model and tools in turn until a final answer.

Each step sends the conversation (system prompt, history, this turn so far) through the
client, streams the answer's prose as it comes, and takes the answer apart
(:mod:`.parser`). Without tool calls, that is the answer and the turn ends. Otherwise
every call is carried out under the approval policy (:mod:`.executor`), the results are
appended, and the model is called again, at most ``max_steps`` times. A call that the
token limit cut off (``finish_reason == "length"``, the call's end supplied by repair)
is not run: the model is told, and writes it again. One reply runs
at most :data:`MAX_CALLS_PER_REPLY` calls: native calls past it are each answered "not
run" (up to :data:`MAX_NATIVE_ANSWERED`), calls written as text past it (and those
that could not be read) are not even decoded, and one message answers them all. What
one reply's results add to the conversation is bounded too
(:data:`MAX_REPLY_RESULTS_CHARS`): a hostile answer of a million broken calls adds a
few kilobytes, not gigabytes.

Before each model call the conversation is fitted to the context window
(:mod:`.context`, :mod:`.compaction`): old tool outputs elided, older turns summarised,
reported as a :class:`~qwen_dev_cli.agent.turn.ContextCompacted` event. A server that
still refuses the request as too long gets one compaction and one retry.

Tools travel per provider, per attempt: each request carries them natively (OpenAI
``tools``, and the conversation in OpenAI's form), with a :class:`~.protocol.TextProtocol`
the client applies to every attempt on a provider without native tools, in the text
format of that provider's model (:mod:`.formats`). So failover mid-turn between a
provider with native tools and one without carries the conversation over, and a strong
hosted model keeps native calls when a local fallback cannot have them. Every answer is
read for calls in every form (:mod:`.parser`). Every message, call and result is
reported to the event sink as it happens: the session store and the UI see exactly
what the model sees.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ..core import LLMError, StreamEnd, StreamRestart, TextDelta, Usage
from ..core.providers.bounds import Redactor
from ..core.telemetry import ScopeInfo, Telemetry
from ..session.repair import close_unanswered, tool_result
from ..tools import DEFAULT_TOOLS, ChangeLog, Tool, ToolContext, Workspace
from ..tools.base import DEFAULT_COMMAND_TIMEOUT
from ..tools.private import private_places
from . import protocol
from .approval import ApprovalMode, ApprovalPolicy
from .compaction import Compaction, Compactor, Reason, client_summarizer
from .context import (
    ContextBudget,
    ContextLedger,
    ContextReport,
    context_error,
    context_report,
    fixed_tokens,
)
from .executor import ToolRunner
from .formats import ToolFormat, retry_hint
from .parser import (
    Answer,
    CallProblem,
    DecodedCall,
    ParsedReply,
    new_call_id,
    parse_reply,
    unfinished,
)
from .prompt import NO_FLAGS, PromptFlags, SystemPrompts, read_project_notes
from .stream_filter import ToolMarkupFilter
from .turn import (
    AssistantRestart,
    AssistantText,
    ContextCompacted,
    MessageAdded,
    ToolCallFinished,
    ToolCallRecord,
    ToolCallStarted,
    TurnEnded,
    TurnResult,
)

if TYPE_CHECKING:
    from ..core import ChatResult, LLMClient, Message, ToolSpec
    from .turn import Approver, EventSink

DEFAULT_MAX_STEPS = 25
#: The agent's name in telemetry (``invoke_agent qwen-dev`` spans).
AGENT = "qwen-dev"


@dataclass
class _Tally:
    """What the turn's model calls add up to."""

    usage: Usage = field(default_factory=Usage)
    attempts: int = 0
    latency_ms: float = 0.0
    provider: str = ""
    model: str = ""
    steps: int = 0
    records: list[ToolCallRecord] = field(default_factory=list)
    finish_reason: str | None = None

    def add(self, result: ChatResult) -> None:
        self.usage = Usage(
            self.usage.prompt_tokens + result.usage.prompt_tokens,
            self.usage.completion_tokens + result.usage.completion_tokens,
            self.usage.total_tokens + result.usage.total_tokens,
        )
        self.attempts += result.attempts
        self.latency_ms += result.latency_ms
        self.provider, self.model = result.provider, result.model
        self.finish_reason = result.finish_reason
        self.steps += 1


@dataclass(frozen=True)
class _Pending:
    """A call of the answer, decoded or not, to carry out (or explain)."""

    id: str
    name: str
    call: DecodedCall | None
    problem: CallProblem | None
    #: Why it is answered without running (the surplus of a reply, in one message).
    refusal: str | None = None


class Agent:
    """Runs user turns with tools (the :class:`~qwen_dev_cli.agent.turn.Turn` protocol).

    Args:
        client: the resilient client.
        workspace: the root every path must stay inside.
        approval: ``ask``, ``auto-edit`` or ``yolo`` (docs/architecture.md section 7).
        approver: asked whatever the mode leaves to the user.
        interactive: whether there is a terminal to ask; without one, whatever needs
            asking is denied (critical commands included, in every mode).
        max_steps: model calls per turn.
        changes: the session's file changes (shared with ``/undo``); a new one if None.
        tools: the tools offered to the model.
        command_timeout: default timeout of ``run_command``, seconds.
        home: the home folder: for command risk, and where the credential stores are.
        hidden_env: variables commands must not see (the providers' keys).
        secrets: the providers' key values: removed from every tool output before the
            model sees it (a command run without a sandbox could print one).
        own_files: qwen-dev's own private files (:attr:`Settings.own_files`); with the
            home folder's credential stores, no tool reads them and no command sees them.
        remembered: commands approved "always" (shared across a session's turns).
        context_window: the window to fit (tokens); ``None``: the tightest the
            providers report (``context_window``), else the default.
        ledger: the conversation's token accounting, kept across turns (the REPL's);
            a new one if None.
        prompt_flags: the command line's changes to the system prompt.
        before_command: awaited with each approved command before it runs (the
            REPL's checkpoint of the workspace).
    """

    def __init__(
        self,
        client: LLMClient,
        *,
        workspace: Path | str,
        approval: ApprovalMode = "ask",
        approver: Approver,
        interactive: bool,
        max_steps: int = DEFAULT_MAX_STEPS,
        changes: ChangeLog | None = None,
        tools: Sequence[Tool] = DEFAULT_TOOLS,
        command_timeout: float = DEFAULT_COMMAND_TIMEOUT,
        home: Path | None = None,
        hidden_env: Iterable[str] = (),
        secrets: Iterable[str] = (),
        own_files: Iterable[Path] = (),
        allow_network: bool = False,
        remembered: set[str] | None = None,
        context_window: int | None = None,
        ledger: ContextLedger | None = None,
        prompt_flags: PromptFlags = NO_FLAGS,
        before_command: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        if max_steps < 1:
            raise ValueError(f"max_steps must be at least 1, not {max_steps}")
        self.client = client
        self.prompt_flags = prompt_flags
        home = home or Path.home()
        self.workspace = Workspace(workspace, private_places(home, own_files))
        self.max_steps = max_steps
        self.changes = changes if changes is not None else ChangeLog()
        self.policy = ApprovalPolicy(
            approval, approver, interactive=interactive, remembered=remembered
        )
        self.tools = {tool.name: tool for tool in tools}
        context = ToolContext(
            self.workspace,
            command_timeout=command_timeout,
            home=home,
            hidden_env=frozenset(hidden_env),
            allow_network=allow_network,
        )
        self.runner = ToolRunner(
            self.tools,
            context,
            self.policy,
            self.changes,
            redact=Redactor(secrets),
            before_command=before_command,
        )
        budget = ContextBudget.for_providers(client.providers)
        budget = budget if context_window is None else budget.with_window(context_window)
        self.ledger = ledger if ledger is not None else ContextLedger()
        self.budget = self.ledger.fit(budget)

    @property
    def protocols(self) -> dict[str, ToolFormat | Literal["native"]]:
        """How each provider is given the tools: ``native``, or a text format."""
        return {p.name: protocol.format_for(p) or "native" for p in self.client.providers}

    def system_prompts(self) -> SystemPrompts:
        """This turn's system prompt, for each protocol (the project notes read now)."""
        return SystemPrompts(
            workspace=self.workspace,
            tools=list(self.tools.values()),
            approval=self.policy.mode,
            notes=read_project_notes(self.workspace),
            flags=self.prompt_flags,
        )

    async def run(self, history: list[Message], user_text: str, sink: EventSink) -> TurnResult:
        # An ``invoke_agent`` span when telemetry is exported (docs/architecture.md §5).
        info = ScopeInfo(AGENT, content=[{"role": "user", "content": user_text}])
        with _traced(self.client, "invoke_agent", info):
            result = await self._turn(history, user_text, sink)
            info.outcome, info.output = result.stopped, result.text
            return result

    async def _turn(self, history: list[Message], user_text: str, sink: EventSink) -> TurnResult:
        user: Message = {"role": "user", "content": user_text}
        prompts = self.system_prompts()
        system: Message = {"role": "system", "content": prompts.native()}
        compactor = self._compactor(prompts)
        compactor.check_fits(user)  # before anything is recorded or sent
        sink(MessageAdded(user))
        conversation = [*close_unanswered(history), user]
        text_tools = protocol.TextProtocol(prompts.text)
        tally = _Tally()
        while True:
            result, conversation = await self._ask_fitted(
                compactor, system, conversation, text_tools, sink
            )
            tally.add(result)
            # Handed over for good: the parser may let a huge answer go before it makes
            # the prose, so the two are never held at once (parser.Answer).
            answer = Answer(result.text)
            result = dataclasses.replace(result, text="")
            reply = parse_reply(answer, result.tool_calls, self._schemas, limit=MAX_CALLS_PER_REPLY)
            del answer
            # The raw text is read; holding it beside its prose (a copy, when it was
            # only trimmed) would keep a huge answer twice while it is recorded. Plain
            # prose came trimmed already (``ends_apart``): parsing it whole or trimmed
            # gives the same reply (tests/agent/test_ends_apart.py), and its prose is
            # then the very string it was given, not a copy.
            result = dataclasses.replace(result, text=reply.text, lead="", trail="")
            pending = _pending(reply, native=bool(result.tool_calls))
            if result.finish_reason == "length":
                pending = [_unless_cut_off(item) for item in pending]
            assistant = protocol.assistant_message(reply.text, [_entry(p) for p in pending])
            conversation.append(assistant)
            sink(MessageAdded(assistant, result))
            if not pending:
                return _end(reply.text, tally, "done", sink)
            if tally.steps >= self.max_steps:
                return self._stop_at_limit(pending, conversation, tally, sink)
            done, room = 0, MAX_REPLY_RESULTS_CHARS
            try:
                for item in pending:
                    if item.refusal is not None:
                        message = _not_run(item, item.refusal, tally, sink)
                    elif done >= MAX_CALLS_PER_REPLY:  # refused, but answered: every
                        # call needs its result
                        message = _not_run(item, _too_many(len(pending)), tally, sink)
                    elif room <= 0:
                        message = _not_run(item, _no_room(), tally, sink)
                    else:
                        message = _within(await self._carry_out(item, tally, sink), room)
                    room -= len(str(message.get("content", "")))
                    _add(message, conversation, sink)
                    done += 1
            except asyncio.CancelledError:
                # Every tool call needs its result, or the provider refuses the next
                # request (HTTP 400) and the conversation is stuck until /new.
                for item in pending[done:]:
                    closing = tool_result(item.id, item.name, INTERRUPTED)
                    _add(closing, conversation, sink)
                raise

    # --- the context window ------------------------------------------------------------

    async def compact(
        self, history: list[Message], sink: EventSink, *, focus: str | None = None
    ) -> Compaction | None:
        """``/compact``: compact ``history`` now (keeping the latest exchange verbatim);
        ``None`` when there is nothing to compact."""
        compactor = self._compactor(self.system_prompts())
        conversation = close_unanswered(history)
        return await self._compact(compactor, conversation, sink, "manual", focus)

    def context_report(self, history: list[Message]) -> ContextReport:
        """``/context``: the window and what fills it."""
        system, tools = self._heaviest(self.system_prompts())
        return context_report(self.budget, system, tools, history, self.ledger)

    @property
    def _schemas(self) -> dict[str, dict[str, Any]]:
        """Each tool's parameters schema, by name: what calls written as text are read
        against (and their values typed by)."""
        return {name: tool.spec()["function"]["parameters"] for name, tool in self.tools.items()}

    def _specs(self) -> list[ToolSpec]:
        return [tool.spec() for tool in self.tools.values()]

    def _heaviest(self, prompts: SystemPrompts) -> tuple[Message, list[ToolSpec] | None]:
        """The system prompt and tool schemas, as sent to the provider in use that they
        take the most room with (the window must fit whichever answers)."""
        options: list[tuple[Message, list[ToolSpec] | None]] = []
        for fmt in dict.fromkeys(protocol.format_for(p) for p in self.client.providers):
            system: Message = {"role": "system", "content": prompts.get(fmt)}
            options.append((system, self._specs() if fmt is None else None))
        return max(options, key=lambda option: fixed_tokens(*option))

    def _compactor(self, prompts: SystemPrompts) -> Compactor:
        summarize = client_summarizer(self.client)
        fixed = fixed_tokens(*self._heaviest(prompts))
        return Compactor(summarize, self.budget, self.ledger, fixed)

    async def _compact(
        self,
        compactor: Compactor,
        conversation: list[Message],
        sink: EventSink,
        reason: Reason,
        focus: str | None = None,
    ) -> Compaction | None:
        done = await compactor.compact(conversation, reason=reason, focus=focus)
        if done is not None:
            sink(
                ContextCompacted(
                    list(done.view),
                    done.before,
                    done.after,
                    done.window,
                    done.describe(),
                    done.to_meta(),
                )
            )
            if done.problem is not None:  # compacted (the summary kept), and still too large
                raise done.problem
        return done

    async def _ask_fitted(
        self,
        compactor: Compactor,
        system: Message,
        conversation: list[Message],
        text_tools: protocol.TextProtocol,
        sink: EventSink,
    ) -> tuple[ChatResult, list[Message]]:
        """One model call on ``conversation`` compacted as needed (and once more if the
        server still finds it too long); the answer and the conversation it was given."""
        if compactor.due(conversation):
            done = await self._compact(compactor, conversation, sink, "auto")
            conversation = done.view if done is not None else conversation
        retried = False
        while True:
            messages = [system, *protocol.render_native(conversation)]
            try:
                result = await self._ask_model(messages, text_tools, sink)
            except LLMError as exc:
                refusal = context_error(exc)
                if refusal is None or retried:
                    raise
                retried = True
                self.budget = compactor.refused(refusal, conversation)
                done = await self._compact(compactor, conversation, sink, "overflow")
                if done is None:
                    raise
                conversation = done.view
                continue
            compactor.accepted(conversation, result.usage)
            return result, conversation

    async def _ask_model(
        self, messages: list[Message], text_tools: protocol.TextProtocol, sink: EventSink
    ) -> ChatResult:
        markup = ToolMarkupFilter(self.tools)
        result = None
        stream = self.client.stream(
            messages,
            self._specs(),
            max_tokens=self.budget.answer_tokens,
            text_tools=text_tools,
            ends_apart=True,
        )
        async for event in stream:
            if isinstance(event, TextDelta):
                if shown := markup.feed(event.text):
                    sink(AssistantText(shown))
            elif isinstance(event, StreamRestart):
                markup.reset()
                sink(AssistantRestart(event.reason))
            elif isinstance(event, StreamEnd):
                result = event.result
        if rest := markup.flush():
            sink(AssistantText(rest))
        assert result is not None, "the client's stream ends with StreamEnd"
        return result

    async def _carry_out(self, item: _Pending, tally: _Tally, sink: EventSink) -> Message:
        arguments = item.call.arguments if item.call else {}
        sink(ToolCallStarted(item.id, item.name, arguments))
        info = ScopeInfo(item.name, call_id=item.id, content=arguments)
        with _traced(self.client, "execute_tool", info):
            if item.call is not None:
                outcome = await self.runner.run(item.id, item.name, arguments, sink)
                status, output = outcome.status, outcome.output
            else:
                assert item.problem is not None
                status, output = "error", _problem_text(item.problem)
            info.outcome, info.output = status, output
        sink(ToolCallFinished(item.id, item.name, status, output))
        tally.records.append(ToolCallRecord(item.name, arguments, status))
        return tool_result(item.id, item.name, output)

    def _stop_at_limit(
        self, pending: list[_Pending], conversation: list[Message], tally: _Tally, sink: EventSink
    ) -> TurnResult:
        """Answer the last calls without running them (every call needs a result), and
        end the turn saying why."""
        skipped = (
            f"not run: this turn reached its limit of {self.max_steps} model calls before "
            "a final answer"
        )
        for item in pending:
            _add(_not_run(item, skipped, tally, sink), conversation, sink)
        notice = (
            f"Stopped after {self.max_steps} model calls without a final answer "
            f"({len(pending)} pending tool call(s) not run). Say 'continue' to go on, or "
            "allow more steps (--max-steps)."
        )
        sink(AssistantText(f"\n{notice}\n"))
        return _end(notice, tally, "max_steps", sink)


INTERRUPTED = "not run: the user interrupted the turn before this tool call finished"
#: Tool calls one model reply may make; the rest are refused (a hostile or looping
#: model could otherwise send thousands in one reply).
MAX_CALLS_PER_REPLY = 32


#: Native calls of one reply answered one by one (those past :data:`MAX_CALLS_PER_REPLY`
#: with a short "not run"); the rest leave the assistant message, and one message
#: answers them all, so a server sending a million calls adds a bounded amount.
MAX_NATIVE_ANSWERED = 8 * MAX_CALLS_PER_REPLY
#: What the tool results of one reply may add to the conversation, characters (about
#: 50,000 tokens): past it, a result is cut and the reply's further calls are not run.
MAX_REPLY_RESULTS_CHARS = 200_000


def _no_room() -> str:
    return (
        f"not run: this reply's tool results already fill {MAX_REPLY_RESULTS_CHARS:,} "
        "characters, all one reply's results may take. Ask for the rest in later replies."
    )


def _within(message: Message, room: int) -> Message:
    """``message`` with its content cut to ``room`` characters, saying so."""
    content = str(message.get("content", ""))
    if len(content) <= room:
        return message
    note = (
        f"\n[cut: this reply's tool results reached {MAX_REPLY_RESULTS_CHARS:,} "
        "characters, all one reply's results may take]"
    )
    return {**message, "content": content[: max(0, room - len(note))] + note}


def _surplus(count: int, unreadable: int, after: int) -> str:
    what = f"{count} more tool call(s)" + (
        f", {unreadable} of them unreadable," if unreadable else ""
    )
    return (
        f"not run: one reply may make at most {MAX_CALLS_PER_REPLY} tool calls, and this one "
        f"wrote {what} after the first {after}; none of them was read or run (this one "
        "message answers them all). Make fewer calls at a time, each complete."
    )


def _unless_cut_off(item: _Pending) -> _Pending:
    """``item`` of a reply cut at its token limit: refused if the cut fell inside it."""
    missing = unfinished(item.call) if item.call is not None else []
    if not missing:
        return item
    reason = (
        "not run: the answer was cut off at its token limit (finish_reason=length) "
        f"before this call was complete ({', '.join(missing)}), so it may lack what came "
        "next (another parameter, the rest of a value). Write the call again, complete; "
        "shorter, or split the work."
    )
    return dataclasses.replace(item, refusal=reason)


def _too_many(count: int) -> str:
    return (
        f"not run: one reply may make at most {MAX_CALLS_PER_REPLY} tool calls and this "
        f"one made {count}; the first {MAX_CALLS_PER_REPLY} ran. Ask for the rest in "
        "later replies, fewer at a time."
    )


def _not_run(item: _Pending, reason: str, tally: _Tally, sink: EventSink) -> Message:
    """The result of a call refused without running it."""
    arguments = item.call.arguments if item.call else {}
    sink(ToolCallStarted(item.id, item.name, arguments))
    sink(ToolCallFinished(item.id, item.name, "denied", reason))
    tally.records.append(ToolCallRecord(item.name, arguments, "denied"))
    return tool_result(item.id, item.name, reason)


def _pending(reply: ParsedReply, *, native: bool) -> list[_Pending]:
    """The calls of ``reply`` to answer: calls written as text past
    :data:`MAX_CALLS_PER_REPLY` (with those the parser did not read), native ones past
    :data:`MAX_NATIVE_ANSWERED`, become one item answered without running (the
    assistant message keeps only the calls answered)."""
    items = [_Pending(call.id, call.name, call, None) for call in reply.calls]
    for problem in reply.problems:
        call_id = problem.id or new_call_id()
        items.append(_Pending(call_id, problem.name or "unparsed_call", None, problem))
    kept = MAX_NATIVE_ANSWERED if native else MAX_CALLS_PER_REPLY
    if len(items) <= kept and not reply.unread:
        return items
    surplus = items[kept:]
    unreadable = sum(1 for item in surplus if item.call is None) + reply.unread
    reason = _surplus(len(surplus) + reply.unread, unreadable, kept)
    name = surplus[0].name if surplus else "unparsed_call"
    extra = _Pending(new_call_id(), name, None, None, refusal=reason)
    return [*items[:kept], extra]


def _entry(item: _Pending) -> dict[str, Any]:
    if item.call is not None:
        return protocol.call_entry(item.call)
    problem = item.problem or CallProblem(item.refusal or "", "", name=item.name)
    return protocol.problem_entry(item.id, problem)


def _problem_text(problem: CallProblem) -> str:
    raw = problem.raw if len(problem.raw) <= 500 else problem.raw[:500] + "…"
    how = retry_hint(problem.form)
    return f"Error: your tool call could not be used: {problem.reason}.\nIt was: {raw}\n{how}"


def _add(message: Message, conversation: list[Message], sink: EventSink) -> None:
    conversation.append(message)
    sink(MessageAdded(message))


def _traced(
    client: object, kind: Literal["invoke_agent", "execute_tool"], info: ScopeInfo
) -> AbstractContextManager[object]:
    """The client's telemetry scope (a span when exported), or nothing."""
    telemetry = getattr(client, "telemetry", None)
    return telemetry.scope(kind, info) if isinstance(telemetry, Telemetry) else nullcontext()


def _end(
    text: str, tally: _Tally, stopped: Literal["done", "max_steps"], sink: EventSink
) -> TurnResult:
    result = TurnResult(
        text=text,
        provider=tally.provider,
        model=tally.model,
        usage=tally.usage,
        attempts=tally.attempts,
        latency_ms=tally.latency_ms,
        steps=tally.steps,
        tool_calls=list(tally.records),
        stopped=stopped,
        finish_reason=tally.finish_reason,
    )
    sink(TurnEnded(result))
    return result
