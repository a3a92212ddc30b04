"""Threat: a tool change, or its undo, destroys what the user wrote.

A scripted model writes a file and then swaps a folder on its path for a link out of
the workspace, so that ``/undo`` deletes a file outside it; ``/undo`` discards edits
the user made after the tool's write; the user edits a file while the approval dialog
shows its diff, and ``y`` writes over that edit; a FIFO hangs ``read_file``; one reply
carries thousands of calls. Each finding of the review is a test here: real files,
real links, the agent against a scripted server, ``/undo`` as the REPL runs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from rich.console import Console

from faultserver import Outcome
from qwen_dev_cli.agent.agent import MAX_CALLS_PER_REPLY
from qwen_dev_cli.agent.turn import ApprovalDecision, ApprovalRequest
from qwen_dev_cli.tools import ChangeLog, OutsideWorkspace, UndoNeedsConfirmation
from qwen_dev_cli.tools.changes import BACKUP_INFIX
from qwen_dev_cli.ui.slash import SlashCommands
from tests.agent.harness import Harness, Recorder, calls, harness, tool_results

# --- /undo as the REPL runs it ------------------------------------------------------------


@dataclass
class Confirmer:
    """The REPL's dialog, answering from a script; records what it was shown."""

    answer: bool
    shown: list[tuple[str, str]] = field(default_factory=list)

    async def confirm(self, title: str, diff: str, question: str) -> bool:
        self.shown.append((title, diff))
        return self.answer


class UndoShell:
    """Just what ``/undo`` uses of the REPL."""

    def __init__(self, changes: ChangeLog, approver: Confirmer) -> None:
        self.console = Console(file=io.StringIO(), width=200, color_system=None)
        self.changes = changes
        self.approver = approver

    def printed(self) -> str:
        output = self.console.file
        assert isinstance(output, io.StringIO)
        return output.getvalue()


async def undo(changes: ChangeLog, *, answer: bool = True) -> UndoShell:
    shell = UndoShell(changes, Confirmer(answer))
    # A minimal shell: /undo needs only what UndoShell has.
    await SlashCommands(shell).run("/undo")  # type: ignore[arg-type]
    return shell


async def approved_write(h: Harness, path: str, content: str) -> ChangeLog:
    """The model writes ``path`` and the user approves it; the session's change log."""
    h.server.script(calls("native", ("write_file", {"path": path, "content": content})))
    agent = h.agent("ask", Recorder(), interactive=True)
    await agent.run([], "write it", h.events.append)
    return agent.changes


# --- the findings -----------------------------------------------------------------------


async def test_undo_does_not_follow_a_folder_swapped_for_a_link_out(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "authorized_keys").write_text("the user's real key\n")
    async with harness(tmp_path, "native") as h:
        h.server.script(
            calls("native", ("write_file", {"path": "d/authorized_keys", "content": "k\n"})),
            calls("native", ("run_command", {"command": f"rm -rf d && ln -s {outside} d"})),
            Outcome.ok("Done."),
        )
        agent = h.agent("ask", Recorder(), interactive=True)
        await agent.run([], "set up keys", h.events.append)
        assert (h.workspace / "d").is_symlink()
        with pytest.raises(OutsideWorkspace):
            agent.changes.undo_last()
        shell = await undo(agent.changes)
    assert "could not undo" in shell.printed()
    assert "outside the workspace" in shell.printed()
    assert (outside / "authorized_keys").read_text() == "the user's real key\n"


async def test_undo_of_a_file_the_user_changed_asks_shows_the_diff_and_keeps_a_backup(
    tmp_path: Path,
) -> None:
    async with harness(tmp_path, "native") as h:
        target = h.workspace / "notes.txt"
        target.write_text("original\n")
        changes = await approved_write(h, "notes.txt", "from the model\n")
        target.write_text("the user's careful edit\n")

        refused = await undo(changes, answer=False)
        assert target.read_text() == "the user's careful edit\n"
        assert "nothing undone" in refused.printed()
        [(title, diff)] = refused.approver.shown
        assert "notes.txt was changed after write_file wrote it" in title
        assert "-the user's careful edit\n+original\n" in diff

        done = await undo(changes, answer=True)
        assert target.read_text() == "original\n"
        [backup] = h.workspace.glob("notes.txt" + BACKUP_INFIX + "*")
        assert backup.read_text() == "the user's careful edit\n"
        assert f"saved in {backup.name}" in done.printed()


