"""Sessions at a glance: ``sessions show``, and the recap of the last turns on resuming.

``export`` is the whole transcript; this is what a person reads to recognise a session:
what it is, when, which models answered, and each turn in a few lines (what was asked,
the tools it used, the start of the answer). Plain text: the caller makes it safe for
the terminal.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..core.types import tool_calls_of
from ..plurals import plural

if TYPE_CHECKING:
    from ..core import Message
    from .store import LoadedSession

#: Widest a line of a turn gets (the question, a line of the answer).
LINE_CHARS = 100
#: Lines of an answer shown.
ANSWER_LINES = 2
#: Tool calls named for one turn; more are counted.
TOOLS_SHOWN = 4

#: The argument that says what a tool call is about, in order of preference.
_TARGET_KEYS = ("path", "command", "pattern", "query", "url")


@dataclass(frozen=True)
class Exchange:
    """One turn, abbreviated.

    Args:
        asked: the user's message (all of it; :func:`clip` shortens it for display).
        answer: the last thing the assistant said in the turn.
        tools: each tool call, as :func:`tool_call_line` describes it.
        when: when the user sent it (``None``: not known).
        interrupted: the answer was cut short (Ctrl-C, a killed process).
    """

    asked: str
    answer: str = ""
    tools: tuple[str, ...] = ()
    when: float | None = None
    interrupted: bool = False


def clip(text: str, limit: int = LINE_CHARS) -> str:
    """``text`` on one line, cut with an ellipsis at ``limit`` characters."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def tool_call_line(name: str, arguments: Mapping[str, Any] | str | None) -> str:
    """A tool call in a few words: ``edit_file app.py``, ``run_command pytest -q``."""
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except ValueError:
            return clip(f"{name} {arguments}", 60)
    if not isinstance(arguments, Mapping):
        return name
    target = next((arguments[k] for k in _TARGET_KEYS if isinstance(arguments.get(k), str)), None)
    if target is None:
        return name
    return f"{name} {clip(target, 60)}"


def exchanges(entries: Iterable[tuple[Message, Mapping[str, Any]]]) -> list[Exchange]:
    """The turns of a conversation: ``entries`` are its messages, each with its event's
    fields (``ts``, ``interrupted``; empty when not known). Messages before the first
    user message are left out."""
    found: list[Exchange] = []
    asked: str | None = None
    answer = ""
    tools: list[str] = []
    when: float | None = None
    interrupted = False
    for message, meta in entries:
        role = message.get("role")
        if role == "user":
            if asked is not None:
                found.append(Exchange(asked, answer, tuple(tools), when, interrupted))
            asked, answer, tools, interrupted = _text(message), "", [], False
            stamp = meta.get("ts")
            when = float(stamp) if isinstance(stamp, int | float) else None
        elif role == "assistant" and asked is not None:
            text = _text(message)
            if text.strip():
                answer = text
            interrupted = bool(meta.get("interrupted"))
            for function in tool_calls_of(message):
                tools.append(tool_call_line(str(function.get("name")), function.get("arguments")))
    if asked is not None:
        found.append(Exchange(asked, answer, tuple(tools), when, interrupted))
    return found


def recent(messages: Iterable[Message], count: int = 3) -> list[Exchange]:
    """The last ``count`` turns of ``messages`` (the recap when a session is resumed)."""
    return exchanges((m, {}) for m in messages)[-count:]


def exchange_lines(exchange: Exchange) -> list[str]:
    """A turn in a few lines: ``› question``, its tools, the start of the answer."""
    asked = [line for line in exchange.asked.splitlines() if line.strip()]
    # The first line says what was asked; attached files and piped input follow it.
    first = clip(asked[0], 80) if asked else ""
    lines = [f"› {first}" + (" …" if len(asked) > 1 and not first.endswith("…") else "")]
    if exchange.tools:
        named = " · ".join(exchange.tools[:TOOLS_SHOWN])
        more = len(exchange.tools) - TOOLS_SHOWN
        lines.append(f"  tools: {named}" + (f" (+{more} more)" if more > 0 else ""))
    answer = [line for line in exchange.answer.splitlines() if line.strip()]
    for line in answer[:ANSWER_LINES]:
        lines.append(f"  {clip(line)}")
    if len(answer) > ANSWER_LINES:
        more = len(answer) - ANSWER_LINES
        lines.append(f"  … ({more} more line{'' if more == 1 else 's'})")
    if exchange.interrupted:
        lines.append("  (interrupted)")
    elif not answer and not exchange.tools:
        lines.append("  (no answer)")
    return lines


def to_summary(session: LoadedSession) -> str:
    """``sessions show``: the header, then every turn abbreviated."""
    info = session.info
    turns = exchanges(
        (event["message"], event)
        for event in session.events
        if event.get("type") == "message" and isinstance(event.get("message"), dict)
    )
    lines = [
        f"Session {info.id} ({info.kind})",
        f"  folder    {info.cwd}",
        f"  started   {_when(info.created)}, last active {_when(info.updated)}",
        f"  turns     {len(turns)} ({plural(info.message_count, 'message')})"
        + (f", compacted {session.compactions}×" if session.compactions else ""),
    ]
    models = _models(session.events)
    if models:
        lines.append(f"  model     {models}")
    lines.append("")
    day = time.strftime("%Y-%m-%d", time.localtime(info.created))
    for number, turn in enumerate(turns, 1):
        body = exchange_lines(turn)
        stamp = _stamp(turn.when, day)
        lines.append(f"{number:>3}  {stamp}  {body[0]}".rstrip())
        lines.extend(f"{'':>5}{line}" for line in body[1:])
    if not turns:
        lines.append("  (no messages)")
    lines += ["", f"The whole conversation: qwen-dev sessions export {info.id} [--format json]"]
    return "\n".join(lines) + "\n"


def _models(events: Iterable[Mapping[str, Any]]) -> str:
    """Which provider and model answered, how many turns each, and the tokens used."""
    counts: dict[str, int] = {}
    tokens = 0
    for event in events:
        if event.get("type") != "turn":
            continue
        name = f"{event.get('provider')} · {event.get('model')}"
        counts[name] = counts.get(name, 0) + 1
        usage = event.get("usage")
        if isinstance(usage, Mapping) and isinstance(usage.get("total_tokens"), int):
            tokens += usage["total_tokens"]
    if not counts:
        return ""
    if len(counts) == 1:
        named = next(iter(counts))
    else:
        named = ", ".join(f"{name} ({plural(n, 'turn')})" for name, n in counts.items())
    return named + (f"; {tokens:,} tokens" if tokens else "")


def _text(message: Message) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI content parts
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def _when(stamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(stamp))


def _stamp(when: float | None, day: str) -> str:
    """A turn's time: the hour on the session's first day, the date too after it."""
    if when is None:
        return ""
    local = time.localtime(when)
    same_day = time.strftime("%Y-%m-%d", local) == day
    return time.strftime("%H:%M" if same_day else "%Y-%m-%d %H:%M", local)


def describe(session: LoadedSession) -> str:
    """A session in one line, to confirm deleting it: ``ID (3 turns, 2026-01-02 10:00)``."""
    turns = sum(1 for m in session.messages if m.get("role") == "user")
    plural = "" if turns == 1 else "s"
    return f"{session.info.id} ({turns} turn{plural}, {_when(session.info.updated)})"
