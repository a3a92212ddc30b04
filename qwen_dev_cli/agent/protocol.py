"""The conversation as each kind of provider must receive it.

The conversation is kept in one form, OpenAI's: an assistant message carries its
``tool_calls``, and each result is a ``tool`` message answering a call id (plus the
tool's ``name``, for people reading the session). A provider with native tools gets it
nearly as is. A provider on the text protocol gets what a Qwen chat template would
make of it: calls written back into the assistant's text as ``<tool_call>`` blocks, and
consecutive results merged into one user message of ``<tool_response>`` blocks.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..core import Message
    from .parser import CallProblem, ToolCall


def assistant_message(text: str, calls: list[dict[str, Any]]) -> Message:
    """The canonical assistant message: its prose, and its calls if it made any."""
    message: Message = {"role": "assistant", "content": text}
    if calls:
        message["tool_calls"] = calls
    return message


def call_entry(call: ToolCall) -> dict[str, Any]:
    return call.to_message()


def problem_entry(call_id: str, problem: CallProblem) -> dict[str, Any]:
    # Arguments that did not parse are not echoed: a server that decodes them to
    # render its chat template would reject the whole next request.
    name = problem.name or "unparsed_call"
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": "{}"}}


def tool_message(call_id: str, name: str, content: str) -> Message:
    return {"role": "tool", "tool_call_id": call_id, "name": name, "content": content}


def render(messages: list[Message], *, native: bool) -> list[Message]:
    """``messages`` as the provider should receive them."""
    return _render_native(messages) if native else _render_text(messages)


def _render_native(messages: list[Message]) -> list[Message]:
    out: list[Message] = []
    for message in messages:
        if message.get("role") == "tool":
            out.append(
                {
                    "role": "tool",
                    "tool_call_id": message.get("tool_call_id", ""),
                    "content": message.get("content") or "",
                }
            )
        else:
            out.append(message)
    return out


def _render_text(messages: list[Message]) -> list[Message]:
    out: list[Message] = []
    responses: list[str] = []

    def flush() -> None:
        if responses:
            out.append({"role": "user", "content": "\n".join(responses)})
            responses.clear()

    for message in messages:
        role = message.get("role")
        if role == "tool":
            responses.append(f"<tool_response>\n{message.get('content') or ''}\n</tool_response>")
            continue
        flush()
        if role == "assistant" and message.get("tool_calls"):
            out.append({"role": "assistant", "content": _with_calls(message)})
        else:
            out.append({k: v for k, v in message.items() if k != "tool_calls"})
    flush()
    return out


def _with_calls(message: Message) -> str:
    blocks = []
    for call in message.get("tool_calls") or ():
        function = call.get("function", {}) if isinstance(call, dict) else {}
        try:
            arguments = json.loads(function.get("arguments") or "{}")
        except ValueError:
            arguments = {}
        payload = {"name": function.get("name", ""), "arguments": arguments}
        blocks.append(f"<tool_call>\n{json.dumps(payload, ensure_ascii=False)}\n</tool_call>")
    text = (message.get("content") or "").strip()
    return "\n".join([text, *blocks] if text else blocks)
