"""Tool calls out of a model's answer, native or written as text.

Native calls (OpenAI ``tool_calls``, already assembled by the client) only need their
``arguments`` decoded. Text calls are found in the forms models write them, whichever
format the provider was asked for (a model served with native tools may still write
text, and it costs nothing to read it):

- ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` (Qwen/Hermes), anywhere
  outside code and inline code; a missing closing tag at the end is tolerated;
- Qwen3-Coder's XML, ``<tool_call><function=NAME><parameter=NAME>value</parameter>
  </function></tool_call>``, with or without the ``<tool_call>`` tags, its values typed
  by the tool's JSON schema (:mod:`.xml_calls`);
- Qwen-Agent's ``✿FUNCTION✿: NAME`` / ``✿ARGS✿: {...}`` (:mod:`.qwen_agent_calls`);
- a fenced block (```` ```json ````, ```` ```tool_call ```` or bare) holding only such
  an object (or a list of them) whose ``name`` is one of our tools;
- the whole answer being such an object.

Everything else is prose, kept as the assistant's text: a code example that shows JSON
or XML is not a call. Damaged calls are repaired (:mod:`.json_repair`); what cannot be
is returned as a :class:`CallProblem` whose reason goes back to the model. Parsing never
raises, and takes time in proportion to the answer's length (:mod:`.code_spans`); with a
``limit``, the calls past it are not decoded at all (:attr:`ParsedReply.unread`), so an
answer of a million calls costs no more than one of ``limit``.
"""

from __future__ import annotations

import codecs
import contextlib
import dataclasses
import heapq
import json
import re
import tempfile
import uuid
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .code_spans import NOT_BLANK, Fences, NextMatch, Spans, code_spans, unfence
from .json_repair import RepairError, json_extent, loads_lenient, loads_values
from .qwen_agent_calls import FN_NAME, marked_calls
from .xml_calls import (
    CALL_END,
    FUNCTION,
    FUNCTION_END,
    MAX_CALL_CHARS,
    PARAMETER_END,
    Room,
    Schemas,
    XmlCall,
    XmlScanner,
    clipped,
    too_long,
)

if TYPE_CHECKING:
    from ..core import ToolCall as NativeCall
    from .formats import CallForm

#: The tools a reply may call: their parameters' JSON schemas by name (values written
#: as text are typed by them), or just their names.
KnownTools = Schemas | Collection[str]

_OPEN_TAG = re.compile(r"<tool_call\s*>", re.IGNORECASE)
_CLOSE_TAG = re.compile(r"</tool_call\s*>", re.IGNORECASE)
# A model on the text protocol sometimes goes on to invent the results of its calls.
_RESPONSE_OPEN = re.compile(r"^[ \t]*<tool_response\s*>", re.I | re.M)
_RESPONSE_CLOSE = re.compile(r"</tool_response\s*>[ \t]*$", re.I | re.M)
_SPECIAL_TOKENS = re.compile(r"<\|(?:im_end|im_start|endoftext|eot_id)\|>")
_CALL_FENCE_LANGS = frozenset({"", "json", "json5", "jsonc", "tool_call", "tool", "tool_code"})
_BODY_START = re.compile(r"\s*(?:(?:`{3,}|~{3,})[\w-]*[ \t]*\n\s*)?")
_BODY_END = re.compile(r"\s*(?:(?:`{3,}|~{3,})\s*)?</tool_call\s*>", re.IGNORECASE)
_BLANK_LINES = re.compile(r"\n[ \t]*\n(?:[ \t]*\n)+")


@dataclass(frozen=True)
class DecodedCall:
    """A tool call decoded from an answer, native or written as text, to carry out (the
    provider's raw call, arguments still a JSON string, is :class:`qwen_dev_cli.core.ToolCall`).

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
        form: how the call was written (``native``, ``hermes``, ``qwen3_coder``...).
    """

    reason: str
    raw: str
    id: str | None = None
    name: str | None = None
    #: How the call was written, so that the model is asked to write it again that way.
    form: CallForm = "hermes"


