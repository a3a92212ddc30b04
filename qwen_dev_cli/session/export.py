"""Sessions as documents: Markdown for people, JSON for tools."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from ..core.types import tool_calls_of

if TYPE_CHECKING:
    from .store import LoadedSession


def to_json(session: LoadedSession) -> str:
    return json.dumps(
        {"session": session.info.to_dict(), "messages": session.messages},
        indent=2,
        ensure_ascii=False,
    )


def to_markdown(session: LoadedSession) -> str:
    info = session.info
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(info.created))
    parts = [f"# {info.title}", "", f"Session `{info.id}`, {when}, in `{info.cwd}`", ""]
    for event in session.events:
        message = event.get("message")
        if event.get("type") == "message" and isinstance(message, dict):
            parts.extend(_message(message, interrupted=bool(event.get("interrupted"))))
    return "\n".join(parts).rstrip() + "\n"


def _message(message: dict[str, Any], *, interrupted: bool) -> list[str]:
    role = str(message.get("role", "?"))
    content = message.get("content")
    text = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
    lines = [f"## {role}{' (interrupted)' if interrupted else ''}", ""]
    if role == "tool":
        lines += ["```", text or "", "```", ""]
        return lines
    if text:
        lines += [text, ""]
    for function in tool_calls_of(message):
        lines += [f"Tool call `{function.get('name')}`: `{function.get('arguments')}`", ""]
    return lines
