"""``/memory`` and ``/init``: the project notes the model reads with every message.

A ``QWEN.md`` at the workspace root (else an ``AGENTS.md``) is added to the system
prompt (:func:`~qwen_dev_cli.agent.prompt.read_project_notes`). ``/memory`` shows which
one is in use and what it says; ``/memory add TEXT`` appends a line to it (a new
``QWEN.md`` when there is none: a new one next to an ``AGENTS.md`` would hide it from
the model, so the one in use is the one added to). ``/init`` asks the model to write a
``QWEN.md`` for the project, through its tools and so through approval.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Group, RenderableType
from rich.text import Text

from ..agent.prompt import PROJECT_FILES, PROJECT_NOTES_CAP, read_project_notes
from ..tools import ToolError, Workspace
from .safe_text import printable

#: The notes file ``/init`` writes and ``/memory add`` starts.
NOTES_FILE = PROJECT_FILES[0]
#: Lines of the notes ``/memory`` shows.
SHOWN_LINES = 60

INIT_PROMPT = f"""\
Please write a {NOTES_FILE} file at the root of this project: notes for an AI coding \
assistant that will work here later and reads this file before every request. Look \
around first (list the folders, read the README, the build and test configuration, a \
few central source files). Then write, briefly and concretely: what the project is; \
how to set it up, build, run the tests and the linters (exact commands); how the code \
is organised (the main folders and modules, one line each); the conventions to \
follow (style, naming, tests, commits). Keep it under about 80 lines; do not invent \
what you did not see. Create it with the file-writing tool."""


def notes_in_use(root: Path) -> str | None:
    """The name of the notes file the model reads, if there is one."""
    try:
        notes = read_project_notes(Workspace(root))
    except OSError:
        return None
    return notes.name if notes is not None else None


def show_notes(root: Path) -> RenderableType:
    """``/memory``: the notes file in use, its size, and its first lines."""
    notes = read_project_notes(Workspace(root))
    if notes is None:
        return Text(
            f"no project notes: a {' or '.join(PROJECT_FILES)} at the workspace root is "
            "read with every message (/init asks the model to write one; "
            "/memory add TEXT starts one)",
            "qd.muted",
        )
    lines = notes.text.splitlines()
    head = f"project notes in use: {notes.name} ({len(notes.text):,} characters)"
    if notes.truncated:
        head += f", cut at {PROJECT_NOTES_CAP:,} characters"
    parts: list[RenderableType] = [Text(head, "qd.title")]
    for other in (n for n in PROJECT_FILES if n != notes.name and (root / n).is_file()):
        parts.append(Text(f"({other} is not read: only one notes file is)", "qd.muted"))
    shown = lines[:SHOWN_LINES]
    parts.append(Text(printable("\n".join(shown)) or "(empty)"))
    if len(lines) > len(shown):
        parts.append(Text(f"[{len(lines) - len(shown)} more lines]", "qd.muted"))
    return Group(*parts)


def add_note(root: Path, note: str) -> Text:
    """``/memory add TEXT``: ``- TEXT`` appended to the notes file in use (else a new
    ``QWEN.md``); what was done, in a line."""
    workspace = Workspace(root)
    in_use = read_project_notes(workspace)
    name = in_use.name if in_use is not None else NOTES_FILE
    try:
        path = workspace.resolve(name)
    except ToolError as exc:
        return Text(f"/memory add: {exc}", "qd.error")
    if path.exists() and not path.is_file():
        return Text(f"/memory add: {name} is not a regular file", "qd.error")
    if path.name != name and path.suffix.lower() != ".md":
        # A link (a cloned repository's, or the model's) may lead anywhere inside the
        # workspace: in a home folder, to ~/.bashrc. Notes are Markdown; nothing else is
        # appended to.
        return Text(
            f"/memory add: {name} links to {path.name}, which is not a Markdown file: "
            "nothing was written",
            "qd.error",
        )
    line = "- " + " ".join(note.split())
    try:
        existing = path.read_bytes() if path.exists() else b""
        separator = "" if not existing or existing.endswith(b"\n") else "\n"
        with path.open("a", encoding="utf-8") as file:
            file.write(f"{separator}{line}\n")
    except OSError as exc:
        return Text(f"/memory add: cannot write {name}: {exc.strerror or exc}", "qd.error")
    verb = "added to" if existing else "created"
    return Text(f"{verb} {name}: {printable(line)}", "qd.muted")