class Answer:
    """An answer's text handed to :func:`parse_reply` for good. Once it is read, the
    parser may let it go (``text`` becomes empty) before it makes the prose: a huge
    answer and prose made from most of it (trimmed, or before a call) are then never
    held at once. Whoever hands it over keeps no other reference to the text."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


#: Prose of at least this many characters that is not the answer itself is made
#: without being held beside the answer (:func:`_spooled`).
SPOOL_AT = 4 << 20
#: Characters written to, or read from, the spool at a time.
_SPOOL_SLICE = 1 << 20


@dataclass(frozen=True)
class ParsedReply:
    """An answer taken apart: its prose, its calls and the calls that failed to parse."""

    text: str
    calls: tuple[DecodedCall, ...] = ()
    problems: tuple[CallProblem, ...] = ()
    #: Calls written past the ``limit`` of :func:`parse_text`, not decoded (the rest of
    #: the answer, from the first of them, is neither read for calls nor kept as prose).
    unread: int = 0


#: Repairs that supply a call's missing end: in an answer cut at its token limit, such a
#: call was cut off, and what it would have said next (a ``cwd``, a ``dry_run``) is lost.
UNFINISHED = frozenset(
    {
        "missing closing bracket",
        f"missing {FUNCTION_END}",
        f"missing {PARAMETER_END}",
        f"missing {PARAMETER_END} at the end",
    }
)


def unfinished(call: DecodedCall) -> list[str]:
    """The repairs that supplied ``call``'s end (none: it was written complete)."""
    return [how for how in call.repairs if how in UNFINISHED]


def new_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:16]}"


# --- native -----------------------------------------------------------------------------


def parse_native(calls: Sequence[NativeCall]) -> tuple[list[DecodedCall], list[CallProblem]]:
    """Decode the ``arguments`` of native calls (repairing them if need be)."""
    decoded: list[DecodedCall] = []
    problems: list[CallProblem] = []
    room = Room()
    for call in calls:
        call_id = call.id or new_call_id()
        size = len(call.arguments) if isinstance(call.arguments, str) else 0
        if (refused := room.take(size)) is not None:
            raw = clipped(call.arguments, 0, size) if isinstance(call.arguments, str) else ""
            problems.append(CallProblem(refused, raw, call_id, call.name or None, "native"))
            continue
        if not call.name:
            problems.append(
                CallProblem("the call has no tool name", call.arguments, call_id, form="native")
            )
            continue
        try:
            arguments, repairs = decode_arguments(call.arguments)
        except RepairError as exc:
            reason = f"its arguments are {exc}"
            problems.append(CallProblem(reason, call.arguments, call_id, call.name, "native"))
            continue
        decoded.append(DecodedCall(call_id, call.name, arguments, repairs))
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
    text: str | Answer,
    native: Sequence[NativeCall],
    tools: KnownTools | None = None,
    *,
    limit: int | None = None,
) -> ParsedReply:
    """An answer's calls: the native ones if there are any, else those written in text
    (decoded up to ``limit`` calls and problems: :func:`parse_text`). ``text`` given as
    an :class:`Answer` may be let go once read."""
    if native:
        calls, problems = parse_native(native)
        size = len(_text_of(text))
        return ParsedReply(_prose(text, [(0, size)]), tuple(calls), tuple(problems))
    return parse_text(text, tools, limit=limit)


# --- text -------------------------------------------------------------------------------


@dataclass
class _Found:
    """Calls found in one stretch of the text (the stretch is not prose)."""

    start: int
    end: int
    form: CallForm = "hermes"
    calls: list[DecodedCall] = field(default_factory=list)
    problems: list[CallProblem] = field(default_factory=list)

    def fail(self, reason: str, raw: str, name: str | None = None) -> None:
        self.problems.append(CallProblem(reason, raw, name=name, form=self.form))


