"""``--output-format stream-json``: the turn as newline-delimited JSON events on stdout,
in Claude Code's message schema (the one Qwen Code follows and agent SDKs parse).

- ``system``/``init`` first: the session, working folder, model, tools, permission
  mode and providers;
- ``assistant`` per model reply: ``message.content`` blocks ``text`` and
  ``tool_use{id,name,input}``, with ``model``, ``usage`` and ``stop_reason``;
- ``user`` per tool result: one ``tool_result{tool_use_id,content,is_error}`` block;
- ``stream_event`` text deltas as they arrive (``--include-partial-messages``);
- ours on top, as ``system`` subtypes: ``retry``, ``failover``, ``circuit``,
  ``rate_limit_wait`` (with ``max_wait``, when the client gives up waiting), ``quota``
  (a provider's quota exhausted: ``resets_in``, ``resetsAt``; once per provider until
  it resets), ``throttled`` (a provider refused locally by adaptive throttling) and
  ``retry_budget`` (the account's retry budget spent: no retry) (the client's
  resilience), ``compaction`` (the context window) and ``restart`` (a broken stream
  re-issued: the deltas since the last reply are void);
- ``rate_limit_event`` (Claude Code's, from the account's shared budget: the client's
  requests and tokens per minute, and a provider's 429 cool-down), when a provider's
  budget is first known and whenever its status changes: ``rate_limit_info{status
  allowed|allowed_warning|rejected, resetsAt, utilization, provider}``;
- ``result`` last: ``success``, ``error_max_turns`` or ``error_during_execution``.

Every event carries ``session_id`` and a fresh ``uuid``; each is one complete line,
flushed when written (text deltas that arrive together, from one network read, are
flushed together once that moment's work is done), and nothing else is written on
stdout. A reader that goes away
(EPIPE) cancels the turn (as Ctrl-C would: the stream and the tools unwind themselves);
``ask`` sees :attr:`StreamJson.gone`, keeps the session as interrupted, and exits
quietly.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from ..agent.turn import (
    AssistantRestart,
    AssistantText,
    ContextCompacted,
    MessageAdded,
    ToolCallFinished,
    ToolCallStarted,
)
from ..core.events import (
    BreakerTransition,
    Failover,
    QuotaExhausted,
    RateLimitWait,
    RetryBudgetSpent,
    RetryScheduled,
    Throttled,
)
from ..session.jsonl import json_line

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..agent.turn import AgentEvent, TurnResult
    from ..core import ChatResult, LLMError, Usage
    from ..core.events import ClientEvent
    from ..core.status import ClientStatus, ProviderStatus


@dataclass(frozen=True)
class StartInfo:
    """What ``system``/``init`` says about the run about to start."""

    session_id: str
    cwd: str
    model: str
    tools: list[str]
    permission_mode: str
    providers: list[str]
    version: str


#: Claude's stop reasons for the OpenAI finish reasons we get.
_STOP_REASONS = {"stop": "end_turn", "tool_calls": "tool_use", "length": "max_tokens"}


def stop_reason(finish_reason: str | None) -> str | None:
    """Claude's name for ``finish_reason`` (others as they are)."""
    if finish_reason is None:
        return None
    return _STOP_REASONS.get(finish_reason, finish_reason)


def usage_of(usage: Usage) -> dict[str, int]:
    """Token counts under Claude's names."""
    return {"input_tokens": usage.prompt_tokens, "output_tokens": usage.completion_tokens}


#: A budget this much used is ``allowed_warning`` (Claude Code's "approaching the limit").
WARNING_AT = 0.8
#: Seconds of the budget's sliding window (the client's requests and tokens per minute):
#: whatever was spent now has left the window by then.
BUDGET_WINDOW = 60.0
#: Seconds a quota of unknown reset is not told again for the same provider.
QUOTA_REPEAT = 3600.0


