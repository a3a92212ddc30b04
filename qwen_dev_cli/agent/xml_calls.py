"""Qwen3-Coder's tool calls: XML whose values are typed by the tool's JSON schema.

::

    <tool_call>
    <function=read_file>
    <parameter=path>
    src/app.py
    </parameter>
    <parameter=start_line>
    10
    </parameter>
    </function>
    </tool_call>

A value is the text between its tags, less the line breaks that frame it; it is
converted to the type its parameter has in the tool's schema (``10`` above becomes an
integer), and a value that is not of that type is a problem for the model to fix.
Damage models do is repaired: a ``</parameter>``, ``</function>`` or ``</tool_call>``
left out (the next tag, or the end of the answer, ends what was open), a closing tag
indented like its opening one, JSON arguments written inside ``<function=...>``. What
cannot be read without guessing is a problem: a parameter given twice (a value holding
``</parameter>`` and another parameter's tag, which could change a file's path).

Scanning is linear: every search moves forward through the text, and searches that
may be repeated from earlier positions remember their answer (:class:`_Finder`), so a
hostile answer costs time in proportion to its length. Tags are matched as models
write them, in lower case.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from .json_repair import RepairError, loads_lenient

CALL_START: Final = "<tool_call>"
CALL_END: Final = "</tool_call>"
FUNCTION: Final = "<function="
FUNCTION_END: Final = "</function>"
PARAMETER: Final = "<parameter="
PARAMETER_END: Final = "</parameter>"
#: Longest function or parameter name read; a longer one is not a tag.
NAME_LIMIT: Final = 128
#: Longest text converted to a number.
_NUMBER_LIMIT: Final = 100

#: What a function or parameter name may be made of.
TAG_NAME: Final = re.compile(r"[\w.:-]+")
_INTEGER = re.compile(r"[+-]?\d+")
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_WHITESPACE = " \t\r\n"

Schemas = Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True)
class XmlCall:
    """One ``<function=...>`` block: where it lies and what it decodes to.

    Args:
        start, end: its extent in the text (its ``<tool_call>`` tags included).
        name: the function's name, when it could be read.
        arguments: the typed arguments (empty when there is a problem).
        repairs: what had to be repaired.
        problem: why the call cannot be used, for the model; ``None`` when it can.
    """

    start: int
    end: int
    name: str | None
    arguments: dict[str, Any]
    repairs: tuple[str, ...] = ()
    problem: str | None = None


class _Finder:
    """The next occurrence of ``needle`` at or after a position that satisfies ``accept``,
    remembered: asked again from a later position that the answer still covers, it does
    not search again, so all searches together read the text about once."""

    def __init__(
        self, text: str, needle: str, stop: int, accept: Callable[[int], bool] | None = None
    ) -> None:
        self.text, self.needle, self.stop = text, needle, stop
        self.accept = accept
        self._from = -1
        self._hit = -1

    def next(self, pos: int) -> int:
        if self._from != -1 and pos >= self._from and (self._hit == -1 or self._hit >= pos):
            return self._hit
        self._from = pos
        hit = self.text.find(self.needle, pos, self.stop)
        while hit != -1 and self.accept is not None and not self.accept(hit):
            hit = self.text.find(self.needle, hit + 1, self.stop)
        self._hit = hit
        return hit


#: What :meth:`XmlScanner._value` says of a value the answer ended inside.
CUT_OFF = "cut off"
#: Characters one call written as text may hold, as many as a native call's arguments
#: (``ResponseLimits.tool_argument_chars``): past it the call is refused unread, before
#: any copy of it is made (a 60 MiB ``write_file`` peaked at 347 MB).
MAX_CALL_CHARS = 4 << 20
#: What :meth:`XmlScanner._value` says of a value longer than :data:`MAX_CALL_CHARS`.
TOO_LONG = "too long"


#: Characters all the calls of one reply may hold together, written as text or native:
#: two calls at the most. Each call's arguments are decoded, then made JSON again for
#: the conversation, recorded and sent back: fifteen native calls of 4 MiB (63 MiB,
#: within a response's cap) peaked at 299 MB.
MAX_REPLY_CALL_CHARS = 8 << 20


class Room:
    """What is left of :data:`MAX_REPLY_CALL_CHARS` for the calls of one reply."""

    def __init__(self, chars: int = MAX_REPLY_CALL_CHARS) -> None:
        self.chars = chars

    def take(self, chars: int) -> str | None:
        """Take ``chars`` for a call's text; ``None`` when they fit, else why it is
        refused (nothing taken)."""
        if chars > MAX_CALL_CHARS:
            return too_long(chars)
        if chars > self.chars:
            return (
                f"the reply's calls hold more than {MAX_REPLY_CALL_CHARS:,} characters in "
                "all: this one was not run; make fewer or smaller calls"
            )
        self.chars -= chars
        return None


def too_long(chars: int) -> str:
    """Why a call of ``chars`` characters is refused."""
    return (
        f"the call is {chars:,} characters, more than one call may hold "
        f"({MAX_CALL_CHARS:,}): it was not run; write the content in smaller parts"
    )


def clipped(text: str, start: int, end: int) -> str:
    """``text[start:end]`` as a problem quotes it: whole when short, else its head and
    its tail (the model is shown 500 characters of it; a huge call is never copied)."""
    if end - start <= 2000:
        return text[start:end]
    return f"{text[start : start + 1000]}…{text[end - 1000 : end]}"


class XmlScanner:
    """Reads Qwen3-Coder calls in ``text[:stop]``.

    Args:
        schemas: each tool's parameters schema by name (for typing values and knowing
            names); ``None``: no tool is known, values stay strings.
        names: the tools that exist, when only their names are known.
    """

    def __init__(
        self,
        text: str,
        stop: int,
        schemas: Schemas | None = None,
        names: frozenset[str] | None = None,
        room: Room | None = None,
    ) -> None:
        self.text, self.stop = text, stop
        self.room = room if room is not None else Room()
        #: Why the last value was refused (:data:`TOO_LONG`).
        self.refused = ""
        self.schemas = schemas
        self.names = names if names is not None else (frozenset(schemas) if schemas else None)
        self._value_end = _Finder(text, PARAMETER_END, stop, self._ends_value)
        self._next_parameter = _Finder(text, "\n" + PARAMETER, stop)
        self._function_end = _Finder(text, FUNCTION_END, stop, self._ends_function)
        self._any_function_end = _Finder(text, FUNCTION_END, stop)
        self._call_end = _Finder(text, CALL_END, stop)

    def close(self) -> None:
        """Let go of the text. Two finders accept through this scanner's methods, a
        cycle that only the cyclic collector would free: a huge answer would outlive
        its parse until that ran."""
        del self._value_end, self._function_end

    # --- where calls begin -------------------------------------------------------------

    def opens_call(self, pos: int) -> bool:
        """Whether the ``<function=`` at ``pos`` opens a call without ``<tool_call>``:
        it names a tool that exists, its tag closes on its line, and a parameter, the
        function's end or the end of the text follows (``<function=...>`` mentioned in
        prose, or showing another program's tools, is left alone)."""
        name, after = self._tag_name(pos, FUNCTION)
        if name is None or (self.names is not None and name not in self.names):
            return False
        rest = self._skip_space(after)
        return rest >= self.stop or self.text.startswith((PARAMETER, FUNCTION_END), rest)

    def wrapped_function(self, pos: int) -> int | None:
        """Where the ``<function=`` of a call opened by the ``<tool_call>`` whose body
        starts at ``pos`` begins (``None``: that body is something else, JSON perhaps)."""
        start = self._skip_space(pos)
        return start if self.text.startswith(FUNCTION, start) else None

    # --- reading calls -----------------------------------------------------------------

    def read_wrapped(self, tag_start: int, first: int) -> list[XmlCall]:
        """The calls of one ``<tool_call>`` (at ``tag_start``) whose first function is at
        ``first``; the last one's ``end`` includes the closing ``</tool_call>``."""
        calls: list[XmlCall] = []
        pos = first
        while True:
            call = self.read_function(pos)
            calls.append(call)
            after = self._skip_space(call.end)
            if not self.text.startswith(FUNCTION, after) or after >= self.stop:
                break
            pos = after
        first_call = calls[0]
        calls[0] = _moved(first_call, start=tag_start)
        last = calls[-1]
        after = self._skip_space(last.end)
        if self.text.startswith(CALL_END, after):
            calls[-1] = _moved(calls[-1], end=after + len(CALL_END))
        elif last.problem is None:
            calls[-1] = _repaired(last, f"missing {CALL_END}")
        return calls

    def read_function(self, start: int) -> XmlCall:
        """The ``<function=...>`` block at ``start``, up to its ``</function>`` (or what
        ends it when that is missing)."""
        name, pos = self._tag_name(start, FUNCTION)
        if name is None:
            line_end = self.text.find("\n", start, self.stop)
            end = self.stop if line_end == -1 else line_end
            return XmlCall(start, end, None, {}, problem="its <function=NAME> tag is not closed")
        raw: dict[str, str] = {}
        repairs: list[str] = []
        json_arguments: str | None = None
        while True:
            pos = self._skip_space(pos)
            if self.text.startswith(PARAMETER, pos):
                key, value_start = self._tag_name(pos, PARAMETER)
                if key is None:
                    end = self._after_function(pos)
                    reason = f"a <parameter=NAME> tag in {name} is not closed"
                    return XmlCall(start, end, name, {}, problem=reason)
                value, pos, how = self._value(value_start)
                if how == TOO_LONG:
                    end = self._after_function(pos)
                    return XmlCall(start, end, name, {}, problem=self.refused)
                if how == CUT_OFF:
                    # The answer ended inside this value (cut at its token limit, or
                    # stopped looping): running what arrived could run half a command.
                    reason = (
                        f"its {key!r} value is cut off where the answer ended (the answer "
                        "was probably too long): write the call again, shorter"
                    )
                    return XmlCall(start, self.stop, name, {}, problem=reason)
                if how:
                    repairs.append(how)
                if key in raw:
                    # Ambiguous, and dangerous to guess: a value (a file's content) that
                    # holds "</parameter>\n<parameter=path>" would otherwise change the
                    # path the call writes to.
                    end = self._after_function(pos)
                    reason = (
                        f"its parameter {key!r} is given twice (perhaps a value contains "
                        f"{PARAMETER_END} followed by {PARAMETER}{key}>): write the call "
                        "again with each parameter once"
                    )
                    return XmlCall(start, end, name, {}, problem=reason)
                raw[key] = value
            elif self.text.startswith(FUNCTION_END, pos):
                end = pos + len(FUNCTION_END)
                break
            elif pos >= self.stop or self.text.startswith((CALL_END, CALL_START, FUNCTION), pos):
                repairs.append(f"missing {FUNCTION_END}")
                end = pos
                break
            elif not raw and json_arguments is None and self.text.startswith(("{", "["), pos):
                # <function=read_file>{"path": "a.py"}</function>: JSON for parameters
                close = self._any_function_end.next(pos)
                end_json = self.stop if close == -1 else close
                if (refused := self.room.take(end_json - pos)) is not None:
                    end = self._after_function(end_json)
                    return XmlCall(start, end, name, {}, problem=refused)
                json_arguments = self.text[pos:end_json]
                pos = end_json
            else:
                end = self._after_function(pos)
                reason = f"text other than <parameter=NAME> tags inside <function={name}>"
                return XmlCall(start, end, name, {}, problem=reason)
        return self._decoded(start, end, name, raw, json_arguments, repairs)

    # --- values ------------------------------------------------------------------------

    def _decoded(
        self,
        start: int,
        end: int,
        name: str,
        raw: dict[str, str],
        json_arguments: str | None,
        repairs: list[str],
    ) -> XmlCall:
        if self.names is not None and name not in self.names:
            known = ", ".join(sorted(self.names))
            reason = f"there is no tool {name!r} (the tools are {known})"
            return XmlCall(start, end, name, {}, problem=reason)
        schema = self.schemas.get(name) if self.schemas is not None else None
        if json_arguments is not None:
            try:
                value, more = loads_lenient(json_arguments.strip())
            except RepairError as exc:
                return XmlCall(start, end, name, {}, problem=f"its JSON arguments are {exc}")
            if not isinstance(value, dict):
                return XmlCall(start, end, name, {}, problem="its arguments are not an object")
            notes = ("arguments written as JSON", *repairs, *more)
            return XmlCall(start, end, name, value, tuple(dict.fromkeys(notes)))
        arguments: dict[str, Any] = {}
        for key, text in raw.items():
            try:
                arguments[key], more = typed_value(key, text, _property(schema, key))
            except ValueError as exc:
                return XmlCall(start, end, name, {}, problem=str(exc))
            repairs.extend(more)
        return XmlCall(start, end, name, arguments, tuple(dict.fromkeys(repairs)))

    def _value(self, start: int) -> tuple[str, int, str | None]:
        """The raw value starting at ``start``, where reading goes on after it, and the
        repair it needed (``None``). It ends at the earliest of: its ``</parameter>``
        (one followed by another tag, not one inside the value), the next parameter
        starting a line, its function's end; else the call's end; else the end of the
        text, which means the answer was cut inside the value (:data:`CUT_OFF`)."""
        closed = self._value_end.next(start)
        following = self._next_parameter.next(start)
        function_end = self._function_end.next(start)
        candidates = [
            (closed, closed + len(PARAMETER_END), None),
            (following, following + 1, f"missing {PARAMETER_END}"),
            (function_end, function_end, f"missing {PARAMETER_END}"),
        ]
        found = [c for c in candidates if c[0] != -1]
        if not found:
            # Only the call's own end closes the value: its tags were left out. (Looked
            # for last: a value may well quote </tool_call>.)
            call_end = self._call_end.next(start)
            if call_end != -1:
                return self._sliced(start, call_end, call_end, f"missing {PARAMETER_END}")
            if self.stop >= len(self.text):
                return self._sliced(start, self.stop, self.stop, CUT_OFF)
            unended = f"missing {PARAMETER_END} at the end"
            return self._sliced(start, self.stop, self.stop, unended)
        end, resume, how = min(found, key=lambda c: c[0])
        return self._sliced(start, end, resume, how)

    def _sliced(
        self, start: int, end: int, resume: int, how: str | None
    ) -> tuple[str, int, str | None]:
        """The value ``text[start:end]`` as :meth:`_value` gives it, unless it is longer
        than a call may be, or than the reply's calls have left (:data:`TOO_LONG`, why in
        :attr:`refused`, nothing copied)."""
        if (refused := self.room.take(end - start)) is not None:
            self.refused = refused
            return "", resume, TOO_LONG
        return self.text[start:end], resume, how

    def _ends_value(self, pos: int) -> bool:
        after = self._skip_space(pos + len(PARAMETER_END))
        return after >= self.stop or self.text.startswith(
            (PARAMETER, FUNCTION_END, CALL_END, CALL_START, FUNCTION), after
        )

    def _ends_function(self, pos: int) -> bool:
        """A ``</function>`` that ends its function even though a value is still open:
        one starting a line, or followed by nothing but the call's end."""
        if pos > 0 and self.text[pos - 1] == "\n":
            return True
        after = self._skip_space(pos + len(FUNCTION_END))
        return after >= self.stop or self.text.startswith((CALL_END, CALL_START, FUNCTION), after)

    def _after_function(self, pos: int) -> int:
        close = self._any_function_end.next(pos)
        return self.stop if close == -1 else close + len(FUNCTION_END)

    # --- small readers -----------------------------------------------------------------

    def _tag_name(self, pos: int, tag: str) -> tuple[str | None, int]:
        """The name in ``<tag=NAME>`` at ``pos`` and where the text after it starts;
        ``None`` when the tag does not close on its line or the name is no name."""
        begin = pos + len(tag)
        limit = min(self.stop, begin + NAME_LIMIT + 2)
        close = self.text.find(">", begin, limit)
        if close == -1:
            return None, begin
        name = self.text[begin:close].strip().strip("\"'")
        if not TAG_NAME.fullmatch(name):
            return None, begin
        return name, close + 1

    def _skip_space(self, pos: int) -> int:
        text, stop = self.text, self.stop
        while pos < stop and text[pos] in _WHITESPACE:
            pos += 1
        return pos


