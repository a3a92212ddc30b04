"""``--input-format stream-json``: user turns and control requests as NDJSON on stdin,
each turn of the same session, events out as ``--output-format stream-json`` writes
them (Claude Code's protocol, the one the Claude Agent SDK drives).

stdin, one object a line:

- ``{"type": "user", "message": {"role": "user", "content": "..."}}``: a turn (content a
  string or a list of ``text`` blocks); turns run one after another, in order;
- ``{"type": "control_request", "request_id", "request": {"subtype": ...}}``:
  ``initialize`` and ``interrupt`` (the running turn cancelled) are answered with
  ``{"type": "control_response", "response": {"subtype": "success", "request_id"}}``;
  other subtypes with ``"subtype": "error"``;
- ``{"type": "control_response", ...}``: the caller's answer to our ``can_use_tool``.

When the approval mode leaves a tool call to the user, the caller is asked: a
``control_request`` ``can_use_tool`` (``tool_name``, ``input``, ``tool_use_id``), and
its ``behavior`` ``allow`` or ``deny`` decides. A line that is not a JSON object is a
``system`` ``error`` event naming its line number; an unknown ``type`` a ``system``
``warning``; a line over :data:`MAX_LINE_BYTES` is refused. The session goes on after
each. At the end of stdin the turns still queued run, then the run ends.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
from typing import TYPE_CHECKING, Any, BinaryIO

from .. import exit_codes
from ..agent.turn import ApprovalDecision, ToolCallStarted
from ..core import LLMError
from .recorder import SessionRecorder
from .stream_json import StreamJson

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from ..agent import Agent
    from ..agent.turn import AgentEvent, ApprovalRequest, Approver
    from ..core import LLMClient
    from ..session.store import Session
    from .oneshot import HeadlessCheckpoints

#: A stdin line longer than this is refused (the session goes on).
MAX_LINE_BYTES = 8 * 1024 * 1024

_EOF = object()


def read_lines(stdin: BinaryIO, limit: int = MAX_LINE_BYTES) -> Iterator[tuple[int, bytes | None]]:
    """stdin's lines, numbered from 1; ``None`` for a line longer than ``limit``
    (skipped)."""
    number = 0
    while True:
        line = stdin.readline(limit + 1)
        if not line:
            return
        number += 1
        if len(line) > limit and not line.endswith(b"\n"):
            while True:  # the rest of the long line, dropped
                more = stdin.readline(limit + 1)
                if not more or more.endswith(b"\n"):
                    break
            yield number, None
            continue
        yield number, line


def feed(stdin: BinaryIO, queue: asyncio.Queue[object], loop: asyncio.AbstractEventLoop) -> None:
    """Puts stdin's lines on ``queue``, then :data:`_EOF`. Runs in a daemon thread: a
    read that never ends must not keep the process from exiting."""
    try:
        for item in read_lines(stdin):
            loop.call_soon_threadsafe(queue.put_nowait, item)
    except (OSError, ValueError):
        pass
    loop.call_soon_threadsafe(queue.put_nowait, _EOF)


def user_text(message: Any) -> str | None:
    """The text of a ``user`` line's ``message`` (a string, or ``text`` blocks)."""
    if not isinstance(message, dict):
        return None
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [
            block.get("text", "")
            for block in content
            if isinstance(block, dict) and block.get("type") == "text"
        ]
        return "\n".join(t for t in texts if isinstance(t, str)) or None
    return None


class CallerApprover:
    """Asks the caller, over stdout, about what the approval mode leaves to the user
    (``can_use_tool``), and waits for its ``control_response``."""

    def __init__(self, output: StreamJson) -> None:
        self.output = output
        self.pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.last_call: ToolCallStarted | None = None
        self.closed = False
        self._ids = itertools.count(1)

    def __call__(self, event: AgentEvent) -> None:
        if isinstance(event, ToolCallStarted):
            self.last_call = event

    async def approve(self, request: ApprovalRequest) -> ApprovalDecision:
        if self.closed:
            return ApprovalDecision(False, reason="the caller closed stdin: nobody to ask")
        call = self.last_call
        request_id = f"qd_{next(self._ids)}"
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[request_id] = future
        arguments = call.arguments if call is not None and call.name == request.tool else {}
        self.output.control(
            {
                "type": "control_request",
                "request_id": request_id,
                "request": {
                    "subtype": "can_use_tool",
                    "tool_name": request.tool,
                    "input": arguments,
                    "tool_use_id": call.call_id if call is not None else None,
                    "description": request.summary,
                    "permission_suggestions": None,
                    "blocked_path": None,
                },
            }
        )
        try:
            answer = await future
        finally:
            self.pending.pop(request_id, None)
        if answer.get("subtype") == "error":
            return ApprovalDecision(False, reason=str(answer.get("error") or "caller error"))
        decision = answer.get("response") or {}
        if decision.get("behavior") != "allow":
            return ApprovalDecision(False, reason=str(decision.get("message") or "") or None)
        return _allowed(request, arguments, decision.get("updatedInput"))

    def answered(self, response: dict[str, Any]) -> bool:
        """A ``control_response`` from the caller: ``True`` if it was ours."""
        future = self.pending.get(str(response.get("request_id")))
        if future is None or future.done():
            return False
        future.set_result(response)
        return True

    def abandon(self) -> None:
        """stdin ended: nobody will answer; whatever is waiting is denied, and so is
        whatever would be asked from now on."""
        self.closed = True
        for future in self.pending.values():
            if not future.done():
                future.set_result({"subtype": "error", "error": "stdin closed"})