def budget_info(
    provider: ProviderStatus, *, now: float, wait: float = 0.0
) -> dict[str, Any] | None:
    """``rate_limit_info`` for one provider's shared budget as the client last learned
    it; ``wait``: seconds the client is about to wait for it (``RateLimitWait``);
    ``now``: Unix time. ``None`` when nothing is known (no budget, no cool-down)."""
    shares = [
        1.0 - left / limit
        for limit, left in (
            (provider.rpm_limit, provider.rpm_left),
            (provider.tpm_limit, provider.tpm_left),
        )
        if limit and left is not None
    ]
    utilization = max(shares) if shares else None
    blocked = max(provider.cooldown, wait)
    if blocked > 0 or (utilization is not None and utilization >= 1.0):
        status = "rejected"
        resets = now + (blocked if blocked > 0 else BUDGET_WINDOW)
    elif utilization is None:
        return None
    else:
        status = "allowed_warning" if utilization >= WARNING_AT else "allowed"
        resets = now + BUDGET_WINDOW
    info: dict[str, Any] = {"status": status, "resetsAt": int(resets + 0.999)}
    if utilization is not None:
        info["utilization"] = round(min(1.0, max(0.0, utilization)), 4)
    info["provider"] = provider.name
    return info


#: A ``stream_event`` delta's line around its text, session id and uuid: what
#: ``json.dumps`` writes for the event (``tests/ui/test_stream_json_budget.py`` checks).
_DELTA_HEAD = (
    '{"type": "stream_event", "event": {"type": "content_block_delta", "index": 0, '
    '"delta": {"type": "text_delta", "text": '
)
_DELTA_TAIL = '}}, "parent_tool_use_id": null, "session_id": '

_random = random.Random()  # seeded from os.urandom
_VERSION_4 = (0x4000 << 64) | (0x8000 << 48)
_VERSION_MASK = ~((0xF000 << 64) | (0xC000 << 48))


def fast_uuid4() -> str:
    """A random (version 4) UUID's text, about 5x cheaper than ``str(uuid.uuid4())``
    (no system call): an event's name, not a secret."""
    bits = "%032x" % (_random.getrandbits(128) & _VERSION_MASK | _VERSION_4)
    return f"{bits[:8]}-{bits[8:12]}-{bits[12:16]}-{bits[16:20]}-{bits[20:]}"