# --- typing -------------------------------------------------------------------------------


def typed_value(
    name: str, raw: str, schema: Mapping[str, Any] | None
) -> tuple[Any, tuple[str, ...]]:
    """A parameter's raw text as the type ``schema`` gives it (a string without one),
    and the repairs it needed. Raises ``ValueError`` saying why, for the model, when
    the text is not of that type."""
    text, repairs = unframe(raw)
    kinds = _kinds(schema)
    if not kinds or "string" in kinds:
        if "null" in kinds and text.strip() == "null":
            return None, repairs
        return text, repairs
    value = text.strip()
    if value.lower() in ("null", "none"):
        return None, repairs
    for kind in kinds:
        try:
            return _convert(kind, value), repairs
        except (ValueError, RepairError):
            continue
    wanted = " or ".join(_DESCRIBED.get(kind, kind) for kind in kinds)
    shown = value if len(value) <= 60 else value[:60] + "…"
    raise ValueError(f"parameter {name!r} must be {wanted}, not {shown!r}")


def unframe(raw: str) -> tuple[str, tuple[str, ...]]:
    """A value without the line breaks that frame it: the one after the opening tag
    and the one before the closing tag (whose indentation, when every line of the value
    shares it, is taken off each line)."""
    head = raw.lstrip(" \t")
    body = raw
    if head.startswith("\n"):
        body = head[1:]
    elif head.startswith("\r\n"):
        body = head[2:]
    tail = body.rstrip(" \t")
    indent = body[len(tail) :]
    if not tail.endswith("\n"):
        return body, ()
    tail = tail[:-1].removesuffix("\r")
    lines = tail.split("\n")
    if indent and all(line.startswith(indent) or not line.strip() for line in lines):
        return "\n".join(line[len(indent) :] for line in lines), ("indented values",)
    return tail, ()


