"""A project's own ``.mcp.json`` (Claude Code's format), which a cloned repository can
carry: every server in it is a command qwen-dev would run, so it starts nothing until
the user approves that exact file.

:func:`read_project` reads the file once (its bytes are what is hashed and what is
parsed, so the file approved is the file run). :class:`TrustFile` remembers each
answer under ``QWEN_DEV_HOME`` for the file's path and the SHA-256 of its content: a
changed file is asked about again. A project server never has ``trust``, whatever the
file says (a cloned file cannot make its own tools run unasked), and never takes the
name of one of the user's servers.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from .expand import variables_of
from .imports import MAX_IMPORT_BYTES, McpImportError, read_servers

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from ..config.mcp_servers import McpServerSettings

#: The file, in the workspace.
PROJECT_FILE: Final = ".mcp.json"


@dataclass(frozen=True)
class ProjectServers:
    """A project's ``.mcp.json``, read once.

    Args:
        path: the file (resolved).
        digest: the SHA-256 of its content.
        servers: its servers, untrusted, none named like a user's server.
        notes: what the user should hear (renamed or left-out servers and keys).
    """

    path: Path
    digest: str
    servers: tuple[McpServerSettings, ...]
    notes: tuple[str, ...] = ()

    def commands(self) -> list[tuple[str, str]]:
        """``(name, what it would run or reach)`` of each enabled server, for the
        question."""
        shown: list[tuple[str, str]] = []
        for server in self.servers:
            if not server.enabled:
                continue
            if server.command is not None:
                what = " ".join([server.command, *server.args])
            else:
                what = f"{server.url} ({server.kind})"
            texts = [*server.args, *server.env.values(), *server.headers.values()]
            names = variables_of([*texts, server.url or ""])
            if names:  # what it would take from the environment, said before it starts
                what += f"; given {', '.join('$' + name for name in names)}"
            shown.append((server.name, what))
        return shown


def read_project(workspace: Path, user_servers: Sequence[str] = ()) -> ProjectServers | None:
    """The workspace's ``.mcp.json``, or ``None`` without one. Raises
    :class:`McpImportError` (naming the file and the key) for a malformed one."""
    from ..config.errors import ConfigError, Where
    from ..config.layers import parse_mcp

    path = workspace / PROJECT_FILE
    try:
        with path.open("rb") as file:
            content = file.read(MAX_IMPORT_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise McpImportError(f"{path}: cannot read it: {exc}") from None
    tables, notes = read_servers(path, content)
    kept: dict[str, dict[str, Any]] = {}
    for name, table in tables.items():
        if name in user_servers:
            notes.append(f"{name!r} left out: your own configuration has a server of that name")
            continue
        kept[name] = table
    try:
        parsed = parse_mcp({"servers": kept}, Where(str(path), "mcpServers"))
    except ConfigError as exc:
        raise McpImportError(str(exc)) from None
    servers = tuple(replace(server, trust=False) for server in parsed.values())
    digest = hashlib.sha256(content).hexdigest()
    return ProjectServers(path.resolve(), digest, servers, tuple(notes))


class TrustFile:
    """The user's answers about project files: ``{path: {"sha256", "approved"}}`` in one
    JSON file, written atomically, readable by the user only.

    Args:
        path: the file (``Home.mcp_trust``).
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def decision(self, project: ProjectServers) -> bool | None:
        """The answer given for this exact file (path and content), else ``None``."""
        entry = self._read().get(str(project.path))
        if not isinstance(entry, dict) or entry.get("sha256") != project.digest:
            return None
        approved = entry.get("approved")
        return approved if isinstance(approved, bool) else None

    def remember(self, project: ProjectServers, approved: bool) -> None:
        entries = self._read()
        entries[str(project.path)] = {"sha256": project.digest, "approved": approved}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".mcp-trust.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(entries, out, indent=1, sort_keys=True)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}


async def project_servers(
    workspace: Path,
    trust_file: Path,
    user_servers: Sequence[str],
    *,
    approve: Callable[[ProjectServers], Awaitable[bool | None]] | bool,
    warn: Callable[[str], None],
) -> tuple[McpServerSettings, ...]:
    """The servers of the workspace's ``.mcp.json`` that may start.

    Args:
        workspace: where the file is looked for.
        trust_file: where answers are remembered (``Home.mcp_trust``).
        user_servers: the names of the user's own servers (a project's cannot take one).
        approve: ``True``: start them (``--trust-project-mcp``); ``False``: start none
            (``ask``, ``-p``, ``batch``, ``doctor``), said through ``warn``; a callable:
            asks the user (the REPL) unless this exact file was answered before, and the
            answer is remembered (``None``, no answer: not started, not remembered).
        warn: what the user is told (a malformed file, notes, servers not started).
    """
    try:
        project = read_project(workspace, user_servers)
    except McpImportError as exc:
        warn(f"{exc}; no server of it is started")
        return ()
    if project is None or not project.commands():
        return ()
    if approve is False:
        # (Only a headless turn takes the flag: doctor and batch must not send the
        # user looking for it on themselves.)
        warn(
            f"{project.path}: its MCP servers are not started here; they start once "
            "approved in the interactive assistant, or for one headless turn with "
            "`qwen-dev ask --trust-project-mcp` (or `-p ... --trust-project-mcp`)"
        )
        return ()
    if approve is not True:
        trust = TrustFile(trust_file)
        decision = trust.decision(project)
        if decision is None:
            decision = await approve(project)
            if decision is not None:
                trust.remember(project, decision)
        if not decision:
            return ()
    for note in project.notes:
        warn(f"{project.path}: {note}")
    return project.servers
