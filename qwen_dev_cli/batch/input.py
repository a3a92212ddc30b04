"""The input of ``qwen-dev batch``: JSONL prompts, validated whole before anything is sent.

Each line is ``{"id": "...", "prompt": "..."}`` or ``{"id": "...", "messages": [...]}``;
blank lines are skipped, other keys ignored (never sent). :func:`scan` reads the file
once and keeps only a digest of each id (to refuse duplicates); the prompts are read again, one at
a time, when they are sent (:func:`read_prompts`), so memory does not grow with the
input. Stdin is spooled to a private temporary file first, as it cannot be read twice.

A hostile file can only send prompts: a line is capped at :data:`MAX_LINE_BYTES`,
invalid UTF-8 and JSON nested too deeply are refused with the line they are on, and
messages are rebuilt from their ``role`` and ``content`` alone.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

#: Longest accepted line, newline excluded.
MAX_LINE_BYTES = 10 * 1024 * 1024
MAX_ID_CHARS = 1000
ROLES = ("system", "user", "assistant")
#: Problems listed before the rest are only counted.
MAX_PROBLEMS = 10

Message = dict[str, str]


class InputError(Exception):
    """The input cannot be used: what is wrong, and where (``file:line``)."""


@dataclass(frozen=True)
class Prompt:
    """One validated input line.

    Args:
        id: the caller's id, unique in the input.
        messages: ``{role, content}`` messages, exactly as they will be sent.
        digest: a hash of the messages: the checkpoint remembers it, so a resume can
            tell whether an answered id still asks the same thing.
        line: 1-based line number in the input.
    """

    id: str
    messages: list[Message]
    digest: str
    line: int


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` (1-based) of ``count``: the ids whose SHA-256 falls in it. The
    hash is stable across machines and Python versions, so N machines given the same
    input and ``--shard 1/N`` ... ``N/N`` split it exactly."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"K/N"`` with 1 <= K <= N; :class:`InputError` otherwise."""
        left, slash, right = text.strip().partition("/")
        try:
            index, count = int(left), int(right)
        except ValueError:
            index = count = 0
        if not slash or count < 1 or not 1 <= index <= count:
            raise InputError(
                f"--shard takes K/N with 1 <= K <= N (e.g. 2/4), not {text!r}"
            ) from None
        return cls(index, count)

    def __contains__(self, prompt_id: object) -> bool:
        return isinstance(prompt_id, str) and shard_of(prompt_id, self.count) == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def shard_of(prompt_id: str, count: int) -> int:
    """The 1-based shard of ``count`` that ``prompt_id`` belongs to."""
    digest = hashlib.sha256(prompt_id.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") % count + 1


@dataclass(frozen=True)
class InputFile:
    """The file prompts are read from, and the name messages give it.

    Args:
        path: a readable regular file (stdin's spool for ``-``).
        name: how errors name it: the path as given, or ``<stdin>``.
        spooled: whether ``path`` is a temporary copy of stdin, removed by :meth:`close`.
    """

    path: Path
    name: str
    spooled: bool = False

    @classmethod
    def open(cls, argument: str, stdin: IO[bytes] | None) -> InputFile:
        """The input ``argument`` names; ``-`` spools ``stdin`` to a private temporary
        file (mode 0600), so it can be read twice."""
        if argument == "-":
            if stdin is None or stdin.isatty():
                raise InputError("INPUT is -, but stdin is a terminal: pipe the prompts in")
            fd, name = tempfile.mkstemp(prefix="qwen-dev-batch-", suffix=".jsonl")
            try:
                with os.fdopen(fd, "wb") as spool:
                    shutil.copyfileobj(stdin, spool, 1024 * 1024)
            except BaseException:
                os.unlink(name)
                raise
            return cls(Path(name), "<stdin>", spooled=True)
        path = Path(argument)
        try:
            if not path.is_file():
                what = "a folder" if path.is_dir() else "not a regular file"
                if not path.exists():
                    what = "not found"
                raise InputError(f"cannot read {argument}: {what}")
            with path.open("rb"):
                pass
        except OSError as exc:
            raise InputError(f"cannot read {argument}: {exc.strerror or exc}") from exc
        return cls(path, argument)

    def close(self) -> None:
        if self.spooled:
            self.path.unlink(missing_ok=True)


def _id_digest(prompt_id: str) -> bytes:
    return hashlib.blake2b(prompt_id.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def scan(source: InputFile, visit: Callable[[Prompt], None]) -> int:
    """Validate every line of ``source``, calling ``visit`` with each valid prompt.
    Returns the number of prompts.

    Raises:
        InputError: listing the first :data:`MAX_PROBLEMS` problems (``file:line: what``)
            and how many more there were.
    """
    problems: list[str] = []
    # Keyed by a 16-byte digest of the id, not the id: 200,000 ids of 1,000 characters
    # held whole took 261 MB; a collision (2**-128 a pair) is not a practical worry.
    first_line: dict[bytes, int] = {}
    count = 0
    for number, raw in _lines(source):
        where = f"{source.name}:{number}"
        try:
            prompt = parse_line(raw, number)
        except InputError as exc:
            problems.append(f"{where}: {exc}")
            continue
        if prompt is None:
            continue
        count += 1
        seen = first_line.setdefault(_id_digest(prompt.id), number)
        if seen != number:
            problems.append(f"{where}: duplicate id {_quoted(prompt.id)} (first on line {seen})")
            continue
        visit(prompt)
    if problems:
        shown = problems[:MAX_PROBLEMS]
        more = len(problems) - len(shown)
        if more:
            shown.append(f"... and {more} more")
        raise InputError("invalid input, nothing was sent:\n  " + "\n  ".join(shown))
    return count


def read_prompts(source: InputFile, wanted: Callable[[Prompt], bool]) -> Iterator[Prompt]:
    """The prompts of ``source`` that ``wanted`` accepts, read lazily in input order.

    The file was validated by :func:`scan`; a line that no longer parses means it
    changed since, which raises :class:`InputError` rather than sending something else.
    """
    for number, raw in _lines(source):
        try:
            prompt = parse_line(raw, number)
        except InputError as exc:
            raise InputError(f"{source.name}:{number} changed while the batch ran: {exc}") from None
        if prompt is not None and wanted(prompt):
            yield prompt


def parse_line(raw: bytes | None, number: int) -> Prompt | None:
    """The prompt on one line (``None`` for a blank line); ``raw`` is ``None`` for a
    line longer than :data:`MAX_LINE_BYTES`. Raises :class:`InputError` saying what
    is wrong."""
    if raw is None:
        raise InputError(f"line longer than {MAX_LINE_BYTES // (1024 * 1024)} MiB")
    if not raw.strip():
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"not valid UTF-8 (byte {exc.start + 1})") from None
    if number == 1:
        text = text.removeprefix("\ufeff")  # a byte-order mark some editors write
    try:
        record = json.loads(text)
    except RecursionError:
        raise InputError("JSON nested too deeply") from None
    except ValueError as exc:
        message = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
        column = f" (column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else ""
        raise InputError(f"not valid JSON: {message}{column}") from None
    if not isinstance(record, dict):
        raise InputError(
            f'expected an object like {{"id": "...", "prompt": "..."}}, not {_kind(record)}'
        )
    prompt_id = _id_of(record)
    messages = _messages_of(record)
    return Prompt(prompt_id, messages, digest_of(messages), number)


def digest_of(messages: list[Message]) -> str:
    """A short stable hash of what a prompt asks: equal for ``{"prompt": "x"}`` and
    ``{"messages": [{"role": "user", "content": "x"}]}``."""
    canonical = json.dumps(messages, ensure_ascii=True, separators=(",", ":"), sort_keys=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()[:16]


def _id_of(record: dict[str, Any]) -> str:
    if "id" not in record:
        raise InputError('missing "id"')
    value = record["id"]
    if not isinstance(value, str):
        raise InputError(f'"id" must be a string, not {_kind(value)}')
    if not value:
        raise InputError('"id" is empty')
    if len(value) > MAX_ID_CHARS:
        raise InputError(f'"id" is longer than {MAX_ID_CHARS} characters')
    return value


def _messages_of(record: dict[str, Any]) -> list[Message]:
    has_prompt, has_messages = "prompt" in record, "messages" in record
    if has_prompt and has_messages:
        raise InputError('has both "prompt" and "messages": give one')
    if has_prompt:
        prompt = record["prompt"]
        if not isinstance(prompt, str):
            raise InputError(f'"prompt" must be a string, not {_kind(prompt)}')
        if not prompt.strip():
            raise InputError('"prompt" is empty')
        return [{"role": "user", "content": prompt}]
    if not has_messages:
        raise InputError('needs "prompt" or "messages"')
    messages = record["messages"]
    if not isinstance(messages, list) or not messages:
        what = "empty" if messages == [] else _kind(messages)
        raise InputError(f'"messages" must be a list of {{role, content}} objects, not {what}')
    return [_message(item, index) for index, item in enumerate(messages)]


def _message(item: Any, index: int) -> Message:
    where = f'"messages"[{index}]'
    if not isinstance(item, dict):
        raise InputError(f"{where} must be a {{role, content}} object, not {_kind(item)}")
    extra = sorted(set(item) - {"role", "content"})
    if extra:
        raise InputError(f"{where} has {_quoted(extra[0])}: a message is {{role, content}}")
    role, content = item.get("role"), item.get("content")
    if role not in ROLES:
        shown = _quoted(role) if isinstance(role, str) else _kind(role)
        raise InputError(f'{where}: "role" must be one of {", ".join(ROLES)}, not {shown}')
    if not isinstance(content, str):
        raise InputError(f'{where}: "content" must be a string, not {_kind(content)}')
    return {"role": role, "content": content}


def _lines(source: InputFile) -> Iterator[tuple[int, bytes | None]]:
    """``(number, line without its newline)``; ``None`` for a line over the cap (its
    rest is skipped without being held in memory)."""
    with source.path.open("rb") as handle:
        number = 0
        while True:
            raw = handle.readline(MAX_LINE_BYTES + 1)
            if not raw:
                return
            number += 1
            if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                while raw and not raw.endswith(b"\n"):
                    raw = handle.readline(1024 * 1024)
                yield number, None
                continue
            yield number, raw.rstrip(b"\r\n")


def _kind(value: object) -> str:
    """The JSON name of a value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _quoted(text: str) -> str:
    """``text`` as a JSON string, clipped: safe to print whatever it holds."""
    shown = json.dumps(text)
    return shown if len(shown) <= 80 else shown[:76] + '..."'