class StreamJson:
    """One JSON event per line on ``out``, as the turn happens (module docstring).

    Args:
        out: stdout.
        partial: write ``stream_event`` text deltas (``--include-partial-messages``).
        clock: seconds, for ``duration_ms``.
    """

    def __init__(self, out: TextIO, *, partial: bool, clock: Any = time.monotonic) -> None:
        self.out = out
        self.partial = partial
        self.clock = clock
        self.began = clock()
        # Until the session exists (a run that fails before it has none of its own).
        self.session_id = str(uuid.uuid4())
        #: stdout's reader went away (EPIPE): nobody reads the rest of the turn.
        self.gone = False
        self._turn: asyncio.Task[Any] | None = None
        self.replies = 0
        self._inputs: dict[str, dict[str, Any]] = {}
        self.denials: list[dict[str, Any]] = []
        self._status: Callable[[], ClientStatus] | None = None
        self._wall: Callable[[], float] = time.time
        #: The budget status last told, per provider.
        self._budgets: dict[str, str] = {}
        #: provider -> when (``clock``) its quota's event runs out: told once until then.
        self._quotas: dict[str, float] = {}
        #: Lines not written yet (deltas, until this moment's work is done).
        self._pending: list[str] = []
        self._flush_pending = False

    def watch_budget(
        self, status: Callable[[], ClientStatus], *, wall: Callable[[], float] = time.time
    ) -> None:
        """Tell ``rate_limit_event``s from ``status`` (the client's): when a reply
        arrives and when the client waits, retries or fails over; ``wall``: Unix time."""
        self._status = status
        self._wall = wall

    # --- the run -------------------------------------------------------------------------

    def started(self, info: StartInfo) -> None:
        self.session_id = info.session_id
        self._turn = asyncio.current_task()  # what a reader gone cancels
        self._emit(
            {
                "type": "system",
                "subtype": "init",
                "cwd": info.cwd,
                "model": info.model,
                "tools": info.tools,
                "permission_mode": info.permission_mode,
                "providers": info.providers,
                "qwen_dev_version": info.version,
                "output_style": "default",
            }
        )

    def begin_turn(self) -> None:
        """A turn of a stream-json session starts (in the current task, which a reader
        gone cancels): its counts start afresh."""
        self._turn = asyncio.current_task()
        self.began = self.clock()
        self.replies = 0
        self.denials = []

    def control(self, payload: dict[str, Any]) -> None:
        """A ``control_request`` or ``control_response`` line, as it is."""
        if self.gone:
            return
        self._write(json.dumps(payload) + "\n")

    def notice(self, subtype: str, message: str) -> None:
        """A ``system`` ``error`` or ``warning`` about the input."""
        self._emit({"type": "system", "subtype": subtype, "message": message})

    def interrupted(self) -> None:
        """The caller interrupted the turn: its result."""
        self._turn = None
        self._result(
            subtype="error_during_execution",
            is_error=True,
            text="interrupted",
            turns=self.replies,
            api_ms=0.0,
            usage={"input_tokens": 0, "output_tokens": 0},
            extra={},
            errors=["interrupted by the caller"],
        )

    def __call__(self, event: AgentEvent) -> None:
        if isinstance(event, AssistantText):
            if self.partial and not self.gone:
                self._delta(event.text)
        elif isinstance(event, MessageAdded):
            if event.reply is not None and event.message.get("role") == "assistant":
                self._assistant(event.message, event.reply)
                self._budget()  # the reply's request is settled: the budget is known
        elif isinstance(event, ToolCallStarted):
            self._inputs[event.call_id] = event.arguments
        elif isinstance(event, ToolCallFinished):
            self._tool_result(event)
        elif isinstance(event, AssistantRestart):
            self._emit({"type": "system", "subtype": "restart", "reason": event.reason})
        elif isinstance(event, ContextCompacted):
            self._emit(
                {
                    "type": "system",
                    "subtype": "compaction",
                    "before": event.before,
                    "after": event.after,
                    "window": event.window,
                    "description": event.description,
                }
            )

    def client_event(self, event: ClientEvent) -> None:
        """The client's resilience as ``system`` events."""
        payload: dict[str, Any]
        if isinstance(event, RetryScheduled):
            payload = {
                "subtype": "retry",
                "attempt": event.retry,
                "max_retries": event.max_retries,
                "delay": event.delay,
                "reason": event.reason,
            }
        elif isinstance(event, Failover):
            payload = {
                "subtype": "failover",
                "provider": event.to_provider,
                "from_provider": event.from_provider,
                "reason": event.reason,
            }
        elif isinstance(event, BreakerTransition):
            payload = {
                "subtype": "circuit",
                "provider": event.provider,
                "from_state": event.old,
                "state": event.new,
            }
        elif isinstance(event, RateLimitWait):
            payload = {
                "subtype": "rate_limit_wait",
                "provider": event.provider,
                "delay": event.delay,
                "max_wait": event.max_wait,
            }
        elif isinstance(event, QuotaExhausted | Throttled | RetryBudgetSpent):
            restraint = self._restraint(event)
            if restraint is None:
                return
            payload = restraint
        else:
            return
        self._emit({"type": "system", **payload})
        if isinstance(event, RateLimitWait):
            self._budget(event.provider, event.delay)
        else:
            self._budget()

    def _restraint(
        self, event: QuotaExhausted | Throttled | RetryBudgetSpent
    ) -> dict[str, Any] | None:
        """The account-wide restraint's events; a quota once per provider until its
        reset (``None``: said already)."""
        if isinstance(event, Throttled):
            return {
                "subtype": "throttled",
                "provider": event.provider,
                "probability": round(event.probability, 4),
            }
        if isinstance(event, RetryBudgetSpent):
            return {"subtype": "retry_budget", "provider": event.provider, "spent": True}
        now = self.clock()
        if self._quotas.get(event.provider, -1.0) > now:
            return None
        self._quotas[event.provider] = now + (
            QUOTA_REPEAT if event.reset_in is None else event.reset_in
        )
        resets = None if event.reset_in is None else int(self._wall() + event.reset_in + 0.999)
        return {
            "subtype": "quota",
            "provider": event.provider,
            "resets_in": event.reset_in,
            "resetsAt": resets,
            "detail": event.detail,
        }

    def _budget(self, waiting: str | None = None, delay: float = 0.0) -> None:
        """A ``rate_limit_event`` for each provider whose budget status changed (or is
        first known); ``waiting``: the provider the client waits ``delay`` s for."""
        if self._status is None:
            return
        try:
            providers = self._status().providers
        except Exception:  # the status is for telling: it must never break the turn
            return
        now = self._wall()
        for provider in providers:
            wait = delay if provider.name == waiting else 0.0
            info = budget_info(provider, now=now, wait=wait)
            if info is None:
                if provider.name not in self._budgets:
                    continue
                info = {"status": "allowed", "resetsAt": int(now), "provider": provider.name}
            if self._budgets.get(provider.name) == info["status"]:
                continue
            self._budgets[provider.name] = info["status"]
            self._emit({"type": "rate_limit_event", "rate_limit_info": info})

    def answered(self, result: TurnResult, metrics: dict[str, Any], session_id: str) -> None:
        self.session_id = session_id
        self._turn = None  # over: nothing left to cancel
        max_turns = result.stopped == "max_steps"
        self._result(
            subtype="error_max_turns" if max_turns else "success",
            is_error=max_turns,
            text=result.text,
            turns=result.steps,
            api_ms=result.latency_ms,
            usage=usage_of(result.usage),
            extra={
                "stop_reason": stop_reason(result.finish_reason),
                "provider": result.provider,
                "model": result.model,
                "attempts": result.attempts,
                "metrics": metrics,
            },
            errors=[result.text] if max_turns else [],
        )

    def failed(
        self,
        exc: LLMError,
        metrics: dict[str, Any],
        *,
        providers: list[dict[str, str]] | None = None,
    ) -> None:
        self._turn = None
        self._result(
            subtype="error_during_execution",
            is_error=True,
            text=str(exc),
            turns=self.replies,
            api_ms=0.0,
            usage={"input_tokens": 0, "output_tokens": 0},
            extra={"error": exc.to_dict(providers), "metrics": metrics},
            errors=[str(exc)],
        )

    # --- events --------------------------------------------------------------------------

    def _assistant(self, message: dict[str, Any], reply: ChatResult) -> None:
        self.replies += 1
        content: list[dict[str, Any]] = []
        text = message.get("content")
        if isinstance(text, str) and text:
            content.append({"type": "text", "text": text})
        for call in message.get("tool_calls") or ():
            function = call.get("function", {})
            try:
                arguments = json.loads(function.get("arguments") or "{}")
            except ValueError:
                arguments = {}
            content.append(
                {
                    "type": "tool_use",
                    "id": call.get("id", ""),
                    "name": function.get("name", ""),
                    "input": arguments if isinstance(arguments, dict) else {},
                }
            )
        self._emit(
            {
                "type": "assistant",
                "message": {
                    "id": f"msg_{uuid.uuid4().hex}",
                    "type": "message",
                    "role": "assistant",
                    "model": reply.model,
                    "content": content,
                    "stop_reason": stop_reason(reply.finish_reason),
                    "usage": usage_of(reply.usage),
                },
                "parent_tool_use_id": None,
                "provider": reply.provider,
            }
        )

    def _tool_result(self, event: ToolCallFinished) -> None:
        arguments = self._inputs.pop(event.call_id, {})
        if event.status == "denied":
            self.denials.append(
                {"tool_name": event.name, "tool_use_id": event.call_id, "tool_input": arguments}
            )
        block = {
            "type": "tool_result",
            "tool_use_id": event.call_id,
            "content": event.output,
            "is_error": event.status != "ok",
        }
        self._emit(
            {
                "type": "user",
                "message": {"role": "user", "content": [block]},
                "parent_tool_use_id": None,
                "status": event.status,
            }
        )

    def _result(
        self,
        *,
        subtype: str,
        is_error: bool,
        text: str,
        turns: int,
        api_ms: float,
        usage: dict[str, int],
        extra: dict[str, Any],
        errors: list[str],
    ) -> None:
        payload = {
            "type": "result",
            "subtype": subtype,
            "is_error": is_error,
            "result": text,
            "num_turns": turns,
            "duration_ms": round((self.clock() - self.began) * 1000),
            "duration_api_ms": round(api_ms),
            "usage": usage,
            "permission_denials": self.denials,
            "errors": errors,
            **extra,
        }
        self._emit(payload)

    def _delta(self, text: str) -> None:
        """A ``stream_event`` text delta: the hot path (one per token), so its line is
        made from a template (the same JSON as :meth:`_emit` would write) and written
        with the others of this moment (:meth:`_write`)."""
        self._write(
            f"{_DELTA_HEAD}{json.dumps(text)}{_DELTA_TAIL}{json.dumps(self.session_id)}"
            f', "uuid": "{fast_uuid4()}"}}\n',
            soon=True,
        )

    def _emit(self, payload: dict[str, Any]) -> None:
        payload["session_id"] = self.session_id
        payload["uuid"] = fast_uuid4()
        # A long event (an answer of 64 MiB) leaves a piece at a time, not copied whole
        # twice; a short one is one piece, written with the deltas waiting before it.
        for piece in json_line(payload, ensure_ascii=True):
            if self.gone:  # the reader left (before, or during a long event)
                return
            self._pending.append(piece)
            self._flush()

    def _write(self, line: str, *, soon: bool = False) -> None:
        """``line`` on stdout, flushed now, or (``soon``: a delta) when this moment's
        work is done: deltas that arrived together (one network read) leave in one
        write, and none waits for a later one."""
        self._pending.append(line)
        if soon:
            if self._flush_pending:
                return
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                pass
            else:
                self._flush_pending = True
                loop.call_soon(self._flush)
                return
        self._flush()

    def _flush(self) -> None:
        self._flush_pending = False
        if self.gone or not self._pending:
            return
        text = "".join(self._pending)
        self._pending.clear()
        try:
            self.out.write(text)
            self.out.flush()
        except BrokenPipeError:
            self._lost()

    def _lost(self) -> None:
        self.gone = True
        _silence(self.out)
        if self._turn is not None:
            self._turn.cancel()


def _silence(out: TextIO) -> None:
    """``out``'s descriptor pointed at /dev/null, so that what is still buffered (and the
    interpreter's last flush) goes nowhere instead of raising again at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, out.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def config_failure_event(message: str, *, kind: str = "config_error") -> dict[str, Any]:
    """The one event of a run whose configuration is wrong (exit code 2): its result
    (``kind``: ``session_error`` for a session that cannot be opened)."""
    return {
        "type": "result",
        "subtype": "error_during_execution",
        "is_error": True,
        "result": message,
        "num_turns": 0,
        "duration_ms": 0,
        "duration_api_ms": 0,
        "usage": {"input_tokens": 0, "output_tokens": 0},
        "permission_denials": [],
        "errors": [message],
        "error": {"type": kind, "message": message, "providers": []},
        "session_id": str(uuid.uuid4()),
        "uuid": str(uuid.uuid4()),
    }
