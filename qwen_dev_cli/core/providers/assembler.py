"""Assembling OpenAI ``chat.completion.chunk`` events into one answer.

Text deltas are handed on as they come; tool-call deltas are merged by ``index``
(id and name arrive once, arguments in pieces); the usage chunk of
``stream_options.include_usage`` and the finish reason are kept for the reply."""

from __future__ import annotations

import json
import re
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

from ...json_strings import map_strings
from ...safe_text import printable
from ..errors import MalformedResponse, ResponseTooLarge
from ..types import ProviderReply, RateLimitHeaders, ToolCall, Usage
from .http_errors import error_from_event


@dataclass
class _PartialCall:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)
    size: int = 0


class TextAccumulator:
    """Text that arrives in pieces, kept as one string that grows where it lies.

    A list of pieces joined at the end holds the answer twice at that moment (a 64 MiB
    answer: 128 MB); here the pieces are joined a mebibyte at a time onto one string
    that a generator alone refers to, which CPython then extends in place (its
    ``+=`` on a string nothing else holds: ``realloc``, which moves a large block by
    remapping it, not by copying it). Wherever the in-place step is not taken, this
    costs one copy of the text so far per mebibyte, never a copy per piece.
    """

    FOLD = 1 << 20

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._size = 0
        self._text = _grown()
        next(self._text)

    def append(self, piece: str) -> None:
        self._parts.append(piece)
        self._size += len(piece)
        if self._size >= self.FOLD:
            self._fold()

    def text(self) -> str:
        """All the text so far."""
        self._fold()
        return self._text.send(None)

    def take(self) -> str:
        """All the text so far, which this then forgets (it starts again empty)."""
        text = self.text()
        self._text.close()  # its frame's reference goes
        self._text = _grown()
        next(self._text)
        return text

    def _fold(self) -> None:
        if self._parts:
            self._text.send("".join(self._parts))
            self._parts.clear()
            self._size = 0


#: What may make a call, or a part to take out, in an answer to the agent's parser
#: (``agent/parser.py``), where blanks at its ends may matter: a tag (``<tool_call>``,
#: ``<function=``, ``<tool_response>``, in the cases the parser reads them), Qwen-Agent's
#: ``✿FUNCTION✿``; and a fence with a JSON object or list in it (``_FENCE`` and one of
#: ``_JSON``, anywhere). Without them the parser finds no call and only trims the text
#: (code only hides calls; an answer that is one JSON object is read trimmed; special
#: tokens go wherever they are), so it may as well be given it trimmed: blanks at the
#: start that would make its first line code change nothing.
_CALL_MARK = re.compile(r"(?i:<tool_call|</?tool_response)|<function=|\u273f")
_FENCE = re.compile(r"```|~~~")
_JSON = re.compile(r"[{\[]")
#: The longest mark, less one: what a delta may end with of a mark the next completes.
_CARRY = len("</tool_response") - 1


class AnswerText:
    """An answer's text as it streams. With ``ends_apart``, while it is plain prose (no
    ``_CALL_MARK``, nor both ``_FENCE`` and ``_JSON``: it may hold code), the blanks at
    its ends (``str.isspace``) are held apart: :meth:`parts` is then ``(lead, text,
    trail)`` with ``text`` already what ``str.strip()`` would make of the whole, so the
    whole and its trimmed copy never exist at once (64 MiB of prose ending in a line
    break: 63 MB less at the peak). Once it is not plain, it is put together again (a
    copy of what came so far, if there was a blank before it) and grows whole, as
    without ``ends_apart``."""

    def __init__(self, *, ends_apart: bool = False) -> None:
        self._text = TextAccumulator()
        self._plain = ends_apart
        self._begun = False  # a character that is not blank has come
        self._lead = TextAccumulator()
        self._trail = TextAccumulator()
        self._trailing = False  # blanks are held in _trail
        self._carry = ""  # the end of the text so far, for a mark cut in two
        self._fenced = self._json = False  # whether _FENCE, _JSON came

    def append(self, piece: str) -> None:
        if self._plain and not self._stays_plain(piece):
            self._whole_again()
        if not self._plain:
            self._text.append(piece)
            return
        if not self._begun:
            rest = piece.lstrip()
            if not rest:
                self._lead.append(piece)
                return
            self._begun = True
            self._lead.append(piece[: len(piece) - len(rest)])
            piece = rest
        core = piece.rstrip()
        if core:
            if self._trailing:
                self._text.append(self._trail.take())
                self._trailing = False
            self._text.append(core)
            piece = piece[len(core) :]
        if piece:
            self._trail.append(piece)
            self._trailing = True

    def _stays_plain(self, piece: str) -> bool:
        """Whether the text with ``piece`` is still plain prose (marks looked for across
        the delta's start, where a mark may have been cut in two)."""
        across = self._carry + piece[:_CARRY]
        if _CALL_MARK.search(across) is not None or _CALL_MARK.search(piece) is not None:
            return False
        self._fenced = self._fenced or any(_FENCE.search(t) for t in (across, piece))
        self._json = self._json or _JSON.search(piece) is not None
        self._carry = (self._carry + piece[-_CARRY:])[-_CARRY:]
        return not (self._fenced and self._json)

    def parts(self) -> tuple[str, str, str]:
        """``(lead, text, trail)``: the text, and the blanks at its ends held apart
        (both empty once it is not plain prose, or without ``ends_apart``)."""
        return self._lead.text(), self._text.text(), self._trail.text()

    def _whole_again(self) -> None:
        self._plain = False
        lead, text = self._lead.take(), self._text.take()
        if lead:
            self._text.append(lead)
        if text:
            self._text.append(text)
        del text
        if self._trailing:
            self._text.append(self._trail.take())
            self._trailing = False


