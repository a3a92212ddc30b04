"""``/rewind`` (Esc Esc at an empty prompt): back to before a turn.

The checkpoints it goes back to are taken by :class:`~.checkpointing.Checkpoints`
(in the REPL, and in headless runs whose sessions the REPL may resume).

``/rewind`` lists the conversation's turns (time, first line of the prompt, files
changed, commands run); the user picks one, sees the diff of what going back would
change, then chooses: files and conversation, files only, conversation only, or
nothing. A file the user edited since the latest checkpoint is kept as a backup
beside itself before it is replaced, as ``/undo`` does.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING

from prompt_toolkit import PromptSession
from prompt_toolkit.key_binding import KeyBindings
from prompt_toolkit.keys import Keys
from rich.table import Table
from rich.text import Text

from ..checkpoints import CheckpointError, RestorePlan, ShadowRepo, plan_restore, restore
from ..plurals import plural
from ..session.store import SessionError
from ..session.turns import TurnMark, turn_marks, view_before
from ..tools import ChangeLog
from .approval import coloured_diff
from .checkpointing import shorten
from .safe_text import printable

if TYPE_CHECKING:
    from collections.abc import Callable

    from prompt_toolkit.key_binding import KeyPressEvent

    from ..session.store import Session
    from .repl import Repl

#: Paths named per turn in the list (the rest counted).
LISTED_FILES = 3
#: Turns listed by ``/rewind`` (the latest; an earlier one can still be chosen).
LISTED_TURNS = 30
#: Seconds a checkpoint may take before the user is told it is being recorded.
SLOW_CHECKPOINT = 1.0


async def run_rewind(repl: Repl) -> None:
    """``/rewind``: choose a turn, see what changes, choose what goes back."""
    console = repl.console
    session = repl.conversation.session
    if session is None or not session.messages:
        console.print("nothing to rewind: no turn yet in this conversation")
        return
    try:
        events = repl.conversation.store.load(session.id).events
    except SessionError as exc:
        console.print(Text(f"cannot rewind: {exc}", "qd.error"))
        return
    marks = turn_marks(events)
    if not marks:
        console.print("nothing to rewind: no turn yet in this conversation")
        return
    checkpoints = repl.checkpoints
    shown = marks[-LISTED_TURNS:]
    if len(marks) > len(shown):
        earlier = len(marks) - len(shown)
        console.print(Text(f"({plural(earlier, 'earlier turn')} not listed)", "qd.muted"))
    console.print(await asyncio.to_thread(_turn_table, checkpoints.repo, marks, len(shown)))
    mark = await _choose_turn(repl, marks)
    if mark is None:
        console.print("nothing rewound")
        return
    plan = await _plan(repl, session, mark)
    keys = "bfcn" if plan is not None and not plan.empty else "cn"
    question = (
        "Restore [b]oth files and conversation / [f]iles only / [c]onversation only / [n]othing: "
        if keys == "bfcn"
        else "Restore the [c]onversation / [n]othing: "
    )
    choice = await _read_key(repl, question, keys)
    if choice == "n":
        console.print("nothing rewound")
        return
    if choice in "bf" and plan is not None:
        try:
            result = await asyncio.to_thread(restore, checkpoints.repo, session.id, plan)
        except (CheckpointError, OSError) as exc:
            console.print(Text(f"could not restore the files: {exc}", "qd.error"))
            return
        repl.changes = ChangeLog()  # /undo's records are of files no longer there
        _say_restored(repl, result.written, result.deleted, result.backups, result.moved)
        for refused in result.refused:
            console.print(Text(printable(f"left {refused.path}: {refused.reason}"), "qd.notice"))
    if choice in "bc":
        view = view_before(events, mark.number) or []
        session.rewound(view, mark.number)
        with contextlib.suppress(Exception):  # only the status bar's ctx N% depends on it
            repl.context_report()
        console.print(
            Text(
                f"conversation: back to before turn {mark.number} "
                f"({plural(len(view), 'message')}); the next message continues from there",
                "qd.ok",
            )
        )


def _turn_table(repo: ShadowRepo, marks: list[TurnMark], shown: int) -> Table:
    """The last ``shown`` of ``marks`` (each turn's files: from its checkpoint to its
    end's, else the next turn's)."""
    table = Table(box=None, pad_edge=False, header_style="qd.muted")
    for column in ("turn", "time", "prompt", "files changed", "commands"):
        table.add_column(column, overflow="fold", no_wrap=column in ("turn", "time"))
    for position in range(len(marks) - shown, len(marks)):
        mark = marks[position]
        following = marks[position + 1] if position + 1 < len(marks) else None
        end = mark.end or (following.checkpoint if following else None)
        table.add_row(
            str(mark.number),
            time.strftime("%H:%M:%S", time.localtime(mark.ts)),
            Text(printable(shorten(mark.prompt, 60)))
            + (
                Text(" (the conversation went back to before it)", "qd.muted")
                if mark.rewound
                else ""
            ),
            Text(printable(_files_changed(repo, mark.checkpoint, end))),
            Text(printable("; ".join(shorten(c, 40) for c in mark.commands) or "-")),
        )
    return table


def _files_changed(repo: ShadowRepo, start: str | None, end: str | None) -> str:
    if start is None:
        return "(no checkpoint)"
    if end is None:
        return "?"
    try:
        deltas = repo.changes(start, end)
    except CheckpointError:
        return "?"
    if not deltas:
        return "-"
    names = ", ".join(d.path for d in deltas[:LISTED_FILES])
    more = f" +{len(deltas) - LISTED_FILES}" if len(deltas) > LISTED_FILES else ""
    return f"{len(deltas)}: {names}{more}"


async def _choose_turn(repl: Repl, marks: list[TurnMark]) -> TurnMark | None:
    by_number = {mark.number: mark for mark in marks}
    while True:
        answer = (await _read_line(repl, "Rewind to before which turn? (Enter: cancel) ")).strip()
        if not answer:
            return None
        if answer.isdigit() and int(answer) in by_number:
            return by_number[int(answer)]
        numbers = ", ".join(str(n) for n in by_number)
        repl.console.print(Text(f"choose one of the turns listed: {numbers}", "qd.notice"))


async def _plan(repl: Repl, session: Session, mark: TurnMark) -> RestorePlan | None:
    """What restoring the files to before ``mark`` changes, shown; ``None`` when the
    files cannot go back (the reason shown)."""
    console = repl.console
    if mark.checkpoint is None:
        why = f" ({mark.unprotected})" if mark.unprotected else ""
        console.print(
            Text(
                f"files: no checkpoint was taken before turn {mark.number}{why}; "
                "only the conversation can go back",
                "qd.notice",
            )
        )
        return None
    repo = repl.checkpoints.repo
    try:
        plan = await asyncio.to_thread(plan_restore, repo, session.id, mark.checkpoint)
    except CheckpointError as exc:
        console.print(Text(f"files: cannot compare with the checkpoint: {exc}", "qd.error"))
        return None
    if plan.empty:
        console.print(f"files: the workspace is as it was before turn {mark.number}")
        return plan
    counts = {status: 0 for status in ("modified", "added", "deleted")}
    for delta in plan.deltas:
        counts[delta.status] = counts.get(delta.status, 0) + 1
    console.print(
        Text(
            f"files: going back to before turn {mark.number} restores "
            f"{plural(counts['modified'], 'file')}, brings back {counts['added']} and "
            f"deletes {counts['deleted']}:",
            "qd.title",
        )
    )
    console.print(coloured_diff(plan.diff))
    if plan.edited:
        names = ", ".join(sorted(plan.edited))
        console.print(
            Text(
                printable(
                    f"changed since the last checkpoint (your edits?): {names}; "
                    "each is kept in a backup file beside it"
                ),
                "qd.notice",
            )
        )
    for skipped in plan.left_alone:
        console.print(Text(printable(f"left as is: {skipped.path} ({skipped.reason})"), "qd.muted"))
    return plan


def _say_restored(
    repl: Repl,
    written: list[str],
    deleted: list[str],
    backups: list[tuple[str, str]],
    moved: list[tuple[str, str]],
) -> None:
    parts = [f"restored {plural(len(written), 'file')}"]
    if deleted:
        parts.append(f"deleted {len(deleted)}")
    repl.console.print(Text(", ".join(parts), "qd.ok"))
    for name, backup in backups:
        repl.console.print(
            Text(printable(f"your edits of {name} are saved in {backup}"), "qd.notice")
        )
    for name, aside in moved:
        said = f"{name} was in the way and no checkpoint holds it: moved aside as {aside}"
        repl.console.print(Text(printable(said), "qd.notice"))


async def _read_line(repl: Repl, question: str) -> str:
    app = repl.prompt.app
    session: PromptSession[str] = PromptSession(input=app.input, output=app.output)
    try:
        return await session.prompt_async(question, handle_sigint=False)
    except (KeyboardInterrupt, EOFError):
        return ""


async def _read_key(repl: Repl, question: str, keys: str) -> str:
    """One of ``keys``; Enter, Esc, Ctrl-C and Ctrl-D mean ``n`` (nothing)."""
    bindings = KeyBindings()
    for key in keys:
        bindings.add(key)(_answer(key))
    for key in ("enter", "escape", "c-c", "c-d"):
        bindings.add(key)(_answer("n"))

    @bindings.add(Keys.Any)
    def _ignore(event: KeyPressEvent) -> None:
        pass

    app = repl.prompt.app
    session: PromptSession[str] = PromptSession(
        input=app.input, output=app.output, key_bindings=bindings
    )
    choice = await session.prompt_async(question, handle_sigint=False)
    said = {
        "b": "files and conversation",
        "f": "files only",
        "c": "conversation only",
        "n": "nothing",
    }
    repl.console.print(Text(f"{repl.symbols.arrow} {said.get(choice, choice)}", "qd.title"))
    return choice


def _answer(key: str) -> Callable[[KeyPressEvent], None]:
    def handler(event: KeyPressEvent) -> None:
        event.app.exit(result=key)

    return handler
