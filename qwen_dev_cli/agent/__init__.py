"""One user turn: model <-> tool calls until a final answer. Knows no terminal: it talks
to an :class:`~qwen_dev_cli.agent.turn.Approver` and an event sink, so the REPL and
``ask`` share the same loop.

- :mod:`.turn`: the turn interface (events, approval requests, ``Turn``).
- :mod:`.agent`: :class:`Agent`, the turn with tools.
- :mod:`.approval`: what runs unasked in each approval mode.
- :mod:`.executor`: one call planned, approved and carried out.
- :mod:`.parser` (with :mod:`.json_repair`, :mod:`.xml_calls`, :mod:`.qwen_agent_calls`
  and :mod:`.code_spans`): tool calls out of an answer, in every format models write.
- :mod:`.formats`, :mod:`.prompt`, :mod:`.protocol`, :mod:`.stream_filter`: what each
  provider's model is sent, and what the user sees stream by.

The names below are imported on first use, so that importing :mod:`.turn` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_getattr

if TYPE_CHECKING:
    from .agent import Agent
    from .approval import APPROVAL_MODES, ApprovalMode, ApprovalPolicy
    from .parser import DecodedCall, ParsedReply, parse_reply, parse_text

_WHERE = {
    "APPROVAL_MODES": ".approval",
    "Agent": ".agent",
    "ApprovalMode": ".approval",
    "ApprovalPolicy": ".approval",
    "DecodedCall": ".parser",
    "ParsedReply": ".parser",
    "parse_reply": ".parser",
    "parse_text": ".parser",
}

__all__ = [
    "APPROVAL_MODES",
    "Agent",
    "ApprovalMode",
    "ApprovalPolicy",
    "DecodedCall",
    "ParsedReply",
    "parse_reply",
    "parse_text",
]


__getattr__ = lazy_getattr(__name__, _WHERE, globals())