async def run_stream_session(
    *,
    stdin: BinaryIO,
    output: StreamJson,
    warn: Callable[[str], None],
    client: LLMClient,
    make_agent: Callable[[Approver], Agent],
    start_info: Callable[[Agent, str], Any],
    session: Session,
    first_prompt: str | None = None,
    checkpoints: HeadlessCheckpoints | None = None,
) -> int:
    """Turns from ``stdin`` (and ``first_prompt`` first, if given) in ``session`` (new, or
    resumed: the model sees what it holds); the exit code of the last turn. The session
    is closed at the end. With ``checkpoints``, the workspace is recorded before each
    turn and at its end (an interrupted one too); the agent's ``before_command`` hook is
    the caller's to give (``make_agent``)."""
    approver = CallerApprover(output)
    agent = make_agent(approver)
    recorder = SessionRecorder(session)
    turns: asyncio.Queue[object] = asyncio.Queue()
    lines: asyncio.Queue[object] = asyncio.Queue()
    running: dict[str, asyncio.Task[int]] = {}
    code = exit_codes.OK

    def sink(event: AgentEvent) -> None:
        recorder(event)
        approver(event)
        output(event)

    async def one_turn(text: str) -> int:
        output.begin_turn()
        if checkpoints is not None:
            await checkpoints.turn_started(session, text)
        try:
            result = await agent.run(list(session.view), text, sink)
        except LLMError as exc:
            output.failed(exc, client.get_metrics())
            warn(str(exc))
            return exit_codes.for_error(exc)
        output.answered(result, client.get_metrics(), session.id)
        return exit_codes.OK

    async def worker() -> None:
        nonlocal code
        while True:
            item = await turns.get()
            if item is _EOF:
                return
            assert isinstance(item, str)
            task = asyncio.create_task(one_turn(item))
            running["turn"] = task
            try:
                code = await task
            except asyncio.CancelledError:
                recorder.interrupted()
                if output.gone:  # nobody reads: stop reading stdin too
                    code = exit_codes.INTERRUPTED
                    lines.put_nowait(_EOF)
                    return
                # interrupted by the caller: the turn ends, the session goes on
                output.interrupted()
                code = exit_codes.INTERRUPTED
            finally:
                running.pop("turn", None)
            if checkpoints is not None:
                await checkpoints.turn_ended()

    def control(message: dict[str, Any]) -> None:
        request_id = message.get("request_id")
        request = message.get("request")
        subtype = request.get("subtype") if isinstance(request, dict) else None
        response: dict[str, Any] = {"subtype": "success", "request_id": request_id}
        if subtype == "initialize":
            response["response"] = {"commands": [], "output_style": "default"}
        elif subtype == "interrupt":
            task = running.get("turn")
            if task is not None:
                task.cancel()
            response["response"] = {}
        else:
            response = {
                "subtype": "error",
                "request_id": request_id,
                "error": f"unsupported control request: {subtype}",
            }
        output.control({"type": "control_response", "response": response})

    try:
        output.started(start_info(agent, session.id))
        work = asyncio.create_task(worker())
        if first_prompt:
            turns.put_nowait(first_prompt)
        loop = asyncio.get_running_loop()
        threading.Thread(target=feed, args=(stdin, lines, loop), daemon=True).start()
        while True:
            got = await lines.get()
            if got is _EOF or output.gone:
                break
            assert isinstance(got, tuple)
            number, raw = got
            if raw is None:
                output.notice("error", f"line {number}: longer than {MAX_LINE_BYTES} bytes")
                continue
            if not raw.strip():
                continue
            try:
                message = json.loads(raw)
            except ValueError as exc:
                output.notice("error", f"line {number}: not JSON ({exc})")
                continue
            if not isinstance(message, dict):
                output.notice("error", f"line {number}: not a JSON object")
                continue
            kind = message.get("type")
            if kind == "user":
                text = user_text(message.get("message"))
                if text is None or not text.strip():
                    output.notice("error", f"line {number}: a user message without text")
                else:
                    turns.put_nowait(text)
            elif kind == "control_request":
                control(message)
            elif kind == "control_response":
                response = message.get("response")
                if isinstance(response, dict):
                    approver.answered(response)
            else:
                output.notice("warning", f"line {number}: unknown type {kind!r}, ignored")
        approver.abandon()
        turns.put_nowait(_EOF)
        await work
        # A reader gone between turns ends the session as one gone mid-turn does.
        return exit_codes.INTERRUPTED if output.gone else code
    finally:
        if checkpoints is not None:
            checkpoints.close()
        session.close()


def _allowed(request: ApprovalRequest, asked: dict[str, Any], updated: object) -> ApprovalDecision:
    """An ``allow``, with the caller's ``updatedInput`` honoured or refused: a command
    it rewrote runs as rewritten (as one the user edits in the REPL's dialog); any other
    change is refused rather than ignored (the caller approved what it sent back, not
    what was asked)."""
    if updated is None or updated == asked:
        return ApprovalDecision(True)
    if (
        request.kind == "command"
        and isinstance(updated, dict)
        and set(updated) <= set(asked) | {"command"}
        and {k: v for k, v in updated.items() if k != "command"}
        == {k: v for k, v in asked.items() if k != "command" and k in updated}
        and isinstance(updated.get("command"), str)
        and updated["command"].strip()
    ):
        return ApprovalDecision(True, edited_command=updated["command"])
    return ApprovalDecision(
        False,
        reason="the caller allowed it with a changed input; qwen-dev runs only what it "
        "asked about (a run_command's command may be changed, nothing else)",
    )
