"""Tool calls out of a model's answer, native or written as text.

Native calls (OpenAI ``tool_calls``, already assembled by the client) only need their
``arguments`` decoded. Text calls are found in three forms, as models write them:

- ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` (Qwen/Hermes), anywhere
  outside code and inline code; a missing closing tag at the end is tolerated;
- a fenced block (```` ```json ````, ```` ```tool_call ```` or bare) holding only such
  an object (or a list of them) whose ``name`` is one of our tools;
- the whole answer being such an object.

Everything else is prose, kept as the assistant's text: a code example that shows JSON
is not a call. Damaged JSON is repaired (:mod:`.json_repair`); what cannot be is
returned as a :class:`CallProblem` whose reason goes back to the model. Parsing never
raises.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .json_repair import RepairError, json_extent, loads_lenient, loads_values

if TYPE_CHECKING:
    from ..core import ToolCall as NativeCall

_OPEN_TAG = re.compile(r"<tool_call\s*>", re.IGNORECASE)
_CLOSE_TAG = re.compile(r"</tool_call\s*>", re.IGNORECASE)
_FENCE = re.compile(
    r"^(?P<indent>[ \t]{0,3})(?P<marker>`{3,}|~{3,})[ \t]*(?P<lang>[\w.+-]*)[^\n]*\n"
    r"(?P<body>.*?)(?:^[ \t]{0,3}(?P=marker)[ \t]*$|\Z)",
    re.MULTILINE | re.DOTALL,
)
_INLINE_CODE = re.compile(r"(`+)(?!`).+?(?<!`)\1(?!`)", re.DOTALL)
# A model on the text protocol sometimes goes on to invent the results of its calls.
_FABRICATED = re.compile(
    r"^[ \t]*<tool_response\s*>.*?</tool_response\s*>[ \t]*$", re.I | re.DOTALL | re.M
)
_SPECIAL_TOKENS = re.compile(r"<\|(?:im_end|im_start|endoftext|eot_id)\|>")
_CALL_FENCE_LANGS = frozenset({"", "json", "json5", "jsonc", "tool_call", "tool", "tool_code"})
_BODY_START = re.compile(r"\s*(?:(?:`{3,}|~{3,})[\w-]*[ \t]*\n\s*)?")
_BODY_END = re.compile(r"\s*(?:(?:`{3,}|~{3,})\s*)?</tool_call\s*>", re.IGNORECASE)
_BLANK_LINES = re.compile(r"\n[ \t]*\n(?:[ \t]*\n)+")


@dataclass(frozen=True)
class ToolCall:
    """A tool call to carry out.

    Args:
        id: the provider's call id, or one made up for a text call.
        name: the tool's name.
        arguments: the decoded arguments.
        repairs: what had to be repaired to decode the call (empty when it was clean).
    """

    id: str
    name: str
    arguments: dict[str, Any]
    repairs: tuple[str, ...] = ()

    def to_message(self) -> dict[str, Any]:
        """The OpenAI ``tool_calls`` entry of the assistant message."""
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": json.dumps(self.arguments)},
        }


@dataclass(frozen=True)
class CallProblem:
    """A tool call that could not be decoded.

    Args:
        reason: why, for the model.
        raw: the text of the call as the model wrote it.
        id: the provider's call id, for a native call (its result must answer it).
        name: the tool's name, when it could be read.
    """

    reason: str
    raw: str
    id: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class ParsedReply:
    """An answer taken apart: its prose, its calls and the calls that failed to parse."""

    text: str
    calls: tuple[ToolCall, ...] = ()
    problems: tuple[CallProblem, ...] = ()

    @property
    def wants_tools(self) -> bool:
        return bool(self.calls or self.problems)


def new_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:16]}"


# --- native -----------------------------------------------------------------------------


def parse_native(calls: Sequence[NativeCall]) -> tuple[list[ToolCall], list[CallProblem]]:
    """Decode the ``arguments`` of native calls (repairing them if need be)."""
    decoded: list[ToolCall] = []
    problems: list[CallProblem] = []
    for call in calls:
        call_id = call.id or new_call_id()
        if not call.name:
            problems.append(CallProblem("the call has no tool name", call.arguments, call_id))
            continue
        try:
            arguments, repairs = decode_arguments(call.arguments)
        except RepairError as exc:
            problems.append(
                CallProblem(f"its arguments are {exc}", call.arguments, call_id, call.name)
            )
            continue
        decoded.append(ToolCall(call_id, call.name, arguments, repairs))
    return decoded, problems


def decode_arguments(raw: Any) -> tuple[dict[str, Any], tuple[str, ...]]:
    """Arguments as a dict, from a dict or from (possibly damaged, possibly doubly
    encoded) JSON text."""
    repairs: tuple[str, ...] = ()
    if isinstance(raw, str):
        if not raw.strip():
            return {}, ()
        raw, repairs = loads_lenient(raw)
        if isinstance(raw, str):  # encoded twice
            raw, more = loads_lenient(raw)
            repairs = (*repairs, "arguments given as a JSON string", *more)
    if raw is None:
        return {}, repairs
    if not isinstance(raw, Mapping):
        raise RepairError(f"not a JSON object but {type(raw).__name__}")
    return dict(raw), repairs


def parse_reply(
    text: str, native: Sequence[NativeCall], tool_names: Collection[str] | None = None
) -> ParsedReply:
    """An answer's calls: the native ones if there are any, else those written in text."""
    if native:
        calls, problems = parse_native(native)
        return ParsedReply(_tidy(text), tuple(calls), tuple(problems))
    return parse_text(text, tool_names)