def _grown() -> Generator[str, str | None, None]:
    """Appends each string sent; sent ``None``, yields the whole. ``text`` must stay
    this frame's only reference while it grows: that is what lets ``+=`` extend it."""
    text = ""
    piece = yield ""
    while True:
        if piece is None:
            piece = yield text
        else:
            text += piece
            piece = yield ""


class StreamAssembler:
    """Feed it each SSE ``data`` payload; it returns the text to show and keeps the rest."""

    def __init__(
        self,
        provider: str,
        model: str,
        *,
        max_tool_arguments: int = 4 * 1024 * 1024,
        ends_apart: bool = False,
    ) -> None:
        self.provider = provider
        self.model = model
        self.max_tool_arguments = max_tool_arguments
        self.done = False
        self.started = False
        self.finish_reason: str | None = None
        self.usage: Usage | None = None
        self._text = AnswerText(ends_apart=ends_apart)
        self._calls: dict[int, _PartialCall] = {}

    def feed(self, data: str) -> str | None:
        """Handle one event's data; return new answer text, if the event carried any.

        Raises the provider error an ``{"error": ...}`` event reports, or
        :class:`MalformedResponse` for data that is not a chunk."""
        if data == "[DONE]":
            self.done = True
            return None
        try:
            chunk = loads_reply(data)
        except ValueError as exc:
            raise MalformedResponse(
                f"stream sent data that is not JSON: {data[:80]!r}", provider=self.provider
            ) from exc
        except RecursionError as exc:
            raise MalformedResponse(
                "stream sent JSON nested too deeply", provider=self.provider
            ) from exc
        if not isinstance(chunk, dict):
            raise MalformedResponse("stream sent a non-object chunk", provider=self.provider)
        if "error" in chunk:
            raise error_from_event(chunk, provider=self.provider)
        if isinstance(chunk.get("model"), str) and chunk["model"]:
            self.model = printable(chunk["model"][:200])  # shown in the status bar
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.usage = usage_from(usage)
        choices = chunk.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            return None
        choice = choices[0]
        if choice.get("finish_reason"):
            self.finish_reason = str(choice["finish_reason"])
        delta = choice.get("delta")
        if not isinstance(delta, dict):
            return None
        tool_deltas = delta.get("tool_calls")
        if isinstance(tool_deltas, list):
            self._merge_tool_deltas(tool_deltas)
        content = delta.get("content")
        if isinstance(content, str) and content:
            self.started = True
            self._text.append(content)
            return content
        return None

    def reply(self, rate_limit: RateLimitHeaders | None) -> ProviderReply:
        lead, text, trail = self._text.parts()
        return ProviderReply(
            text=text,
            tool_calls=[
                ToolCall(call.id or f"call_{index}", call.name, _joined(call.arguments))
                for index, call in sorted(self._calls.items())
                if call.name
            ],
            usage=self.usage,
            model=self.model,
            finish_reason=self.finish_reason,
            rate_limit=rate_limit,
            lead=lead,
            trail=trail,
        )

    @property
    def complete(self) -> bool:
        """Whether the stream said it was finished ([DONE] or a finish reason)."""
        return self.done or self.finish_reason is not None

    def _merge_tool_deltas(self, deltas: list[Any]) -> None:
        for position, delta in enumerate(deltas):
            if not isinstance(delta, dict):
                continue
            index = delta.get("index", position)
            if not isinstance(index, int):
                index = position
            call = self._calls.setdefault(index, _PartialCall())
            self.started = True
            if isinstance(delta.get("id"), str) and delta["id"]:
                call.id = delta["id"]
            function = delta.get("function")
            if not isinstance(function, dict):
                continue
            if isinstance(function.get("name"), str) and function["name"]:
                call.name = function["name"]
            arguments = function.get("arguments")
            if isinstance(arguments, dict):
                arguments = json.dumps(arguments)
            if isinstance(arguments, str):
                call.arguments.append(arguments)
                call.size += len(arguments)
                if call.size > self.max_tool_arguments:
                    raise ResponseTooLarge(
                        f"tool call arguments longer than {self.max_tool_arguments} "
                        "characters: cut off",
                        provider=self.provider,
                    )


