"""The tools that change files: ``write_file`` and ``edit_file``.

They only *plan* the change (new content and its diff, and the bytes the file had);
the agent applies an approved plan through the
:class:`~qwen_dev_cli.tools.changes.ChangeLog`, which writes it only if the file still
has those bytes, so that it can be undone and no edit made meanwhile is lost.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

from .base import Arguments, ReadPlan, Tool, ToolContext, ToolError, WritePlan, schema
from .diff import diff_stats, unified_diff
from .read import read_regular_bytes, text_of

#: Candidate locations listed when an edit's search text is not found.
CANDIDATES = 3


def writable(args: Arguments, ctx: ToolContext) -> tuple[Path, str]:
    """The resolved file a write may change, and its display path.

    Git's own files are off limits: a line in ``.git/config`` or a hook is code that
    git runs later, unseen."""
    raw = args.string("path", "file_path", "file", allow_empty=False)
    path = ctx.workspace.resolve(raw)
    display = ctx.workspace.display(path)
    # Lower-cased: on a case-insensitive file system ".GIT/hooks" is the same folder.
    if ".git" in (part.lower() for part in Path(display).parts):
        raise ToolError(f"{display}: tools do not write inside .git; use git commands")
    if path.is_dir():
        raise ToolError(f"{display} is a directory")
    return path, display


def plan_write(
    path: Path,
    display: str,
    before: str | None,
    after: str,
    verb: str = "write",
    *,
    original: bytes | None,
) -> WritePlan:
    """The plan replacing ``original`` (shown as ``before``) with ``after``."""
    diff = unified_diff(before, after, display)
    added, removed = diff_stats(diff)
    verb = "create" if before is None else verb
    return WritePlan(
        path=path,
        display=display,
        content=after,
        existed=before is not None,
        diff=diff,
        summary=f"{verb} {display} (+{added} -{removed})",
        original=original,
    )


def snapshot(path: Path, display: str) -> bytes | None:
    """A file's bytes now, ``None`` when it does not exist; a ToolError for anything a
    tool must not replace (a FIFO, a device, a file too large to show)."""
    if not os.path.lexists(path):
        return None
    return read_regular_bytes(path, display)


def _shown(original: bytes | None, display: str) -> str | None:
    if original is None:
        return None
    try:
        text, _ = text_of(original, display)
    except ToolError:
        return "(binary content)\n"
    return text


def _plan_write_file(args: Arguments, ctx: ToolContext) -> WritePlan | ReadPlan:
    path, display = writable(args, ctx)
    content = args.string("content", "text")
    original = snapshot(path, display)
    before = _shown(original, display)
    if before == content:
        return ReadPlan(lambda: f"{display} already has exactly this content; nothing written")
    return plan_write(path, display, before, content, original=original)


WRITE_FILE = Tool(
    name="write_file",
    kind="write",
    description=(
        "Create a file, or replace a file's whole content, inside the workspace. Missing "
        "folders are created. For changes to part of an existing file use edit_file."
    ),
    parameters=schema(
        {
            "path": {"type": "string", "description": "File path, relative to the workspace."},
            "content": {"type": "string", "description": "The complete new content."},
        },
        ["path", "content"],
    ),
    planner=_plan_write_file,
)


def _plan_edit_file(args: Arguments, ctx: ToolContext) -> WritePlan:
    path, display = writable(args, ctx)
    old = args.string("old_string", "search", "old_str", "old_text", "old")
    new = args.string("new_string", "replace", "new_str", "new_text", "new")
    if not old:
        raise ToolError("edit_file: old_string is empty; to create a file use write_file")
    if old == new:
        raise ToolError("edit_file: old_string and new_string are the same; nothing to change")
    original = snapshot(path, display)
    if original is None:
        raise ToolError(f"{display} does not exist")
    before, replaced = text_of(original, display)
    if replaced:
        raise ToolError(f"{display} is not valid UTF-8; edit_file would corrupt it")
    after = apply_edit(before, old, new, display)
    return plan_write(path, display, before, after, verb="edit", original=original)


def apply_edit(text: str, old: str, new: str, display: str) -> str:
    """``text`` with the single occurrence of ``old`` replaced, or a ToolError that says
    where the model should look instead."""
    crlf = "\r\n" in text and "\r" not in old
    work = text.replace("\r\n", "\n") if crlf else text
    count = work.count(old)
    if count == 0:
        raise ToolError(not_found_message(work, old, display))
    if count > 1:
        lines = ", ".join(str(n) for n in occurrence_lines(work, old)[:10])
        raise ToolError(
            f"edit_file: old_string occurs {count} times in {display} (at lines {lines}); "
            "include more surrounding lines so that it matches exactly once"
        )
    result = work.replace(old, new, 1)
    return result.replace("\n", "\r\n") if crlf else result


def occurrence_lines(text: str, needle: str) -> list[int]:
    lines = []
    start = text.find(needle)
    while start != -1:
        lines.append(text.count("\n", 0, start) + 1)
        start = text.find(needle, start + 1)
    return lines


def not_found_message(text: str, old: str, display: str) -> str:
    head = f"edit_file: old_string was not found in {display}."
    lines = text.splitlines()
    loose = _whitespace_insensitive_matches(lines, old)
    if loose:
        where = ", ".join(str(n) for n in loose[:5])
        return (
            f"{head} It matches at line {where} if whitespace is ignored: copy the exact "
            "indentation and spacing from the file (read_file shows it)."
        )
    candidates = _similar_lines(lines, old)
    if candidates:
        shown = "\n".join(f"  line {n}: {line.strip()[:200]}" for n, line in candidates)
        return f"{head} The closest lines are:\n{shown}\nRead the file and copy the text exactly."
    return f"{head} Read the file first and copy the text to replace exactly."


def _whitespace_insensitive_matches(lines: list[str], old: str) -> list[int]:
    wanted = [line.strip() for line in old.strip("\n").splitlines()]
    if not wanted or not any(wanted):
        return []
    stripped = [line.strip() for line in lines]
    size = len(wanted)
    return [i + 1 for i in range(len(lines) - size + 1) if stripped[i : i + size] == wanted]


def _similar_lines(lines: list[str], old: str) -> list[tuple[int, str]]:
    first = next((line.strip() for line in old.splitlines() if line.strip()), "")
    if not first:
        return []
    scored = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        ratio = difflib.SequenceMatcher(None, first, line.strip()).ratio()
        if ratio >= 0.6:
            scored.append((ratio, number, line))
    scored.sort(key=lambda item: (-item[0], item[1]))
    return sorted((number, line) for _, number, line in scored[:CANDIDATES])


EDIT_FILE = Tool(
    name="edit_file",
    kind="write",
    description=(
        "Replace one exact piece of text in a file. old_string must match the file "
        "exactly (whitespace and indentation included) and occur exactly once; include "
        "a few surrounding lines to make it unique. Read the file first."
    ),
    parameters=schema(
        {
            "path": {"type": "string", "description": "File path, relative to the workspace."},
            "old_string": {"type": "string", "description": "The exact text to replace."},
            "new_string": {"type": "string", "description": "The text to put in its place."},
        },
        ["path", "old_string", "new_string"],
    ),
    planner=_plan_edit_file,
)
