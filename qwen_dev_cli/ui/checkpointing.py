"""Checkpoints of the workspace around each turn, for the REPL and the headless runs.

:class:`Checkpoints` records the workspace before each turn, before each approved
command and at each turn's end (:mod:`qwen_dev_cli.checkpoints`), and notes each in
the session file (:mod:`qwen_dev_cli.session.turns` reads them back), so ``/rewind``
(``ui/rewind.py``) can bring files and conversation back, in the REPL that took them
or in one that resumed the session later (``qwen-dev --resume ID --at N``). A
checkpoint that cannot be taken (no git, a full disk, another process holding the
lock) never stops a turn: it goes on, unprotected, and the user is told.

Headless runs (``qwen-dev ask``, ``-p``, ``--input-format stream-json``) take the same
checkpoints, with less patience: a checkpoint that takes longer than
:data:`HEADLESS_PATIENCE` (a first one of a huge folder) or fails is given up, for the
rest of the run, said once. Imports nothing of prompt-toolkit or rich: ``ask`` loads
this module only for a turn that may change files.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from ..checkpoints import CheckpointError, CheckpointTimeout, ShadowRepo, prune_checkpoints
from ..checkpoints.shadow import DEFAULT_LOCK_WAIT
from ..tools.private import private_places

if TYPE_CHECKING:
    from collections.abc import Iterable

    from ..checkpoints import Checkpoint
    from ..runtime import Runtime
    from ..session.store import Session

#: Characters of a prompt's first line kept in the session's turn record.
PROMPT_CHARS = 200
#: Seconds a checkpoint may take before the user is told it is being recorded.
SLOW_CHECKPOINT = 1.0
#: Seconds a headless run waits for a checkpoint before going on without it (and
#: without any for the rest of the run).
HEADLESS_PATIENCE = 5.0
#: Seconds a headless run waits for another process's checkpoint (a REPL's in the
#: same folder) before going on without one.
HEADLESS_LOCK_WAIT = 2.0

_T = TypeVar("_T")


class Checkpoints:
    """The checkpoints of one workspace, noted in its sessions.

    Args:
        workspace: the folder recorded.
        root: where shadow repositories live (``QWEN_DEV_HOME/checkpoints``).
        warn: tells the user a checkpoint was not taken.
        note: tells the user which files checkpoints leave out; default ``warn``.
        exclude: places never recorded: the user's credential stores and qwen-dev's own
            folder, when the workspace holds them.
        headless: a run nobody watches: a checkpoint is awaited at most
            :data:`HEADLESS_PATIENCE` seconds (the lock :data:`HEADLESS_LOCK_WAIT`),
            the first one missing turns checkpoints off for the rest of the run and is
            said once, slowness is not announced, and :meth:`close` does not wait for
            a background packing (the process may end meanwhile).
    """

    def __init__(
        self,
        workspace: Path,
        root: Path,
        warn: Callable[[str], None],
        *,
        note: Callable[[str], None] | None = None,
        exclude: Iterable[Path] = (),
        headless: bool = False,
    ) -> None:
        self.headless = headless
        wait = HEADLESS_LOCK_WAIT if headless else DEFAULT_LOCK_WAIT
        self.repo = ShadowRepo(workspace, root, exclude=exclude, lock_wait=wait)
        self._warn = warn
        self._note = note or warn
        self._session: Session | None = None
        self._turn = 0
        self._told_skipped: set[str] = set()
        #: Why checkpoints are off for the rest of this REPL (a git call had to be
        #: stopped: every turn would wait as long again) or headless run (any failure).
        self._off: str | None = None
        #: The last reason given for a missing checkpoint (said in full once).
        self._said: str | None = None

    @classmethod
    def for_runtime(
        cls,
        runtime: Runtime,
        warn: Callable[[str], None],
        *,
        note: Callable[[str], None] | None = None,
        headless: bool = False,
    ) -> Checkpoints:
        """The checkpoints of ``runtime``'s workspace, under its home, leaving out the
        private places (:func:`~qwen_dev_cli.tools.private.private_places`)."""
        settings = runtime.settings
        private = private_places(Path.home(), settings.own_files)
        return cls(
            runtime.workspace,
            runtime.home.checkpoints,
            warn,
            note=note,
            exclude=(runtime.home.root, *private),
            headless=headless,
        )

    async def turn_started(self, session: Session, prompt: str) -> None:
        """Before a turn: the workspace recorded, the turn noted with its checkpoint."""
        if self._session is not session:
            self._session = session
            self._turn = session.turns
        self._turn += 1
        line = _first_line(prompt)
        checkpoint, why = await self._take(session, f"before turn {self._turn}: {line}")
        if why is not None:
            self._tell(
                why,
                f"no checkpoint before this turn ({why}); it goes on unprotected: "
                "/rewind cannot restore files to before it",
                "no checkpoint before this turn (as before); it goes on unprotected",
            )
        session.note(
            "turn_start",
            turn=self._turn,
            prompt=line,
            checkpoint=checkpoint.commit if checkpoint else None,
            skipped=[[s.path, s.reason] for s in checkpoint.skipped] if checkpoint else [],
            unprotected=why,
        )

    async def before_command(self, command: str) -> None:
        """Before an approved command runs (the agent's hook)."""
        session = self._session
        if session is None:
            return
        checkpoint, why = await self._take(session, f"before command: {command[:PROMPT_CHARS]}")
        if why is not None:
            self._tell(
                why,
                f"no checkpoint before this command ({why}); it runs unprotected",
                "no checkpoint before this command (as before); it runs unprotected",
            )
        commit = checkpoint.commit if checkpoint else None
        session.note("checkpoint", turn=self._turn, commit=commit, command=command)

    async def turn_ended(self) -> None:
        """After a turn: what it left, so the next rewind can tell the user's edits."""
        session = self._session
        if session is None:
            return
        checkpoint, _ = await self._take(session, f"end of turn {self._turn}")
        if checkpoint is not None:
            session.note("checkpoint", turn=self._turn, commit=checkpoint.commit, at="end")

    def close(self) -> None:
        if not self.headless:
            self.repo.close()

    def _tell(self, why: str, first: str, again: str) -> None:
        """Say a checkpoint is missing: in full, or briefly when the reason is the one
        just given (no git: every turn would repeat it); headless, once per run."""
        if not self.headless:
            self._warn(again if why == self._said else first)
        elif self._said is None:
            self._warn(first)
        self._said = why

    async def _take(self, session: Session, label: str) -> tuple[Checkpoint | None, str | None]:
        if self._off is not None:
            return None, f"checkpoints are off for this session: {self._off}"
        if self.headless:
            # A daemon thread, not the loop's executor: a checkpoint given up on must
            # not keep the process from ending.
            taking = _in_daemon_thread(self.repo.take, session.id, label)
            try:
                done, _ = await asyncio.wait({taking}, timeout=HEADLESS_PATIENCE)
            except asyncio.CancelledError:  # the turn was interrupted meanwhile
                taking.cancel()
                raise
            if not done:
                taking.cancel()  # the thread finishes alone; its lock keeps it consistent
                self._off = f"recording the workspace took more than {HEADLESS_PATIENCE:g}s"
                return None, self._off
        else:
            taking = asyncio.ensure_future(asyncio.to_thread(self.repo.take, session.id, label))
            done, _ = await asyncio.wait({taking}, timeout=SLOW_CHECKPOINT)
            if not done:  # a first checkpoint of a large folder: say why nothing happens
                self._warn("recording the workspace for /rewind (the first time takes longer)")
        try:
            checkpoint = await taking
        except CheckpointTimeout as exc:
            self._off = str(exc)
            return None, str(exc)
        except CheckpointError as exc:
            if self.headless:
                self._off = str(exc)
            return None, str(exc)
        new = [s for s in checkpoint.skipped if s.path not in self._told_skipped]
        if new:
            self._told_skipped.update(s.path for s in new)
            listed = "; ".join(f"{s.path}: {s.reason}" for s in new[:5])
            more = f" and {len(new) - 5} more" if len(new) > 5 else ""
            self._note(f"checkpoints leave out {listed}{more}")
        return checkpoint, None


def prune_in_background(runtime: Runtime) -> threading.Thread:
    """Let go of the checkpoints of sessions that were pruned or deleted, in a thread
    (a garbage collection of a large shadow repository takes seconds)."""
    store = runtime.home.session_store()
    root = runtime.home.checkpoints

    def prune() -> None:
        with contextlib.suppress(Exception):  # housekeeping: never a reason to fail
            prune_checkpoints(root, [info.id for info in store.list()])

    thread = threading.Thread(target=prune, name="checkpoint-prune", daemon=True)
    thread.start()
    return thread


def _in_daemon_thread(function: Callable[..., _T], *args: object) -> asyncio.Future[_T]:
    """``function(*args)`` in a daemon thread; its result (or exception) as a future of
    the running loop (cancel it to stop waiting: the thread ends on its own)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[_T] = loop.create_future()

    def deliver(settle: Callable[[], None]) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
            loop.call_soon_threadsafe(lambda: None if future.done() else settle())

    def run() -> None:
        try:
            result = function(*args)
        except BaseException as exc:  # handed to the awaiting task
            error = exc
            deliver(lambda: future.set_exception(error))
            return
        deliver(lambda: future.set_result(result))

    threading.Thread(target=run, name="checkpoint", daemon=True).start()
    return future


def _first_line(text: str) -> str:
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return shorten(line, PROMPT_CHARS)


def shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