# --- text -------------------------------------------------------------------------------


@dataclass
class _Found:
    start: int
    end: int
    calls: list[ToolCall] = field(default_factory=list)
    problems: list[CallProblem] = field(default_factory=list)


def parse_text(text: str, tool_names: Collection[str] | None = None) -> ParsedReply:
    """Find the tool calls written in ``text``; the rest is the assistant's prose.

    ``tool_names`` are the tools that exist: a fenced or bare JSON object only counts as
    a call when its name is one of them (a ``<tool_call>`` tag always counts)."""
    try:
        found = _find_calls(text, tool_names)
    except RecursionError:  # absurdly nested input: treat it as prose
        found = []
    if not found:
        bare = _bare_call(text, tool_names)
        if bare is not None:
            found = [bare]
    prose, last = [], 0
    for item in sorted(found, key=lambda f: f.start):
        prose.append(text[last : item.start])
        last = max(last, item.end)
    prose.append(text[last:])
    return ParsedReply(
        text=_tidy("".join(prose)),
        calls=tuple(call for item in found for call in item.calls),
        problems=tuple(problem for item in found for problem in item.problems),
    )


def _tidy(text: str) -> str:
    text = _SPECIAL_TOKENS.sub("", _FABRICATED.sub("", text))
    return _BLANK_LINES.sub("\n\n", text).strip()


def _find_calls(text: str, tool_names: Collection[str] | None) -> list[_Found]:
    fenced: list[_Found] = []
    code_spans: list[tuple[int, int]] = []
    for fence in _FENCE.finditer(text):
        code_spans.append(fence.span())
        item = _fenced_call(text, fence, tool_names)
        if item is not None:
            fenced.append(item)
    code_spans.extend(m.span() for m in _INLINE_CODE.finditer(_blank_out(text, code_spans)))
    tagged = _tagged_calls(text, 0, len(text), code_spans)
    # a fence inside a tag ("<tool_call>```json ...```</tool_call>") is part of that call
    fenced = [f for f in fenced if not any(t.start <= f.start < t.end for t in tagged)]
    return fenced + tagged


def _blank_out(text: str, spans: Iterable[tuple[int, int]]) -> str:
    """``text`` with the spans replaced by spaces (offsets unchanged)."""
    chars = list(text)
    for start, end in spans:
        chars[start:end] = " " * (end - start)
    return "".join(chars)


def _inside(position: int, spans: Sequence[tuple[int, int]]) -> bool:
    return any(start <= position < end for start, end in spans)


def _tagged_calls(
    text: str, start: int, stop: int, skip: Sequence[tuple[int, int]]
) -> list[_Found]:
    found: list[_Found] = []
    position = start
    while (tag := _OPEN_TAG.search(text, position, stop)) is not None:
        position = tag.end()
        if _inside(tag.start(), skip):
            continue
        item = _tagged_call(text, tag, stop)
        if item is not None:
            found.append(item)
            position = item.end
    return found


def _tagged_call(text: str, tag: re.Match[str], stop: int) -> _Found | None:
    return _tagged_by_extent(text, tag, stop) or _tagged_by_tags(text, tag, stop)


def _tagged_by_extent(text: str, tag: re.Match[str], stop: int) -> _Found | None:
    """The call as the JSON value right after the tag, scanned with strings in mind, so
    a ``</tool_call>`` inside an argument (a file about tool calls) does not end it."""
    opening = _BODY_START.match(text, tag.end(), stop)
    assert opening is not None  # the pattern can match the empty string
    start = opening.end()
    extent = json_extent(text[start:stop])
    if extent is None:
        return None
    raw = text[start : start + extent]
    closing = _BODY_END.match(text, start + extent, stop)
    if closing is None and _CLOSE_TAG.search(text, start + extent, stop):
        return None  # more before the closing tag: let the tags delimit it
    try:
        loads_values(raw)
    except RepairError:
        return None
    item = _Found(tag.start(), closing.end() if closing else start + extent)
    _decode_calls(raw, item, require=None)
    return item


