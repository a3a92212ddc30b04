"""Finding things in the workspace: ``glob`` (names) and ``grep`` (contents).

Both walk the tree themselves so that they can prune: version-control folders, caches
and dependency folders (``node_modules``, virtual environments) are not entered unless
the search starts inside one. Symbolic links to directories are not followed, a
linked file is only read when it resolves inside the workspace, and only regular files
are read (a FIFO or a device is skipped unopened). grep's patterns run
on RE2 (:mod:`.regex`), in time linear in the text: no pattern can freeze the process.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

from .base import Arguments, ReadPlan, Tool, ToolContext, ToolError, schema
from .read import looks_binary, read_regular_bytes
from .regex import Matcher, compile_pattern
from .workspace import Workspace

SKIP_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        "node_modules",
        ".venv",
        "venv",
        "__pycache__",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".tox",
    }
)
GLOB_CAP = 500
GREP_CAP = 200
GREP_LINE_CAP = 300
GREP_MAX_FILE_BYTES = 5 * 1024 * 1024


def glob_to_regex(pattern: str) -> Matcher:
    """A regex matching relative POSIX paths the way ``**/*.py`` globs do (on RE2: a
    glob of many stars would backtrack for hours in Python's ``re``)."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and (close := pattern.find("]", i + 2)) != -1:
            body = pattern[i + 1 : close].replace("\\", "\\\\")
            out.append("[^" + body[1:] + "]" if body.startswith("!") else "[" + body + "]")
            i = close + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return compile_pattern("(?s)" + "".join(out) + r"\z")


def walk(start: Path, workspace: Workspace) -> Iterator[tuple[Path, list[str], list[str]]]:
    """``os.walk`` from ``start``, pruning :data:`SKIP_DIRS` and the user's private
    places, sorted, links not followed."""
    for top, dirs, files in os.walk(start):
        folder = Path(top)
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        private = workspace.private_names(folder)
        if private:
            dirs[:] = [d for d in dirs if d not in private]
            files = [f for f in files if f not in private]
        yield folder, dirs, sorted(files)


def _start(args: Arguments, ctx: ToolContext) -> tuple[Path, str]:
    raw = args.string("path", "directory", default=".") or "."
    path = ctx.workspace.resolve(raw)
    if not path.exists():
        raise ToolError(f"{ctx.workspace.display(path)} does not exist")
    return path, ctx.workspace.display(path)


# --- glob -------------------------------------------------------------------------------


def _plan_glob(args: Arguments, ctx: ToolContext) -> ReadPlan:
    pattern = args.string("pattern", allow_empty=False)
    if pattern.startswith("/") or ".." in Path(pattern).parts:
        raise ToolError("glob: the pattern must be relative (use 'path' to choose a folder)")
    start, _ = _start(args, ctx)
    return ReadPlan(lambda: glob_files(start, pattern, ctx.workspace))


def glob_files(start: Path, pattern: str, workspace: Workspace) -> str:
    """Paths below ``start`` matching ``pattern``, relative to the workspace, sorted."""
    if not start.is_dir():
        raise ToolError(f"{workspace.display(start)} is not a directory")
    regex = glob_to_regex(pattern)
    found: list[str] = []
    total = 0
    for folder, dirs, files in walk(start, workspace):
        for name, is_dir in [*((d, True) for d in dirs), *((f, False) for f in files)]:
            relative = (folder / name).relative_to(start).as_posix()
            if regex.match(relative):
                total += 1
                if len(found) < GLOB_CAP:
                    found.append(workspace.display(folder / name) + ("/" if is_dir else ""))
    if not found:
        return f"no paths match {pattern!r}"
    found.sort()
    if total > len(found):
        found.append(f"[{total - len(found)} more matches not shown; narrow the pattern]")
    return "\n".join(found)


GLOB = Tool(
    name="glob",
    kind="read",
    description=(
        "Find files by name pattern, e.g. '**/*.py' or 'src/*.ts' ('**' spans folders). "
        "Skips .git, caches, virtual environments and node_modules."
    ),
    parameters=schema(
        {
            "pattern": {"type": "string", "description": "Glob pattern, relative."},
            "path": {"type": "string", "description": "Folder to search (default: root)."},
        },
        ["pattern"],
    ),
    planner=_plan_glob,
)


# --- grep -------------------------------------------------------------------------------


def _plan_grep(args: Arguments, ctx: ToolContext) -> ReadPlan:
    pattern = args.string("pattern", "regex", "query", allow_empty=False)
    regex = compile_pattern(pattern, ignore_case=args.boolean("ignore_case"))
    include = args.optional_string("glob", "include")
    start, _ = _start(args, ctx)
    return ReadPlan(lambda: grep(start, regex, ctx.workspace, include))


def _files(start: Path, include: str | None, workspace: Workspace) -> Iterator[Path]:
    if start.is_file():
        yield start
        return
    name_only = include is not None and "/" not in include
    matcher = glob_to_regex(include) if include else None
    for folder, _, files in walk(start, workspace):
        for name in files:
            path = folder / name
            target = name if name_only else path.relative_to(start).as_posix()
            if matcher is None or matcher.match(target):
                yield path


def grep(start: Path, regex: Matcher, workspace: Workspace, include: str | None) -> str:
    """``path:line: text`` for each matching line, at most :data:`GREP_CAP` of them."""
    hits: list[str] = []
    total = 0
    for path in _files(start, include, workspace):
        lines = _text_lines(path, workspace)
        if lines is None:
            continue
        for number, line in enumerate(lines, 1):
            if regex.search(line):
                total += 1
                if len(hits) < GREP_CAP:
                    text = line if len(line) <= GREP_LINE_CAP else line[:GREP_LINE_CAP] + "…"
                    hits.append(f"{workspace.display(path)}:{number}: {text}")
    if not hits:
        return f"no matches for {regex.pattern!r}"
    if total > len(hits):
        hits.append(f"[{total - len(hits)} more matches not shown; narrow the search]")
    return "\n".join(hits)


def _text_lines(path: Path, workspace: Workspace) -> list[str] | None:
    """The lines of a text file inside the workspace; None for anything else."""
    try:
        if path.is_symlink():
            target = path.resolve()
            if not workspace.contains(target) or workspace.is_private(target):
                return None
        # FIFOs, devices and sockets are refused unopened: one would hang the search.
        data = read_regular_bytes(path, workspace.display(path), GREP_MAX_FILE_BYTES)
    except (OSError, RuntimeError, ToolError):
        return None
    if looks_binary(data):
        return None
    return data.decode("utf-8", errors="replace").splitlines()


GREP = Tool(
    name="grep",
    kind="read",
    description=(
        "Search file contents with a regular expression (RE2 syntax: like Python's, "
        "but no backreferences or lookaround); prints path:line: text. "
        f"At most {GREP_CAP} matches. Skips binary files, .git, caches, virtual "
        "environments and node_modules. 'glob' limits the files searched (e.g. '*.py')."
    ),
    parameters=schema(
        {
            "pattern": {"type": "string", "description": "Regular expression."},
            "path": {"type": "string", "description": "File or folder (default: root)."},
            "glob": {"type": "string", "description": "Only files matching this glob."},
            "ignore_case": {"type": "boolean", "description": "Case-insensitive search."},
        },
        ["pattern"],
    ),
    planner=_plan_grep,
)
