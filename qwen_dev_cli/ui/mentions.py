"""``@path`` mentions: workspace paths a message refers to.

The completer offers paths after ``@``; on sending (in the REPL and in ``qwen-dev ask``),
each mentioned file inside the workspace is attached to the message, so the model sees
what the user pointed at. Confinement is :meth:`Workspace.resolve`'s, the one rule the
tools follow too: nothing outside the workspace root is listed or read.

Whatever is not attached as written is said (:attr:`Attachments.warnings`): a path
outside the workspace, missing, a folder, a binary file, or one too large for the
model's context window (cut to what fits). A file taking a large share of the window
is attached with a warning: the conversation will be compacted sooner.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..core.tokens import estimate_text_tokens
from ..tools import OutsideWorkspace, ToolError, Workspace
from ..tools.read import looks_binary

if TYPE_CHECKING:
    from ..agent.context import ContextBudget

#: Folders never worth offering.
SKIPPED_DIRS = frozenset({"__pycache__", "node_modules"})
#: Most entries offered for one folder.
MAX_ENTRIES = 200
#: Most bytes of one attached file, whatever the window.
MAX_ATTACH_BYTES = 64 * 1024
#: A file above this share of the context window is attached with a warning.
WARN_SHARE = 0.25
#: Attached files together take at most this share of the largest prompt sent without
#: compacting (``ContextBudget.prompt_limit``); the rest is for the conversation.
ROOM_SHARE = 0.5
#: Less room than this left for a file: it is not attached rather than cut to a stub.
MIN_ATTACH_TOKENS = 256

MENTION = re.compile(r"(?:^|(?<=\s))@([^\s@]+)")


@dataclass(frozen=True)
class PathEntry:
    """A path offered after ``@``: relative to the root, folders end with ``/``."""

    path: str
    is_dir: bool


@dataclass(frozen=True)
class Attachments:
    """What :func:`attach_mentions` made of a message.

    Args:
        text: the message, each attached file appended as a fenced block.
        attached: the paths attached, as mentioned.
        warnings: one line for each mention not attached as written (for the user).
    """

    text: str
    attached: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


def list_paths(root: Path, partial: str) -> list[PathEntry]:
    """Workspace entries whose path starts with ``partial`` (``src/ap`` -> ``src/app.py``).

    Hidden entries are offered only once the name being typed starts with a dot."""
    folder, _, prefix = partial.rpartition("/")
    try:
        # Names shown to the user as they type, nothing sent: no private places to
        # look up on each key (attaching checks them).
        workspace = Workspace(root, private=())
        base = workspace.resolve(folder) if folder else workspace.root
    except (ToolError, OSError):
        return []
    entries: list[PathEntry] = []
    try:
        scanned = sorted(os.scandir(base), key=lambda entry: entry.name)
    except OSError:  # not a folder, or unreadable
        return []
    for entry in scanned:
        name = entry.name
        if not name.startswith(prefix) or name in SKIPPED_DIRS:
            continue
        if name.startswith(".") and not prefix.startswith("."):
            continue
        is_dir = entry.is_dir()
        shown = f"{folder}/{name}" if folder else name
        entries.append(PathEntry(shown + ("/" if is_dir else ""), is_dir))
        if len(entries) >= MAX_ENTRIES:
            break
    return entries


def attach_mentions(text: str, root: Path, *, budget: ContextBudget | None = None) -> Attachments:
    """The message with each mentioned workspace file appended as a fenced block.

    ``budget``: the model's context window; without it, files are only capped at
    :data:`MAX_ATTACH_BYTES`. Mentions that are not attached stay in the text as
    written, and each gets a warning."""
    try:
        workspace = Workspace(root)
    except (ToolError, OSError):
        return Attachments(text)
    room = None if budget is None else _room(budget)
    attached: list[str] = []
    blocks: list[str] = []
    warnings: list[str] = []
    seen: set[str] = set()
    for match in MENTION.finditer(text):
        name = match.group(1).rstrip(".,;:!?)")
        if not name or name in seen:
            continue
        seen.add(name)
        content, problem = _content(workspace, name)
        if content is None:
            warnings.append(f"@{name}: {problem}; not attached")
            continue
        note = f"@{name}: {problem}" if problem else None
        if budget is not None and room is not None:
            content, fitted = _fit(name, content, room, budget)
            note = fitted or note  # cut to fit the window says more than the byte cap
            if content is not None:
                room -= estimate_text_tokens(content)
        if note:
            warnings.append(note)
        if content is None:
            continue
        attached.append(name)
        blocks.append(f"File `{name}`:\n```\n{content}\n```")
    if not blocks:
        return Attachments(text, (), tuple(warnings))
    return Attachments(text + "\n\n" + "\n\n".join(blocks), tuple(attached), tuple(warnings))


def _content(workspace: Workspace, name: str) -> tuple[str | None, str | None]:
    """The text of the file ``name`` names, and what to tell about it (or why it has none)."""
    try:
        path = workspace.resolve(name)
    except OutsideWorkspace:
        return None, f"outside the workspace {workspace.root}"
    except ToolError as exc:
        return None, str(exc)
    if not path.exists():
        return None, "no such file in the workspace"
    if path.is_dir():
        return None, "a folder (mention the files in it)"
    if not path.is_file():  # a FIFO or a device: reading could block or never end
        return None, "not a regular file"
    try:
        data = _read_regular(path, MAX_ATTACH_BYTES + 1)
    except OSError as exc:
        return None, f"cannot read it ({exc.strerror or exc})"
    if data is None:  # swapped for a FIFO or a link since the check above
        return None, "not a regular file"
    if looks_binary(data):
        return None, "looks binary"
    text = data[:MAX_ATTACH_BYTES].decode("utf-8", errors="replace").rstrip("\n")
    if len(data) > MAX_ATTACH_BYTES:
        cap = MAX_ATTACH_BYTES // 1024
        return f"{text}\n[... cut at {cap} KiB; read_file shows the rest]", (
            f"larger than {cap} KiB: only its first {cap} KiB are attached"
        )
    return text, None


def _fit(
    name: str, content: str, room: int, budget: ContextBudget
) -> tuple[str | None, str | None]:
    """``content`` within the ``room`` (tokens) attachments have left, and a warning when
    it was cut, left out, or takes a large share of the window."""
    tokens = estimate_text_tokens(content)
    window = budget.describe()
    if tokens <= room:
        if tokens > budget.window * WARN_SHARE:
            share = round(100 * tokens / budget.window)
            return content, (
                f"@{name} is ~{tokens:,} tokens, {share}% of {window}: the conversation "
                "will be compacted sooner"
            )
        return content, None
    allowed = f"attached files may take ~{_room(budget):,} tokens of {window}"
    if room < MIN_ATTACH_TOKENS:
        return None, (
            f"@{name} is ~{tokens:,} tokens; {allowed}, and the files before it took them; "
            "not attached"
        )
    # The estimate is proportional to length: cut at the same proportion.
    kept = content[: len(content) * room // tokens]
    cut = f"{kept}\n[... cut here: the rest does not fit the context window; read_file shows it]"
    return cut, (
        f"@{name} is ~{tokens:,} tokens; {allowed}: only its first {len(kept):,} "
        "characters are attached"
    )


def _room(budget: ContextBudget) -> int:
    """Tokens attached files may take in all."""
    return max(0, int(budget.prompt_limit * ROOM_SHARE))


def _read_regular(path: Path, limit: int) -> bytes | None:
    """Up to ``limit`` bytes of ``path`` if, once opened, it is a regular file (``None``
    if not): opened without following a link and without blocking, so a file swapped
    for a FIFO after it was checked cannot hang the prompt."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags)
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            return None
        return handle.read(limit)