def _tagged_by_tags(text: str, tag: re.Match[str], stop: int) -> _Found | None:
    """The call as whatever lies between the tags (the next opening tag, or the end of
    the text, when the closing tag is missing)."""
    body_start = tag.end()
    close = _CLOSE_TAG.search(text, body_start, stop)
    following = _OPEN_TAG.search(text, body_start, stop)
    if close is not None and (following is None or close.start() < following.start()):
        inner, end = _unfence(text[body_start : close.start()]).strip(), close.end()
    else:
        end = following.start() if following is not None else stop
        inner = text[body_start:end].strip()
    if not inner.startswith(("{", "[")):
        return None  # "<tool_call>" mentioned in prose, not used
    item = _Found(tag.start(), end)
    _decode_calls(inner, item, require=None)
    return item


def _unfence(body: str) -> str:
    match = re.fullmatch(r"\s*(`{3,}|~{3,})[\w-]*\n(.*?)\n?\s*\1?\s*", body, re.DOTALL)
    return match.group(2) if match else body


def _fenced_call(
    text: str, fence: re.Match[str], tool_names: Collection[str] | None
) -> _Found | None:
    lang = fence.group("lang").lower()
    body = fence.group("body")
    stripped = body.strip()
    if _OPEN_TAG.match(stripped) and lang in (*_CALL_FENCE_LANGS, "xml", "html", "text"):
        # A fence holding nothing but tagged calls: the calls, fence and all.
        inner = _tagged_calls(text, fence.start("body"), fence.end("body"), [])
        rest = _blank_out(text, [(f.start, f.end) for f in inner])[
            fence.start("body") : fence.end("body")
        ]
        if inner and not rest.strip():
            merged = _Found(fence.start(), fence.end())
            for item in inner:
                merged.calls += item.calls
                merged.problems += item.problems
            return merged
        return None
    if lang not in _CALL_FENCE_LANGS or not stripped.startswith(("{", "[")):
        return None
    item = _Found(fence.start(), fence.end())
    _decode_calls(stripped, item, require=tool_names, strict_shape=True)
    return item if item.calls or item.problems else None


def _bare_call(text: str, tool_names: Collection[str] | None) -> _Found | None:
    stripped = text.strip()
    if not (stripped.startswith("{") and stripped.endswith("}")):
        return None
    item = _Found(0, len(text))
    _decode_calls(stripped, item, require=tool_names, strict_shape=True)
    return item if item.calls else None


def _decode_calls(
    raw: str, item: _Found, *, require: Collection[str] | None, strict_shape: bool = False
) -> None:
    """Decode ``raw`` into calls (or problems) on ``item``.

    ``strict_shape``: JSON that is not clearly a call to a known tool (``require``) is
    left alone, since it is probably just JSON the model is showing."""
    try:
        value, repairs = loads_values(raw)
    except RepairError as exc:
        name = _guess_name(raw)
        if strict_shape and (name is None or (require is not None and name not in require)):
            return
        item.problems.append(CallProblem(f"the call is {exc}", raw, name=name))
        return
    objects = value if isinstance(value, list) else [value]
    if strict_shape and not all(_looks_like_call(o, require) for o in objects):
        return
    if not objects:
        item.problems.append(CallProblem("the call is an empty list", raw))
    for obj in objects:
        _decode_one(obj, raw, repairs, item)


def _looks_like_call(obj: Any, require: Collection[str] | None) -> bool:
    if not isinstance(obj, dict):
        return False
    if isinstance(obj.get("function"), dict):
        obj = obj["function"]
    name = obj.get("name")
    if not isinstance(name, str) or not ({"arguments", "parameters"} & obj.keys()):
        return False
    return require is None or name in require


def _decode_one(obj: Any, raw: str, repairs: tuple[str, ...], item: _Found) -> None:
    if isinstance(obj, dict) and isinstance(obj.get("function"), dict):
        obj = obj["function"]
    if not isinstance(obj, dict):
        item.problems.append(CallProblem("a call must be a JSON object", raw))
        return
    name = obj.get("name", obj.get("tool"))
    if not isinstance(name, str) or not name.strip():
        item.problems.append(CallProblem('the call has no "name"', raw))
        return
    arguments = obj.get("arguments", obj.get("parameters", obj.get("args")))
    try:
        decoded, more = decode_arguments(arguments)
    except RepairError as exc:
        item.problems.append(CallProblem(f'its "arguments" are {exc}', raw, name=name))
        return
    if isinstance(arguments, str) and arguments.strip():
        more = ("arguments given as a JSON string", *more)
    call = ToolCall(new_call_id(), name.strip(), decoded, tuple(dict.fromkeys(repairs + more)))
    item.calls.append(call)


def _guess_name(raw: str) -> str | None:
    match = re.search(r"""["']?name["']?\s*:\s*["']([\w.-]+)["']""", raw)
    return match.group(1) if match else None
