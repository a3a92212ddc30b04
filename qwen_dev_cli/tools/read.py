"""The tools that look without touching: ``read_file`` and ``list_dir``.

Only regular files are read. A FIFO, a device or a socket is refused from its ``stat``
before anything opens it (opening a FIFO waits for a writer, reading ``/dev/zero``
never ends, and a thread stuck there ignores Ctrl-C); the open itself is non-blocking
as a second guard against a file swapped in between.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from .base import Arguments, ReadPlan, Tool, ToolContext, ToolError, schema

#: Characters of a file returned by one ``read_file`` call.
READ_CAP = 50_000
#: Files larger than this are not loaded at all.
MAX_FILE_BYTES = 20 * 1024 * 1024
#: Entries listed by one ``list_dir`` call.
LIST_CAP = 1000
_SNIFF = 8192


def looks_binary(head: bytes) -> bool:
    """Whether the first bytes of a file say it is not text (a NUL byte, as git decides)."""
    return b"\0" in head[:_SNIFF]


def decode_text(data: bytes) -> tuple[str, bool]:
    """The text of ``data`` and whether it had to replace undecodable bytes."""
    try:
        return data.decode("utf-8"), False
    except UnicodeDecodeError:
        return data.decode("utf-8", errors="replace"), True


def special_kind(mode: int) -> str | None:
    """What a file of this ``st_mode`` is when it is neither a regular file nor a
    directory (``"a FIFO (named pipe)"``), else ``None``."""
    for test, name in _SPECIAL_KINDS:
        if test(mode):
            return name
    return None


_SPECIAL_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def refuse_special(mode: int, display: str) -> None:
    """A ToolError when ``mode`` is not a regular file's (or a directory's)."""
    kind = special_kind(mode)
    if kind is not None:
        raise ToolError(
            f"{display} is {kind}, not a regular file; tools do not read or write it "
            "(reading could wait forever)"
        )


def read_regular_bytes(
    path: Path, display: str, limit: int = MAX_FILE_BYTES, *, head: bool = False
) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes, or a ToolError; never
    opens a FIFO, device or socket, so it cannot hang. ``head``: a larger file is not
    refused; its first ``limit`` bytes (and one more, to tell it was longer) are read."""
    try:
        info = os.stat(path)
    except FileNotFoundError as exc:
        raise ToolError(f"{display} does not exist") from exc
    except OSError as exc:
        raise ToolError(f"cannot read {display}: {exc.strerror or exc}") from exc
    if stat.S_ISDIR(info.st_mode):
        raise ToolError(f"{display} is a directory; use list_dir")
    refuse_special(info.st_mode, display)
    if info.st_size > limit and not head:
        raise ToolError(
            f"{display} is {info.st_size} bytes, too large to read; use grep, or "
            "run_command with head"
        )
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise ToolError(f"cannot read {display}: {exc.strerror or exc}") from exc
    with os.fdopen(fd, "rb") as handle:
        opened = os.fstat(handle.fileno())
        if not stat.S_ISREG(opened.st_mode):  # swapped for something else since the stat
            refuse_special(opened.st_mode, display)
            raise ToolError(f"{display} is not a regular file")
        try:
            data = _read_at_most(handle, limit + 1)
        except OSError as exc:
            raise ToolError(f"cannot read {display}: {exc.strerror or exc}") from exc
    if len(data) > limit and not head:  # it grew since the stat
        raise ToolError(f"{display} is over {limit} bytes, too large to read")
    return data