_DESCRIBED = {
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "object": "a JSON object",
    "array": "a JSON array",
}
_KIND_NAMES = {
    "integer": "integer",
    "int": "integer",
    "number": "number",
    "float": "number",
    "double": "number",
    "boolean": "boolean",
    "bool": "boolean",
    "object": "object",
    "dict": "object",
    "array": "array",
    "list": "array",
    "string": "string",
    "str": "string",
    "null": "null",
}


def _property(schema: Mapping[str, Any] | None, key: str) -> Mapping[str, Any] | None:
    if schema is None:
        return None
    properties = schema.get("properties")
    if not isinstance(properties, Mapping):
        return None
    prop = properties.get(key)
    return prop if isinstance(prop, Mapping) else None


def _kinds(schema: Mapping[str, Any] | None) -> list[str]:
    """The types a property allows, in order (empty: any, so a string)."""
    if schema is None:
        return []
    declared = schema.get("type")
    names: list[Any] = list(declared) if isinstance(declared, list) else [declared]
    for key in ("anyOf", "oneOf"):
        branches = schema.get(key)
        if isinstance(branches, list):
            names += [b.get("type") for b in branches if isinstance(b, Mapping)]
    kinds = [_KIND_NAMES.get(str(n).strip().lower(), "string") for n in names if n is not None]
    kinds = list(dict.fromkeys(kinds))
    non_null = [k for k in kinds if k != "null"]
    return kinds if non_null else []