async def test_undo_without_a_terminal_refuses_to_discard_later_edits(tmp_path: Path) -> None:
    async with harness(tmp_path, "native") as h:
        target = h.workspace / "notes.txt"
        changes = await approved_write(h, "notes.txt", "from the model\n")
        target.write_text("the user's edit\n")
        with pytest.raises(UndoNeedsConfirmation, match="no terminal to confirm"):
            changes.undo_last()
        assert target.read_text() == "the user's edit\n"


@dataclass
class EditsWhileAsked(Recorder):
    """A user who edits the file while the first diff is on screen, then says yes."""

    edit: tuple[Path, str] | None = None

    async def approve(self, request: ApprovalRequest) -> ApprovalDecision:
        if self.edit is not None and not self.asked:
            path, text = self.edit
            path.write_text(text)
        return await super().approve(request)


async def test_an_edit_made_while_the_diff_is_shown_is_not_overwritten(tmp_path: Path) -> None:
    async with harness(tmp_path, "native") as h:
        target = h.workspace / "app.py"
        target.write_text("greeting = 'hello'\n")
        edit = {"path": "app.py", "old_string": "'hello'", "new_string": "'bye'"}
        h.server.script(calls("native", ("edit_file", edit)), Outcome.ok("Done."))
        user = EditsWhileAsked(edit=(target, "# the user's comment\ngreeting = 'hello'\n"))
        await h.agent("ask", user, interactive=True).run([], "say bye", h.events.append)
        first, second = user.asked
        assert "# the user's comment" not in str(first.diff)
        assert " # the user's comment\n" in str(second.diff)  # the new diff, as context
        assert "changed meanwhile" in second.summary
        assert target.read_text() == "# the user's comment\ngreeting = 'bye'\n"


async def test_an_edit_that_removes_what_the_model_wanted_to_change_tells_the_model(
    tmp_path: Path,
) -> None:
    async with harness(tmp_path, "native") as h:
        target = h.workspace / "app.py"
        target.write_text("greeting = 'hello'\n")
        edit = {"path": "app.py", "old_string": "'hello'", "new_string": "'bye'"}
        h.server.script(calls("native", ("edit_file", edit)), Outcome.ok("Done."))
        user = EditsWhileAsked(edit=(target, "greeting = 'hi'\n"))
        await h.agent("ask", user, interactive=True).run([], "say bye", h.events.append)
        assert len(user.asked) == 1
        assert target.read_text() == "greeting = 'hi'\n"
        [told] = tool_results(h.bodies[1])
        assert "old_string was not found in app.py" in told


def fifo_with_a_late_writer(path: Path) -> None:
    """A FIFO that gets a writer after a few seconds: a read that (wrongly) blocks on
    it then ends, and the test fails instead of hanging."""
    os.mkfifo(path)

    def release() -> None:
        time.sleep(5)
        with contextlib.suppress(OSError):
            os.close(os.open(path, os.O_RDWR))

    threading.Thread(target=release, daemon=True).start()


async def test_a_fifo_in_the_workspace_does_not_hang_read_file_or_grep(tmp_path: Path) -> None:
    async with harness(tmp_path, "native") as h:
        fifo_with_a_late_writer(h.workspace / "trap")
        h.server.script(
            calls("native", ("read_file", {"path": "trap"}), ("grep", {"pattern": "x"})),
            Outcome.ok("Done."),
        )
        agent = h.agent("ask", Recorder(), interactive=True)
        started = time.monotonic()
        await asyncio.wait_for(agent.run([], "read the trap", h.events.append), timeout=4)
        assert time.monotonic() - started < 2
        read, grep = tool_results(h.bodies[1])
        assert "trap is a FIFO (named pipe), not a regular file" in read
        assert grep == "no matches for 'x'"


async def test_one_reply_runs_at_most_the_cap_of_tool_calls(tmp_path: Path) -> None:
    count = MAX_CALLS_PER_REPLY + 68
    async with harness(tmp_path, "native") as h:
        wanted = [("run_command", {"command": f"echo {n}"}) for n in range(count)]
        h.server.script(calls("native", *wanted), Outcome.ok("Done."))
        user = Recorder()
        result = await h.agent("ask", user, interactive=True).run([], "go", h.events.append)
        assert len(user.asked) == MAX_CALLS_PER_REPLY
        told = tool_results(h.bodies[1])
        assert len(told) == count  # every call answered: the conversation stays valid
        assert told[0].strip().endswith("0")
        assert all(t.startswith("not run: one reply may make at most") for t in told[-68:])
        statuses = [record.status for record in result.tool_calls]
        assert statuses.count("denied") == 68