def _read_at_most(handle: BinaryIO, size: int) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while total < size:
        chunk = handle.read(min(_CHUNK, size - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)


_CHUNK = 1 << 20


def read_text_file(path: Path, display: str) -> tuple[str, bool]:
    """A workspace text file's content (and whether bytes were replaced), or a ToolError."""
    return text_of(read_regular_bytes(path, display), display)


def text_of(data: bytes, display: str) -> tuple[str, bool]:
    """The text of a file's bytes (and whether bytes were replaced); a ToolError when
    they are binary."""
    if looks_binary(data):
        raise ToolError(f"{display} is a binary file ({len(data)} bytes); refusing to read it")
    return decode_text(data)


def _plan_read_file(args: Arguments, ctx: ToolContext) -> ReadPlan:
    raw = args.string("path", "file_path", "file", allow_empty=False)
    start = args.integer("start_line", minimum=1)
    end = args.integer("end_line", minimum=1)
    path = ctx.workspace.resolve(raw)
    display = ctx.workspace.display(path)
    if start is not None and end is not None and end < start:
        raise ToolError(f"read_file: end_line {end} is before start_line {start}")
    return ReadPlan(lambda: read_file(path, display, start, end))


def read_file(path: Path, display: str, start: int | None = None, end: int | None = None) -> str:
    """The model's view of a file: the lines asked for, capped, with notes."""
    text, replaced = read_text_file(path, display)
    lines = text.splitlines(keepends=True)
    total = len(lines)
    if total == 0:
        return f"({display} is empty)"
    first = start or 1
    last = min(end or total, total)
    if first > total:
        raise ToolError(f"{display} has {total} lines; start_line {first} is past the end")
    shown: list[str] = []
    size = 0
    cut_line = False
    for number in range(first, last + 1):
        line = lines[number - 1]
        if size + len(line) > READ_CAP:
            if not shown:  # one enormous line (minified code): its start is better than nothing
                shown.append(line[:READ_CAP] + "\n")
                cut_line = True
            break
        shown.append(line)
        size += len(line)
    body = "".join(shown)
    notes = []
    shown_last = first + len(shown) - 1
    if cut_line:
        notes.append(f"[truncated: line {first} alone is longer than {READ_CAP} characters]")
    elif shown_last < last:
        notes.append(
            f"[truncated at {READ_CAP} characters: showing lines {first}-{shown_last} of "
            f"{total}; call read_file with start_line={shown_last + 1} to read on]"
        )
    elif first > 1 or last < total:
        notes.append(f"[lines {first}-{last} of {total}]")
    if replaced:
        notes.append("[not valid UTF-8: undecodable bytes are shown as \ufffd]")
    if notes:
        body = body + ("" if body.endswith("\n") else "\n") + "\n".join(notes)
    return body


READ_FILE = Tool(
    name="read_file",
    kind="read",
    description=(
        "Read a text file in the workspace. Optionally only lines start_line..end_line "
        f"(1-based, inclusive). Long files are cut at {READ_CAP} characters with a note "
        "saying how to read on. Binary files are refused."
    ),
    parameters=schema(
        {
            "path": {"type": "string", "description": "File path, relative to the workspace."},
            "start_line": {"type": "integer", "description": "First line to read (1-based)."},
            "end_line": {"type": "integer", "description": "Last line to read (inclusive)."},
        },
        ["path"],
    ),
    planner=_plan_read_file,
)


def _plan_list_dir(args: Arguments, ctx: ToolContext) -> ReadPlan:
    raw = args.string("path", "directory", "dir", default=".")
    path = ctx.workspace.resolve(raw or ".")
    display = ctx.workspace.display(path)
    return ReadPlan(lambda: list_dir(path, display))


def list_dir(path: Path, display: str) -> str:
    """One entry per line, directories marked with ``/``, files with their size."""
    if not path.exists():
        raise ToolError(f"{display} does not exist")
    if not path.is_dir():
        raise ToolError(f"{display} is a file, not a directory; use read_file")
    try:
        entries = sorted(os.scandir(path), key=lambda e: (not e.is_dir(), e.name))
    except OSError as exc:
        raise ToolError(f"cannot list {display}: {exc.strerror or exc}") from exc
    if not entries:
        return f"({display} is empty)"
    lines = [_entry_line(entry) for entry in entries[:LIST_CAP]]
    if len(entries) > LIST_CAP:
        lines.append(f"[{len(entries) - LIST_CAP} more entries not shown]")
    return "\n".join(lines)


def _entry_line(entry: os.DirEntry[str]) -> str:
    if entry.is_symlink():
        try:
            return f"{entry.name} -> {os.readlink(entry.path)}"
        except OSError:
            return f"{entry.name} -> ?"
    if entry.is_dir():
        return f"{entry.name}/"
    try:
        return f"{entry.name}  ({entry.stat().st_size} bytes)"
    except OSError:
        return entry.name


LIST_DIR = Tool(
    name="list_dir",
    kind="read",
    description="List a directory of the workspace: subdirectories end with '/', files "
    "show their size.",
    parameters=schema(
        {"path": {"type": "string", "description": "Directory, relative to the workspace."}},
        [],
    ),
    planner=_plan_list_dir,
)
