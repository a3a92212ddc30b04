"""The text formats a model may write its tool calls in, when it gets no OpenAI ``tools``.

- ``hermes``: ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``, the format of
  Qwen2.5 (and Hermes) chat templates;
- ``qwen3_coder``: Qwen3-Coder's XML, one ``<function=NAME>`` holding a
  ``<parameter=NAME>`` per argument, inside ``<tool_call>``; values are plain text,
  typed by the tool's schema when read back (:mod:`.xml_calls`).

Both take results the same way: the results of one reply, in order, each in a
``<tool_response>`` block, in one user message. The parser reads every format whatever
the provider (:mod:`.parser`); a provider's format decides how the prompt describes the
tools (:mod:`.prompt`) and how earlier calls are written back into the conversation
(:mod:`.protocol`). ``auto`` picks the format by the model's name. (The values a
provider's ``tool_format`` may take are declared with the setting, in
:mod:`qwen_dev_cli.core.settings`.)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final, Literal

ToolFormat = Literal["hermes", "qwen3_coder"]
HERMES: Final = "hermes"
QWEN3_CODER: Final = "qwen3_coder"
#: Where a call came from, for the hint that asks the model to write it again:
#: a text format, ``json`` (a fenced or bare JSON object), ``qwen_agent``
#: (``✿FUNCTION✿``) or ``native`` (OpenAI ``tool_calls``).
CallForm = Literal["hermes", "qwen3_coder", "json", "qwen_agent", "native"]

# Qwen3-Coder models (Qwen3-Coder-30B-A3B-Instruct, qwen3-coder:30b, Qwen/Qwen3-Coder-480B...)
_XML_MODELS: Final = ("qwen3-coder", "qwen3_coder", "qwen3coder")


def resolve_format(setting: str, model: str) -> ToolFormat:
    """The format a provider's model writes: its ``tool_format`` setting, or for
    ``auto`` (and anything unknown) the one its model family was trained on."""
    if setting == HERMES:
        return HERMES
    if setting == QWEN3_CODER:
        return QWEN3_CODER
    squashed = model.lower().replace(" ", "")
    return QWEN3_CODER if any(family in squashed for family in _XML_MODELS) else HERMES


def write_call(fmt: ToolFormat, name: str, arguments: Mapping[str, Any]) -> str:
    """One call as a model writing ``fmt`` would have written it."""
    if fmt == QWEN3_CODER:
        parameters = "".join(
            f"<parameter={key}>\n{_plain(value)}\n</parameter>\n"
            for key, value in arguments.items()
        )
        return f"<tool_call>\n<function={name}>\n{parameters}</function>\n</tool_call>"
    payload = {"name": name, "arguments": dict(arguments)}
    return f"<tool_call>\n{json.dumps(payload, ensure_ascii=False)}\n</tool_call>"


def tool_responses(results: list[str]) -> str:
    """The results of one reply's calls, in order, as the model is trained to read them."""
    return "\n".join(f"<tool_response>\n{result}\n</tool_response>" for result in results)


def retry_hint(form: CallForm) -> str:
    """What a model whose call in ``form`` could not be used should do."""
    if form == QWEN3_CODER:
        return (
            "Write the call again as <tool_call><function=NAME><parameter=NAME>value"
            "</parameter></function></tool_call>, each value of the type its schema gives."
        )
    if form == "native":
        return "Call the tool again with valid JSON arguments."
    if form == "qwen_agent":
        return "Write the call again as ✿FUNCTION✿: NAME then ✿ARGS✿: {...} with valid JSON."
    return (
        'Write the call again as <tool_call>{"name": ..., "arguments": {...}}</tool_call> '
        "with valid JSON."
    )


def _plain(value: Any) -> str:
    """A parameter value as Qwen3-Coder's chat template writes it: strings as they are,
    anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
