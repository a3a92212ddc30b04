"""``@path`` mentions: workspace paths a message refers to.

The completer offers paths after ``@``; on sending, each mentioned file that exists
inside the workspace is attached to the message, so the model sees what the user
pointed at. Nothing outside the workspace root is listed or read.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

#: Folders never worth offering.
SKIPPED_DIRS = frozenset({"__pycache__", "node_modules"})
#: Most entries offered for one folder.
MAX_ENTRIES = 200
#: Most bytes of one attached file.
MAX_ATTACH_BYTES = 64 * 1024

MENTION = re.compile(r"(?:^|(?<=\s))@([^\s@]+)")


@dataclass(frozen=True)
class PathEntry:
    """A path offered after ``@``: relative to the root, folders end with ``/``."""

    path: str
    is_dir: bool


def inside(root: Path, candidate: Path) -> bool:
    try:
        candidate.resolve().relative_to(root.resolve())
    except (ValueError, OSError):
        return False
    return True


def list_paths(root: Path, partial: str) -> list[PathEntry]:
    """Workspace entries whose path starts with ``partial`` (``src/ap`` -> ``src/app.py``).

    Hidden entries are offered only once the name being typed starts with a dot."""
    folder, _, prefix = partial.rpartition("/")
    base = root / folder if folder else root
    if not inside(root, base) or not base.is_dir():
        return []
    entries: list[PathEntry] = []
    try:
        scanned = sorted(os.scandir(base), key=lambda entry: entry.name)
    except OSError:
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


def attach_mentions(text: str, root: Path) -> tuple[str, list[str]]:
    """The message with each mentioned workspace file appended as a fenced block, and
    the paths attached. Folders, missing files and paths outside the root are left as
    written."""
    attached: list[str] = []
    blocks: list[str] = []
    for match in MENTION.finditer(text):
        name = match.group(1).rstrip(".,;:!?)")
        path = root / name
        if name in attached or not inside(root, path) or not path.is_file():
            continue
        content = _read(path)
        if content is None:
            continue
        attached.append(name)
        blocks.append(f"File `{name}`:\n```\n{content}\n```")
    if not blocks:
        return text, []
    return text + "\n\n" + "\n\n".join(blocks), attached


def _read(path: Path) -> str | None:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_ATTACH_BYTES + 1)
    except OSError:
        return None
    if b"\0" in data[:8192]:
        return None
    text = data[:MAX_ATTACH_BYTES].decode("utf-8", errors="replace").rstrip("\n")
    if len(data) > MAX_ATTACH_BYTES:
        text += f"\n[... cut at {MAX_ATTACH_BYTES // 1024} KiB]"
    return text
