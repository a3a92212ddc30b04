"""Sessions on disk: one append-only JSONL file per conversation.

``QWEN_DEV_HOME/sessions/<id>.jsonl`` holds a header line, then one event per line,
each appended, flushed and fsynced as the message it records completes, so a killed
process loses at most the message it was writing. Files are 0600 in a 0700 folder.
A torn last line is ignored on load; a tool call left without its result (the
process died while it ran) is closed on resume, by the rule the agent applies too
(:mod:`.repair`). An open session holds an exclusive lock on its file, so two REPLs
never write the same one.

A session is a ``chat`` (the REPL) or an ``ask`` (one ``qwen-dev ask``), recorded in its
header (files from before the kind was recorded count as chats): ``--continue`` resumes
the latest chat, not a script's last question.

Compaction (fitting a long conversation to the model's context window) never removes a
message from the file: it appends a ``compaction`` event holding the conversation the
model sees from then on (``view``: a summary and the recent messages) with its counts.
Loading replays the file: every message event joins both the full history
(``messages``: ``sessions show``, ``export``) and the view; a compaction event replaces
the view. A file without compaction events has a view equal to its history. A ``rewind`` event
(``/rewind``, ``--resume ID --at N``) replaces the view the same way, with the
conversation as it was before a turn (:mod:`.turns`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

from .. import __version__
from .jsonl import write_json_line
from .reading import count_and_first, parsed_lines
from .repair import close_unanswered, unanswered_at_end

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import TypeAlias

    from ..core import Message

    #: Tells the user something once (stderr in ``ask``, the console in the REPL).
    Warn: TypeAlias = Callable[[str], None]

FORMAT_VERSION = 1
_TITLE_CHARS = 80

SessionKind = Literal["chat", "ask"]

#: What a session id given by the user (``--session-id``) may be: a safe file name.
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class SessionError(Exception):
    """A session that does not exist, is ambiguous or cannot be read."""


class SessionLocked(SessionError):
    """Another process has this session open."""


@dataclass(frozen=True)
class SessionInfo:
    """What ``sessions list`` shows of a session."""

    id: str
    path: Path
    cwd: str
    created: float
    updated: float
    title: str
    message_count: int
    kind: SessionKind = "chat"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "cwd": self.cwd,
            "created": self.created,
            "updated": self.updated,
            "title": self.title,
            "messages": self.message_count,
        }


@dataclass
class LoadedSession:
    """A session read from disk: its header fields, messages and all events.

    ``messages`` is every message ever recorded; ``view`` what the model sees when the
    session continues (the latest compaction's view and the messages after it)."""

    info: SessionInfo
    messages: list[Message]
    events: list[dict[str, Any]] = field(default_factory=list)
    torn_lines: int = 0
    #: Whether the file ends with a newline (no half-written line at its end).
    ends_cleanly: bool = True
    view: list[Message] = field(default_factory=list)
    #: How many compaction events the file holds.
    compactions: int = 0


class Session:
    """An open, locked session. Use :meth:`SessionStore.create` or :meth:`SessionStore.resume`.

    ``messages`` is the whole conversation so far, ``view`` what the model sees of it
    (the same until a compaction); :meth:`append` adds to both and to the file.
    """

    def __init__(
        self,
        session_id: str,
        path: Path,
        cwd: str,
        handle: IO[str] | None,
        *,
        warn: Warn | None = None,
    ) -> None:
        self.id = session_id
        self.path = path
        self.cwd = cwd
        self.messages: list[Message] = []
        self.view: list[Message] = []
        self._handle: IO[str] | None = handle
        self._warn = warn
        #: Why the file cannot be written (a full disk...): the session goes on in memory.
        self.unsaved: str | None = None
        #: The turns the file holds (``len(turn_marks(events, live=False))``), counted
        #: as events are read and written: a checkpoint's turn number without reading
        #: the file again (a huge answer in it was held twice).
        self.turns = 0
        self._turn_open = False  # a turn_start waits for its user message

    def append(self, message: Message, **meta: Any) -> None:
        """Record one completed message (``interrupted=True`` for an answer cut short)."""
        self.messages.append(message)
        self.view.append(message)
        self._write({"type": "message", "ts": time.time(), "message": message, **meta})

    def compacted(self, view: list[Message], **meta: Any) -> None:
        """From now on the model sees ``view`` instead of every message so far (which
        stay in the file); ``meta``: the compaction's counts."""
        self.view = list(view)
        self._write({"type": "compaction", "ts": time.time(), **meta, "view": self.view})

    def rewound(self, view: list[Message], turn: int) -> None:
        """The conversation goes back to before ``turn``: from now on the model sees
        ``view`` (what it saw then); every message stays in the file."""
        self.view = list(view)
        self._write({"type": "rewind", "ts": time.time(), "turn": turn, "view": self.view})

    def note(self, kind: str, **data: Any) -> None:
        """Record something that is not a message (a turn's provider and usage...)."""
        self._write({"type": kind, "ts": time.time(), **data})

    def close(self) -> None:
        if self._handle is not None:
            handle, self._handle = self._handle, None
            handle.close()  # closing the descriptor releases the lock

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _write(self, event: dict[str, Any]) -> None:
        if self.unsaved is not None:
            return  # already told: the conversation goes on, unsaved
        if self._handle is None:
            raise SessionError(f"session {self.id} is closed")
        try:
            write_json_line(self._handle, event)
            self._handle.flush()
            os.fsync(self._handle.fileno())
        except OSError as exc:
            self.fail(exc)
            return
        self.count_turn(event)

    def count_turn(self, event: dict[str, Any]) -> None:
        """Count ``event`` (read or written) in :attr:`turns` as ``turn_marks`` would."""
        kind = event.get("type")
        if kind == "turn_start":
            self.turns += 1
            self._turn_open = True
        elif kind == "message" and isinstance(event.get("message"), dict):
            message = event["message"]
            if message.get("role") == "user" and isinstance(message.get("content"), str):
                self.turns += 0 if self._turn_open else 1
            self._turn_open = False

    def fail(self, exc: OSError) -> None:
        """The file cannot be written: say so once, and go on in memory. An answer is
        never lost to a full disk; only its record is."""
        self.unsaved = exc.strerror or str(exc)
        handle, self._handle = self._handle, None
        if handle is not None:
            with contextlib.suppress(OSError):
                handle.close()
        if self._warn is not None:
            self._warn(
                f"cannot save the session to {self.path} ({self.unsaved}); "
                "the conversation goes on, unsaved"
            )


class SessionStore:
    """All sessions under ``root`` (``QWEN_DEV_HOME/sessions``)."""

    def __init__(self, root: Path, *, warn: Warn | None = None) -> None:
        self.root = root
        self.warn = warn

    def create(
        self, cwd: Path, *, kind: SessionKind = "chat", session_id: str | None = None
    ) -> Session:
        """Start a new session for the working directory ``cwd``. When its file cannot
        be made (a read-only or full disk), the session lives in memory only.

        ``session_id`` (``--session-id``): the new session's id, instead of a made one;
        :class:`SessionError` if it is not a safe file name (:func:`check_new_id`) or a
        session of that id exists."""
        if session_id is not None:
            self.check_new_id(session_id)
        else:
            session_id = time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)
        path = self.root / f"{session_id}.jsonl"
        try:
            self._ensure_root()
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
            handle = _locked(os.fdopen(fd, "a", encoding="utf-8", errors="backslashreplace"), path)
        except FileExistsError as exc:
            raise SessionError(f"a session {session_id!r} exists already") from exc
        except OSError as exc:
            session = Session(session_id, path, str(cwd), None, warn=self.warn)
            session.fail(exc)
            return session
        session = Session(session_id, path, str(cwd), handle, warn=self.warn)
        header = {
            "type": "header",
            "version": FORMAT_VERSION,
            "id": session_id,
            "kind": kind,
            "cwd": str(cwd),
            "created": time.time(),
            "qwen_dev": __version__,
        }
        session._write(header)
        return session

    def check_new_id(self, session_id: str) -> None:
        """:class:`SessionError` unless ``session_id`` can name a new session: letters,
        digits, ``.``, ``_`` and ``-`` (a UUID, say), not starting with ``.`` or ``-``,
        at most 128 characters, and no session of that id yet."""
        if not _SAFE_ID.fullmatch(session_id):
            raise SessionError(
                f"not a usable session id: {session_id!r} (letters, digits, '.', '_' and "
                "'-', at most 128, starting with a letter or digit)"
            )
        if (self.root / f"{session_id}.jsonl").exists():
            raise SessionError(f"a session {session_id!r} exists already")

    def resume(self, session_id: str, *, at_turn: int | None = None) -> Session:
        """Open an existing session (an unambiguous id prefix will do) to continue it;
        with ``at_turn`` (``--at N``), as it was before that turn (SessionError if the
        session has no such turn)."""
        path = self._path_of(session_id)
        handle = _locked(_open_append(path), path)
        try:
            loaded = _load(path)
            earlier = None if at_turn is None else _view_before(loaded, at_turn)
        except BaseException:
            handle.close()
            raise
        if not loaded.ends_cleanly:
            # End the torn line, or the next event would be glued to it and lost.
            handle.write("\n")
            handle.flush()
        session = Session(loaded.info.id, path, loaded.info.cwd, handle, warn=self.warn)
        for event in loaded.events:
            session.count_turn(event)
        session.messages = loaded.messages
        session.view = loaded.view
        if at_turn is not None and earlier is not None:
            session.rewound(earlier, at_turn)
        for closing in unanswered_at_end(loaded.view):
            session.append(closing, closed_on_resume=True)
        # A gap further up (a file of an older version) cannot be filled in its place in
        # an append-only file: it is closed again, the same way, on every load.
        session.view = close_unanswered(session.view)
        return session

    def load(self, session_id: str) -> LoadedSession:
        """Read a session without opening it for writing (``sessions show``)."""
        return _load(self._path_of(session_id))

    def list(self) -> list[SessionInfo]:
        """Every readable session, most recently updated first."""
        infos = []
        for path in self._files():
            with contextlib.suppress(SessionError, OSError):
                infos.append(_summary(path))
        return sorted(infos, key=lambda info: info.updated, reverse=True)

    def latest(self, cwd: Path, *, kind: SessionKind | None = None) -> SessionInfo | None:
        """The most recently updated session of ``cwd`` (of that ``kind``, if given):
        ``--continue``."""
        here = str(cwd)
        return next(
            (
                info
                for info in self.list()
                if info.cwd == here and (kind is None or info.kind == kind)
            ),
            None,
        )

    def delete(self, session_id: str) -> None:
        path = self._path_of(session_id)
        handle = _locked(_open_append(path), path)
        try:
            path.unlink()
        finally:
            handle.close()

    def prune(self, retention_days: int, *, now: float | None = None) -> int:
        """Delete sessions not written to for ``retention_days``; returns how many went.
        Judged by file modification time (every append touches it), so pruning does not
        read any session. Sessions open in another process are left alone."""
        horizon = (time.time() if now is None else now) - retention_days * 86400
        removed = 0
        for path in list(self._files()):
            with contextlib.suppress(SessionError, OSError):
                if path.stat().st_mtime < horizon:
                    self.delete(path.stem)
                    removed += 1
        return removed

    # --- internals ------------------------------------------------------------------

    def _ensure_root(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            self.root.chmod(0o700)

    def _files(self) -> Iterator[Path]:
        if self.root.is_dir():
            yield from self.root.glob("*.jsonl")

    def path_of(self, session_id: str) -> Path:
        """The file of ``session_id`` (an unambiguous prefix will do), or SessionError."""
        return self._path_of(session_id)

    def _path_of(self, session_id: str) -> Path:
        if not session_id or "/" in session_id or session_id.startswith("."):
            raise SessionError(f"not a session id: {session_id!r}")
        exact = self.root / f"{session_id}.jsonl"
        if exact.is_file():
            return exact
        matches = sorted(p for p in self._files() if p.stem.startswith(session_id))
        if not matches:
            raise SessionError(f"no session {session_id!r} (see `qwen-dev sessions list`)")
        if len(matches) > 1:
            names = ", ".join(p.stem for p in matches[:5])
            raise SessionError(f"{session_id!r} matches several sessions: {names}")
        return matches[0]


def _open_append(path: Path) -> IO[str]:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    return os.fdopen(fd, "a", encoding="utf-8", errors="backslashreplace")


def _locked(handle: IO[str], path: Path) -> IO[str]:
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        handle.close()
        raise SessionLocked(f"session {path.stem} is open in another qwen-dev") from exc
    return handle


def _load(path: Path) -> LoadedSession:
    events: list[dict[str, Any]] = []
    failed: list[int] = []
    number, last_empty = -1, False
    try:
        with path.open("rb") as handle:
            # A line at a time, a huge message held once (session/reading.py).
            for number, (status, event) in enumerate(parsed_lines(handle)):
                last_empty = status == "empty"
                if status == "bad":
                    failed.append(number)
                elif status == "ok" and isinstance(event, dict):
                    events.append(event)
    except OSError as exc:
        raise SessionError(f"cannot read {path}: {exc.strerror}") from exc
    # The last line may be torn by a kill mid-write; anything else is damage, skipped
    # rather than losing the whole conversation.
    torn = sum(1 for at in failed if at >= number - 1)
    ends_cleanly = number > 0 and last_empty  # the last line break ends the file
    if not events or events[0].get("type") != "header":
        raise SessionError(f"{path} is not a qwen-dev session")
    header = events[0]
    messages: list[Message] = []
    view: list[Message] = []
    compactions = 0
    for event in events[1:]:
        kind = event.get("type")
        if kind == "message" and isinstance(event.get("message"), dict):
            messages.append(event["message"])
            view.append(event["message"])
        elif kind == "compaction" and isinstance(event.get("view"), list):
            view = [m for m in event["view"] if isinstance(m, dict)]
            compactions += 1
        elif kind == "rewind" and isinstance(event.get("view"), list):
            view = [m for m in event["view"] if isinstance(m, dict)]
    created = float(header.get("created", 0.0))
    updated = max((float(e.get("ts", created)) for e in events[1:]), default=created)
    info = SessionInfo(
        id=str(header.get("id", path.stem)),
        path=path,
        cwd=str(header.get("cwd", "")),
        created=created,
        updated=updated,
        title=_title(messages),
        message_count=len(messages),
        kind=_kind(header),
    )
    return LoadedSession(
        info,
        messages,
        events,
        torn,
        ends_cleanly=ends_cleanly,
        view=view,
        compactions=compactions,
    )


def _view_before(loaded: LoadedSession, turn: int) -> list[Message]:
    from .turns import turn_marks, view_before

    view = view_before(loaded.events, turn)
    if view is None:
        count = len(turn_marks(loaded.events, live=False))
        have = f"turns 1 to {count}" if count > 1 else ("turn 1" if count else "no turns")
        raise SessionError(f"session {loaded.info.id} has {have}, not a turn {turn}")
    return view


_MESSAGE_EVENT = b'"type": "message"'
_USER_MESSAGE = (_MESSAGE_EVENT, b'"role": "user"')


def _summary(path: Path) -> SessionInfo:
    """A session's listing without parsing every line: the header, the first user
    message (the title), a count of message events and the file's modification time
    (every append touches it). ``list()`` runs on start-up and on completion."""
    # The header, the first user message's line, and a count of the rest as it passes
    # (session/reading.py): a huge answer is never held.
    with path.open("rb") as handle:
        first = handle.readline()
        count, title = count_and_first(handle, _MESSAGE_EVENT, _USER_MESSAGE, _title_of)
    try:
        header = json.loads(first)
    except ValueError as exc:
        raise SessionError(f"{path} is not a qwen-dev session") from exc
    if not isinstance(header, dict) or header.get("type") != "header":
        raise SessionError(f"{path} is not a qwen-dev session")
    created = float(header.get("created", 0.0))
    return SessionInfo(
        id=str(header.get("id", path.stem)),
        path=path,
        cwd=str(header.get("cwd", "")),
        created=created,
        updated=max(created, path.stat().st_mtime),
        title=title or "(empty)",
        message_count=first.count(_MESSAGE_EVENT) + count,
        kind=_kind(header),
    )


def _title_of(line: bytes) -> str | None:
    """The title a user message's event line gives, ``None`` if it is unreadable."""
    with contextlib.suppress(ValueError, AttributeError):
        return _title([json.loads(line)["message"]])
    return None


def _kind(header: dict[str, Any]) -> SessionKind:
    return "ask" if header.get("kind") == "ask" else "chat"


#: Where the REPL's ``@path`` attachments start in a user message (``ui/mentions.py``
#: appends them as ``File `name`:`` and a fenced block): not the user's words.
_ATTACHMENTS = re.compile(r"\n\nFile `[^`\n]+`:\n```\n")


def _title(messages: list[Message]) -> str:
    for message in messages:
        content = message.get("content")
        if message.get("role") == "user" and isinstance(content, str) and content.strip():
            attached = _ATTACHMENTS.search(content)
            typed = content[: attached.start()] if attached else content
            line = " ".join(typed.split())
            return line if len(line) <= _TITLE_CHARS else line[: _TITLE_CHARS - 1] + "…"
    return "(empty)"
