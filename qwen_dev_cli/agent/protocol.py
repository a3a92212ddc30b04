"""The conversation as each kind of provider must receive it.

The conversation is kept in one form, OpenAI's: an assistant message carries its
``tool_calls``, and each result is a ``tool`` message answering a call id (plus the
tool's ``name``, for people reading the session), made by
:func:`~qwen_dev_cli.session.repair.tool_result`. That is what the session stores and
what each request carries. A provider with native tools gets it nearly as is. A
provider on the text protocol gets, for each attempt, what its model's chat template
would make of it (:class:`TextProtocol`, applied by the client once it knows which
provider it is calling): calls written back into the assistant's text in the
provider's format (:mod:`.formats`), consecutive results merged into one user message
of ``<tool_response>`` blocks, and the system prompt that describes the tools in text.
So a turn may fail over between native and text providers, and an old session resumes
on either.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..core import tool_format_of, uses_native_tools
from ..core.types import tool_calls_of
from .formats import HERMES, ToolFormat, resolve_format, tool_responses, write_call

if TYPE_CHECKING:
    from ..core import ChatRequest, Message
    from .parser import CallProblem, DecodedCall


def assistant_message(text: str, calls: list[dict[str, Any]]) -> Message:
    """The canonical assistant message: its prose, and its calls if it made any."""
    message: Message = {"role": "assistant", "content": text}
    if calls:
        message["tool_calls"] = calls
    return message


def call_entry(call: DecodedCall) -> dict[str, Any]:
    return call.to_message()


def problem_entry(call_id: str, problem: CallProblem) -> dict[str, Any]:
    # Arguments that did not parse are not echoed: a server that decodes them to
    # render its chat template would reject the whole next request.
    name = problem.name or "unparsed_call"
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": "{}"}}


def format_for(provider: object) -> ToolFormat | None:
    """The text format ``provider`` is given its tools in (``None``: native tools)."""
    if uses_native_tools(provider):
        return None
    return resolve_format(tool_format_of(provider), str(getattr(provider, "model", "")))


@dataclass(frozen=True)
class TextProtocol:
    """The request of one model call as a provider without native tools takes it
    (:class:`qwen_dev_cli.core.TextTools`): its system prompt swapped for the one that
    describes the tools in the provider's format, the conversation rendered for it.

    Args:
        system_prompt: the turn's system prompt for a text format.
    """

    system_prompt: Callable[[ToolFormat], str]

    def render(self, request: ChatRequest, *, model: str, tool_format: str) -> ChatRequest:
        fmt = resolve_format(tool_format, model)
        messages = render_text(request.messages, fmt)
        if messages and messages[0].get("role") == "system":
            messages[0] = {**messages[0], "content": self.system_prompt(fmt)}
        return dataclasses.replace(request, messages=messages, tools=None, text_tools=None)


def render(
    messages: list[Message], *, native: bool, tool_format: ToolFormat = HERMES
) -> list[Message]:
    """``messages`` as the provider should receive them."""
    return render_native(messages) if native else render_text(messages, tool_format)


def render_native(messages: list[Message]) -> list[Message]:
    """For a provider with native tools (also what a request carries)."""
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


def render_text(messages: list[Message], fmt: ToolFormat) -> list[Message]:
    """For a provider on the text protocol in ``fmt``."""
    out: list[Message] = []
    responses: list[str] = []

    def flush() -> None:
        if responses:
            out.append({"role": "user", "content": tool_responses(responses)})
            responses.clear()

    for message in messages:
        role = message.get("role")
        if role == "tool":
            responses.append(message.get("content") or "")
            continue
        flush()
        if role == "assistant" and message.get("tool_calls"):
            out.append({"role": "assistant", "content": _with_calls(message, fmt)})
        else:
            out.append({k: v for k, v in message.items() if k != "tool_calls"})
    flush()
    return out


def _with_calls(message: Message, fmt: ToolFormat) -> str:
    blocks = []
    for function in tool_calls_of(message):
        try:
            arguments = json.loads(function.get("arguments") or "{}")
        except ValueError:
            arguments = {}
        if not isinstance(arguments, dict):
            arguments = {}
        blocks.append(write_call(fmt, str(function.get("name", "")), arguments))
    text = (message.get("content") or "").strip()
    return "\n".join([text, *blocks] if text else blocks)
