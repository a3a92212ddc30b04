"""The REPL's current conversation and the session file behind it.

A session is created on the first message, not at start-up, so opening and leaving
the REPL leaves no empty session behind. ``/new`` closes it; ``/resume`` and
``--continue`` open an earlier one (locked, so no other process writes to it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    from ..core import Message
    from ..session.store import Session, SessionInfo, SessionStore


class Conversation:
    """The open session, if any.

    Args:
        store: the session store.
        cwd: the working directory recorded in new sessions.
    """

    def __init__(self, store: SessionStore, cwd: Path) -> None:
        self.store = store
        self.cwd = cwd
        self.session: Session | None = None

    @property
    def id(self) -> str | None:
        return self.session.id if self.session else None

    @property
    def messages(self) -> list[Message]:
        """The conversation as the model sees it: compacted, if it was (a copy: a turn
        must not see its own additions)."""
        return list(self.session.view) if self.session else []

    def ensure(self) -> Session:
        """The open session, created now if there is none."""
        if self.session is None:
            self.session = self.store.create(self.cwd)
        return self.session

    def new(self) -> None:
        self.close()

    def resume(self, session_id: str, *, at_turn: int | None = None) -> Session:
        """Open ``session_id`` (a prefix will do) in place of the current one; with
        ``at_turn``, as it was before that turn (``--at N``).

        Raises:
            SessionError: no such session, an ambiguous prefix, or it is locked
                (``SessionLocked``) by another process. The current one stays open.
        """
        if self.session is not None and self.store.path_of(session_id) == self.session.path:
            return self.session
        session = self.store.resume(session_id, at_turn=at_turn)
        self.close()
        self.session = session
        return session

    def latest_here(self) -> SessionInfo | None:
        """The latest chat of this folder (``--continue``), not a ``qwen-dev ask``."""
        return self.store.latest(self.cwd, kind="chat")

    def list(self) -> list[SessionInfo]:
        return self.store.list()

    def close(self) -> None:
        if self.session is not None:
            session, self.session = self.session, None
            session.close()