@dataclass
class _Text:
    """The answer being searched: its code, and the calls found in it so far."""

    text: str
    names: frozenset[str] | None
    schemas: Schemas | None
    #: The code, as far as :meth:`in_code` asks about it (the code that holds a tag).
    code: Spans
    #: The ``<tool_call>`` blocks found, then the ``<function=...>`` ones without it
    #: (each list in order of position).
    calls: Spans = field(default_factory=Spans)
    bare: Spans = field(default_factory=Spans)
    #: Calls and problems to decode at most (``None``: all), and how many were.
    limit: int | None = None
    kept: int = 0
    #: Calls seen past the limit and not decoded.
    unread: int = 0
    #: What the reply's calls may still hold (one for every scanner, shared).
    room: Room = field(default_factory=Room)

    def full(self) -> bool:
        """Whether the calls decoded reach the limit: the next one is not read."""
        return self.limit is not None and self.kept >= self.limit

    def keep(self, item: _Found) -> _Found:
        self.kept += len(item.calls) + len(item.problems)
        return item

    def skip_rest(self, start: int, unread: int) -> _Found:
        """The rest of the text from ``start``, not read: ``unread`` calls in it."""
        self.unread += unread
        return _Found(start, len(self.text))

    def in_code(self, position: int) -> bool:
        """Whether ``position`` (where a call may begin: :func:`_asked_in_code`) is in
        code. A code span that begins inside a call found
        before is part of that call's arguments (a file with a stray backtick), and
        hides nothing after the call."""
        span = self.code.at(position)
        return span is not None and not self._in_call(span[0])

    def taken(self, position: int) -> bool:
        return self.in_code(position) or self._in_call(position)

    def _in_call(self, position: int) -> bool:
        return self.calls.at(position) is not None or self.bare.at(position) is not None

    def scanner(self, stop: int) -> XmlScanner:
        return XmlScanner(self.text, stop, self.schemas, self.names, self.room)


def parse_text(
    text: str | Answer, tools: KnownTools | None = None, *, limit: int | None = None
) -> ParsedReply:
    """Find the tool calls written in ``text``; the rest is the assistant's prose.

    ``tools`` are the tools that exist, with their parameters' schemas (to type values
    written as text) or by name: a fenced or bare JSON object, or a ``<function=...>``
    without ``<tool_call>``, only counts as a call when its name is one of them (a
    ``<tool_call>`` tag or a ``✿FUNCTION✿`` always counts).

    ``limit``: the calls and problems to decode at most; once they are reached, the
    rest of the text is not read (counted in :attr:`ParsedReply.unread`).

    ``text`` given as an :class:`Answer` may be let go once read (this frame holds it
    only through the answer, never as a name of its own)."""
    names, schemas = _known(tools)
    unread = 0
    size = len(_text_of(text))
    try:
        found, unread = _find_calls(_text_of(text), names, schemas, limit)
    except RecursionError:  # absurdly nested input: treat it as prose
        found = []
    if not found:
        bare = _bare_call(_text_of(text), names)
        if bare is not None:
            found = [bare]
    bounds, last = [], 0
    for item in sorted(found, key=lambda f: f.start):
        if item.start > last:
            bounds.append((last, item.start))
        last = max(last, item.end)
    if last < size:
        bounds.append((last, size))
    return ParsedReply(
        text=_prose(text, bounds),
        calls=tuple(call for item in found for call in item.calls),
        problems=tuple(problem for item in found for problem in item.problems),
        unread=unread,
    )


def _known(tools: KnownTools | None) -> tuple[frozenset[str] | None, Schemas | None]:
    if tools is None:
        return None, None
    if isinstance(tools, Mapping):
        return frozenset(tools), tools
    return frozenset(tools), None


def _text_of(text: str | Answer) -> str:
    return text.text if isinstance(text, Answer) else text


def _prose(text: str | Answer, bounds: list[tuple[int, int]]) -> str:
    """:func:`_tidy` of the stretches ``bounds`` of ``text`` put together, made from the
    stretches without the blanks at their ends: together and then trimmed, a huge answer
    would be held three times (the answer, its prose, and that trimmed). Blanks at the
    ends only matter to a made-up ``<tool_response>`` line at an end (``[ \t]*``): prose
    that begins with ``<`` or ends with ``>`` is made from the untrimmed stretches.

    From an :class:`Answer`, long prose that is not the whole text is made without the
    two held at once (:func:`_spooled`)."""
    whole = _text_of(text)
    use = _without_blank_ends(whole, bounds)
    if use and (whole[use[0][0]] == "<" or whole[use[-1][1] - 1] == ">"):
        use = bounds
    long = sum(end - start for start, end in use) >= SPOOL_AT
    if not isinstance(text, Answer) or not long or use == [(0, len(whole))]:
        return _tidy(_joined(whole, use))
    del whole
    return _tidy(_spooled(text, use))