def _convert(kind: str, value: str) -> Any:
    if kind == "integer":
        if len(value) <= _NUMBER_LIMIT and _INTEGER.fullmatch(value):
            return int(value)
        number = _number(value)
        if number.is_integer():  # 3.0
            return int(number)
        raise ValueError(value)
    if kind == "number":
        if len(value) <= _NUMBER_LIMIT and _INTEGER.fullmatch(value):
            return int(value)
        return _number(value)
    if kind == "boolean":
        if value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise ValueError(value)
    if kind in ("object", "array"):
        decoded, _ = loads_lenient(value)
        if isinstance(decoded, dict if kind == "object" else list):
            return decoded
        raise ValueError(value)
    if kind == "null":
        raise ValueError(value)
    return value


def _number(value: str) -> float:
    if len(value) > _NUMBER_LIMIT or not _NUMBER.fullmatch(value):
        raise ValueError(value)
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(value)
    return number


def _moved(call: XmlCall, *, start: int | None = None, end: int | None = None) -> XmlCall:
    return XmlCall(
        call.start if start is None else start,
        call.end if end is None else end,
        call.name,
        call.arguments,
        call.repairs,
        call.problem,
    )


def _repaired(call: XmlCall, how: str) -> XmlCall:
    return XmlCall(call.start, call.end, call.name, call.arguments, (*call.repairs, how))