#: A JSON escape of a UTF-16 surrogate: only where one is may a decoded string hold a
#: lone surrogate (JSON decodes a pair whole).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE_ESCAPE_BYTES = re.compile(rb"\\u[dD][89a-fA-F]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def loads_reply(data: str | bytes) -> Any:
    """``json.loads(data)``, a server's, with every lone surrogate in it (an escape such
    as ``"\\ud800"`` is valid JSON, but no UTF-8 carries what it decodes to) made
    U+FFFD: in an answer's text it raised UnicodeEncodeError where the session file or
    the terminal wrote it, a traceback and the answer lost."""
    value = json.loads(data)
    if isinstance(data, str):
        escaped = _SURROGATE_ESCAPE.search(data) is not None
    else:
        escaped = _SURROGATE_ESCAPE_BYTES.search(data) is not None
    if not escaped:
        return value
    return _without_lone_surrogates(value)


def _without_lone_surrogates(value: Any) -> Any:
    """``value`` (decoded JSON) with U+FFFD for each lone surrogate in its strings and
    keys."""
    return map_strings(value, lambda text: _LONE_SURROGATE.sub("\ufffd", text))


#: The largest token count a server's usage is believed for: past it (JSON allows 4,300
#: digits) a count is no count, and read as missing. A float holds it exactly; one of 400
#: digits raised OverflowError where the context's scale and a batch's pace divide by
#: it, a traceback and the answer lost.
MAX_USAGE_COUNT = 1 << 53


def usage_from(raw: dict[str, Any]) -> Usage:
    def count(key: str) -> int:
        value = raw.get(key)
        return value if isinstance(value, int) and 0 <= value <= MAX_USAGE_COUNT else 0

    prompt, completion = count("prompt_tokens"), count("completion_tokens")
    return Usage(prompt, completion, count("total_tokens") or prompt + completion)


def reply_from_body(
    body: Any, *, provider: str, model: str, rate_limit: RateLimitHeaders | None
) -> ProviderReply:
    """A non-streaming ``chat.completion`` body as a reply, or :class:`MalformedResponse`."""
    if isinstance(body, dict) and "error" in body:
        raise error_from_event(body, provider=provider)
    try:
        choice = body["choices"][0]
        message = choice["message"]
        content = message.get("content") or ""
        raw_calls = message.get("tool_calls") or []
        calls = [_tool_call(raw, i) for i, raw in enumerate(raw_calls)]
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        raise MalformedResponse(
            "response is not an OpenAI chat completion", provider=provider
        ) from exc
    if not isinstance(content, str):
        raise MalformedResponse("response content is not text", provider=provider)
    usage = body.get("usage")
    return ProviderReply(
        text=content,
        tool_calls=calls,
        usage=usage_from(usage) if isinstance(usage, dict) else None,
        model=printable(str(body.get("model") or model)[:200]),
        finish_reason=choice.get("finish_reason"),
        rate_limit=rate_limit,
    )


def _tool_call(raw: dict[str, Any], index: int) -> ToolCall:
    function = raw["function"]
    arguments = function.get("arguments", "")
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments)
    return ToolCall(str(raw.get("id") or f"call_{index}"), str(function["name"]), arguments)


def _joined(parts: list[str]) -> str:
    """``parts`` as one string, which replaces them in the list: the pieces are let go
    as the call is made, not held beside it (fifteen calls of 4 MiB are 63 MB once)."""
    joined = "".join(parts)
    parts[:] = [joined]
    return joined