def _spooled(answer: Answer, bounds: list[tuple[int, int]]) -> str:
    """The stretches ``bounds`` of the answer's text together, never beside the whole
    answer: written to an unnamed temporary file a slice at a time, the answer let go,
    then read back onto one string that grows in place (:func:`_joined`'s way). Exact:
    the text goes through UTF-8 with surrogates passed as they are. Without a disk to
    write to, made as :func:`_joined` makes it."""
    try:
        spool = tempfile.TemporaryFile()  # noqa: SIM115 (closed below, on every path)
    except OSError:
        return _joined(answer.text, bounds)
    with spool:
        try:
            text = answer.text
            for start, end in bounds:
                for at in range(start, end, _SPOOL_SLICE):
                    piece = text[at : min(end, at + _SPOOL_SLICE)]
                    spool.write(piece.encode("utf-8", "surrogatepass"))
            del text
            spool.flush()
        except OSError:
            return _joined(answer.text, bounds)
        answer.text = ""
        spool.seek(0)
        decoder = codecs.getincrementaldecoder("utf-8")("surrogatepass")
        joined = ""
        while block := spool.read(_SPOOL_SLICE):
            joined += decoder.decode(block)
        return joined + decoder.decode(b"", final=True)


def _without_blank_ends(text: str, bounds: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """``bounds`` (stretches of ``text``) without the blanks (``str.isspace``) that begin
    the first and end the last, as ``str.strip()`` would take them from them together."""
    first, last = 0, len(bounds)
    while first < last:
        start, end = bounds[first]
        if (begin := NOT_BLANK.search(text, start, end)) is not None:
            break
        first += 1
    else:
        return []
    bounds = [(begin.start(), end), *bounds[first + 1 : last]]
    while True:  # one at least is not blank
        start, end = bounds[-1]
        if (stop := _end_of_words(text, start, end)) != -1:
            bounds[-1] = (start, stop)
            return bounds
        bounds.pop()


def _end_of_words(text: str, start: int, end: int) -> int:
    """Where the blanks that end ``text[start:end]`` begin (``-1``: it is all blank),
    looked for a few kilobytes at a time from the end, not with a copy of it."""
    while end > start:
        begin = max(start, end - 4096)
        if words := text[begin:end].rstrip():
            return begin + len(words)
        end = begin
    return -1


def _joined(text: str, bounds: list[tuple[int, int]]) -> str:
    """The stretches of ``text`` together: ``text`` itself when it is all of it, else
    grown in place one stretch at a time (``+=`` on a string only this frame holds), not
    listed and then joined."""
    if len(bounds) == 1:
        start, end = bounds[0]
        return text[start:end]
    joined = ""
    for start, end in bounds:
        joined += text[start:end]
    return joined


def _tidy(text: str) -> str:
    text = _SPECIAL_TOKENS.sub("", _without_fabrications(text))
    return _BLANK_LINES.sub("\n\n", text).strip()


def _without_fabrications(text: str) -> str:
    """``text`` without the ``<tool_response>`` blocks (whole lines) it invents."""
    closes = NextMatch(_RESPONSE_CLOSE, text, len(text))
    kept, position = [], 0
    for opening in _RESPONSE_OPEN.finditer(text):
        if opening.start() < position:
            continue
        closing = closes.search(opening.end())
        if closing is None:
            break
        kept.append(text[position : opening.start()])
        position = closing.end()
    kept.append(text[position:])
    return "".join(kept)


def _find_calls(
    text: str, names: frozenset[str] | None, schemas: Schemas | None, limit: int | None
) -> tuple[list[_Found], int]:
    fences, code = code_spans(text, _asked_in_code(text))
    answer = _Text(text, names, schemas, code, limit=limit)
    with contextlib.closing(answer.scanner(len(text))) as scanner:
        return _calls_with(answer, scanner, fences)


def _calls_with(answer: _Text, scanner: XmlScanner, fences: Fences) -> tuple[list[_Found], int]:
    text = answer.text
    tagged = _tagged_calls(answer, scanner, 0, len(text), top_level=True)
    # a fence inside a tag ("<tool_call>```json ...```</tool_call>") is part of that call
    fenced: list[_Found] = []
    for number, fence in enumerate(fences):
        if answer.calls.at(fence.start()) is not None:
            continue
        if answer.full():
            fenced.append(answer.skip_rest(fence.start(), len(fences) - number))
            break
        if (item := _fenced_call(answer, fence)) is not None:
            fenced.append(answer.keep(item))
    found = fenced + tagged + _bare_xml_calls(answer, scanner)
    found = found or _marked_calls(answer)
    return found, answer.unread


def _asked_in_code(text: str) -> Iterator[int]:
    """Every position :meth:`_Text.in_code` may be asked about, in order: the tags that
    begin a call (``<tool_call>``, ``<function=``, ``✿FUNCTION✿``). Only the code that
    holds one of them is kept (:func:`.code_spans.code_spans`)."""
    return heapq.merge(
        (tag.start() for tag in _OPEN_TAG.finditer(text)),
        _occurrences(text, FUNCTION),
        _occurrences(text, FN_NAME),
    )


def _occurrences(text: str, word: str) -> Iterator[int]:
    """Where ``word`` begins in ``text``, overlaps included (``str.find`` from each
    next position, as the parser looks for it)."""
    position = 0
    while (start := text.find(word, position)) != -1:
        yield start
        position = start + 1


def _tagged_calls(
    answer: _Text, scanner: XmlScanner, start: int, stop: int, *, top_level: bool
) -> list[_Found]:
    """The ``<tool_call>`` blocks of ``text[start:stop]`` (at the top level: those
    outside code, each recorded as found)."""
    text = answer.text
    found: list[_Found] = []
    closes = NextMatch(_CLOSE_TAG, text, stop)
    position = start
    while (tag := _OPEN_TAG.search(text, position, stop)) is not None:
        position = tag.end()
        if top_level and answer.in_code(tag.start()):
            continue
        if top_level and answer.full():
            # counted, not listed: a list of a million matches is tens of megabytes
            unread = sum(1 for _ in _OPEN_TAG.finditer(text, tag.start()))
            rest = answer.skip_rest(tag.start(), unread)
            answer.calls.append(rest.start, rest.end)
            found.append(rest)
            break
        item = _tagged_call(answer, scanner, closes, tag)
        if item is not None:
            found.append(answer.keep(item) if top_level else item)
            position = max(position, item.end)
            if top_level:
                answer.calls.append(item.start, item.end)
    return found


def _tagged_call(
    answer: _Text, scanner: XmlScanner, closes: NextMatch, tag: re.Match[str]
) -> _Found | None:
    first = scanner.wrapped_function(tag.end())
    if first is not None:
        return _xml_found(answer.text, scanner.read_wrapped(tag.start(), first))
    text = answer.text
    return _tagged_by_extent(text, tag, closes, answer.room) or _tagged_by_tags(
        text, tag, closes, answer.room
    )


def _tagged_by_extent(
    text: str, tag: re.Match[str], closes: NextMatch, room: Room
) -> _Found | None:
    """The call as the JSON value right after the tag, scanned with strings in mind, so
    a ``</tool_call>`` inside an argument (a file about tool calls) does not end it."""
    stop = closes.stop
    opening = _BODY_START.match(text, tag.end(), stop)
    assert opening is not None  # the pattern can match the empty string
    start = opening.end()
    # "<" outside a string: not JSON, perhaps the next tag; the tags delimit the call.
    extent = json_extent(text, start, stop, halt="<")
    if extent is None:
        return None
    closing = _BODY_END.match(text, start + extent, stop)
    if closing is None and closes.search(start + extent):
        return None  # more before the closing tag: let the tags delimit it
    end = closing.end() if closing else start + extent
    if extent > MAX_CALL_CHARS:
        return _refused(text, tag.start(), end, too_long(end - tag.start()))
    raw = text[start : start + extent]
    try:
        loads_values(raw)
    except RepairError:
        return None
    if (refused := room.take(extent)) is not None:
        return _refused(text, tag.start(), end, refused)
    item = _Found(tag.start(), end)
    _decode_calls(raw, item, require=None)
    return item


def _tagged_by_tags(text: str, tag: re.Match[str], closes: NextMatch, room: Room) -> _Found | None:
    """The call as whatever lies between the tags (the next opening tag, or the end of
    the text, when the closing tag is missing)."""
    stop = closes.stop
    body_start = tag.end()
    close = closes.search(body_start)
    following = _OPEN_TAG.search(text, body_start, stop)
    if close is not None and (following is None or close.start() < following.start()):
        body_end, end, closed = close.start(), close.end(), True
    else:
        end = body_end = following.start() if following is not None else stop
        closed = False
    first = NOT_BLANK.search(text, body_start, body_end)
    if first is None or text[first.start()] not in "{[`~":
        return None  # "<tool_call>" mentioned in prose, not used
    if body_end - body_start > MAX_CALL_CHARS:  # refused before any copy is made
        return _refused(text, tag.start(), end, too_long(end - tag.start()))
    if closed:
        inner = unfence(text[body_start:body_end]).strip()
    else:
        inner = text[body_start:body_end].strip()
    if not inner.startswith(("{", "[")):
        return None  # "<tool_call>" mentioned in prose, not used
    if (refused := room.take(len(inner))) is not None:
        return _refused(text, tag.start(), end, refused)
    item = _Found(tag.start(), end)
    _decode_calls(inner, item, require=None)
    return item


def _refused(text: str, start: int, end: int, why: str, form: CallForm = "hermes") -> _Found:
    """A call in ``text[start:end]`` refused unread (too long, or past what the reply's
    calls may hold): a problem that quotes its head and tail."""
    item = _Found(start, end, form=form)
    item.fail(why, clipped(text, start, end), _guess_name(text[start : start + 1000]))
    return item


def _xml_found(text: str, calls: list[XmlCall]) -> _Found:
    """Qwen3-Coder calls read by :mod:`.xml_calls`, as found calls and problems."""
    item = _Found(calls[0].start, calls[-1].end, form="qwen3_coder")
    for call in calls:
        if call.problem is not None or call.name is None:
            item.fail(
                call.problem or "the call has no name",
                clipped(text, call.start, call.end),
                call.name,
            )
        else:
            item.calls.append(DecodedCall(new_call_id(), call.name, call.arguments, call.repairs))
    return item


def _bare_xml_calls(answer: _Text, scanner: XmlScanner) -> list[_Found]:
    """``<function=...>`` calls written without ``<tool_call>``, outside code and the
    calls found already, to tools that exist."""
    text = answer.text
    found: list[_Found] = []
    position = 0
    while (start := text.find(FUNCTION, position)) != -1:
        position = start + 1
        if answer.taken(start) or not scanner.opens_call(start):
            continue
        if answer.full():
            found.append(answer.skip_rest(start, text.count(FUNCTION, start)))
            break
        call = scanner.read_function(start)
        after = call.end
        while after < len(text) and text[after] in " \t\r\n":
            after += 1
        if text.startswith(CALL_END, after):  # a closing tag without its opening one
            call = dataclasses.replace(call, end=after + len(CALL_END))
        found.append(answer.keep(_xml_found(text, [call])))
        answer.bare.append(call.start, call.end)
        position = max(position, call.end)
    return found


def _marked_calls(answer: _Text) -> list[_Found]:
    """Qwen-Agent's ``✿FUNCTION✿`` calls: from the first one outside code to the end."""
    text = answer.text
    position = 0
    while (start := text.find(FN_NAME, position)) != -1:
        if not answer.in_code(start):
            break
        position = start + 1
    else:
        return []
    item = _Found(start, len(text), form="qwen_agent")
    marked_all = marked_calls(text, start)
    for marked in marked_all:
        if answer.full():
            answer.unread += 1 + sum(1 for _ in marked_all)  # counted, not kept
            break
        answer.kept += 1
        if marked.oversized:
            item.fail(too_long(marked.oversized), marked.raw, marked.name or None)
        elif (refused := answer.room.take(len(marked.raw))) is not None:
            raw = clipped(marked.raw, 0, len(marked.raw))
            item.fail(refused, raw, marked.name or None)
        elif not marked.name:
            item.fail("the call has no tool name", marked.raw)
        elif answer.names is not None and marked.name not in answer.names:
            known = ", ".join(sorted(answer.names))
            item.fail(f"there is no tool {marked.name!r} (the tools are {known})", marked.raw)
        else:
            try:
                arguments, repairs = decode_arguments(marked.arguments)
            except RepairError as exc:
                item.fail(f"its arguments are {exc}", marked.raw, marked.name)
                continue
            item.calls.append(DecodedCall(new_call_id(), marked.name, arguments, repairs))
    return [item] if item.calls or item.problems else []


def _fenced_call(answer: _Text, fence: re.Match[str]) -> _Found | None:
    text = answer.text
    lang = fence.group("lang").lower()
    if fence.end("body") - fence.start("body") > MAX_CALL_CHARS:
        # Not read: too long for a call, whatever it holds (a huge JSON example stays
        # prose; one that is a call would be refused unread anyway).
        return None
    body = fence.group("body")
    stripped = body.strip()
    if _OPEN_TAG.match(stripped) and lang in (*_CALL_FENCE_LANGS, "xml", "html", "text"):
        # A fence holding nothing but tagged calls: the calls, fence and all.
        body_start, body_end = fence.start("body"), fence.end("body")
        with contextlib.closing(answer.scanner(body_end)) as scanner:
            inner = _tagged_calls(answer, scanner, body_start, body_end, top_level=False)
        if inner and _nothing_between(text, body_start, body_end, inner):
            merged = _Found(fence.start(), fence.end(), form=inner[0].form)
            for item in inner:
                merged.calls += item.calls
                merged.problems += item.problems
            return merged
        return None
    if lang not in _CALL_FENCE_LANGS or not stripped.startswith(("{", "[")):
        return None
    item = _Found(fence.start(), fence.end(), form="json")
    _decode_calls(stripped, item, require=answer.names, strict_shape=True)
    if not (item.calls or item.problems):
        return None  # JSON shown, not a call: it takes nothing of the reply's room
    if (refused := answer.room.take(len(stripped))) is not None:
        return _refused(text, fence.start(), fence.end(), refused, form="json")
    return item


def _nothing_between(text: str, start: int, stop: int, items: list[_Found]) -> bool:
    """Whether ``text[start:stop]`` holds nothing but ``items`` and blanks."""
    last = start
    for item in items:
        if text[last : item.start].strip():
            return False
        last = item.end
    return not text[last:stop].strip()


def _bare_call(text: str, tool_names: Collection[str] | None) -> _Found | None:
    # Its first and last words looked at before any trimmed copy is made: most answers
    # are not one JSON object, and a huge one would be held twice for nothing.
    first = NOT_BLANK.search(text)
    end = _end_of_words(text, 0, len(text))
    if first is None or text[first.start()] != "{" or text[end - 1] != "}":
        return None
    if end - first.start() > MAX_CALL_CHARS:
        return None  # JSON too long for a call: prose (a call would be refused unread)
    stripped = text.strip()
    item = _Found(0, len(text), form="json")
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
        item.fail(f"the call is {exc}", raw, name)
        return
    objects = value if isinstance(value, list) else [value]
    if strict_shape and not all(_looks_like_call(o, require) for o in objects):
        return
    if not objects:
        item.fail("the call is an empty list", raw)
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
        item.fail("a call must be a JSON object", raw)
        return
    name = obj.get("name", obj.get("tool"))
    if not isinstance(name, str) or not name.strip():
        item.fail('the call has no "name"', raw)
        return
    arguments = obj.get("arguments", obj.get("parameters", obj.get("args")))
    try:
        decoded, more = decode_arguments(arguments)
    except RepairError as exc:
        item.fail(f'its "arguments" are {exc}', raw, name)
        return
    if isinstance(arguments, str) and arguments.strip():
        more = ("arguments given as a JSON string", *more)
    call = DecodedCall(new_call_id(), name.strip(), decoded, tuple(dict.fromkeys(repairs + more)))
    item.calls.append(call)


def _guess_name(raw: str) -> str | None:
    match = re.search(r"""["']?name["']?\s*:\s*["']([\w.-]+)["']""", raw)
    return match.group(1) if match else None
