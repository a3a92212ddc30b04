"""The peers' habits in the REPL (issue 24, item 3), headless: ``!command``, ``/tools``,
``/memory``, ``/init``, ``/quit``, ``/clear``, Shift+Tab, and suggestions that make
sense. A real PromptSession on a pipe and a real client against the fault server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from faultserver import DEFAULT_TEXT, FaultServer
from qwen_dev_cli.tools.sandbox import SandboxStatus, detect_sandbox
from qwen_dev_cli.ui.esc_interrupt import EscWatcher
from qwen_dev_cli.ui.memory import INIT_PROMPT, add_note
from qwen_dev_cli.ui.shell_escape import shell_command
from qwen_dev_cli.ui.slash import BUILTIN, suggestion
from tests.ui.test_repl import configure, lines, saved, session

SHIFT_TAB = "\x1b[Z"


@pytest.fixture
async def server() -> AsyncIterator[FaultServer]:
    async with FaultServer() as srv:
        yield srv


def sent(server: FaultServer) -> list[dict[str, object]]:
    """The conversation of the last chat request, system prompt left out."""
    messages: list[dict[str, object]] = server.requests[-1].json["messages"]
    return messages[1:]


async def test_a_bang_command_runs_its_output_shown_and_given_to_the_model(
    server: FaultServer, tmp_path: Path, qwen_home: Path
) -> None:
    setup = configure(tmp_path, server)
    (setup.workspace / "notes.txt").write_text("the build is green\n", encoding="utf-8")
    shown = await session(setup, lines("!cat notes.txt; echo done", "what did it say?", "/exit"))
    assert "! cat notes.txt; echo done · ok" in shown
    assert "the build is green" in shown
    assert DEFAULT_TEXT in shown
    first, second = sent(server)[:2]
    assert first["role"] == "user"
    assert "$ cat notes.txt; echo done" in str(first["content"])
    assert "the build is green" in str(first["content"])
    assert second == {"role": "user", "content": "what did it say?"}
    # Nothing was asked: the user typed the command.
    assert "run:" not in shown
    (info,) = saved(qwen_home).list()
    assert info.title.startswith("$ cat notes.txt; echo done exit code 0 the build is green")


@pytest.mark.skipif(not detect_sandbox().available, reason="no OS sandbox on this machine")
async def test_a_bang_command_runs_in_the_sandbox(server: FaultServer, tmp_path: Path) -> None:
    setup = configure(tmp_path, server)
    outside = tmp_path / "outside.txt"  # the sandbox's /tmp is its own
    shown = await session(setup, lines(f"!echo changed > {outside}", "/exit"))
    assert "(no output)" in shown  # it ran, and wrote to the sandbox's own /tmp
    assert not outside.exists()


async def test_a_bang_command_without_a_sandbox_says_so_before_it_runs(
    server: FaultServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No bubblewrap (or it cannot run here): the command runs with the user's whole
    # access, and its output goes to the model. That is never done silently.
    import qwen_dev_cli.tools.sandbox as sandbox

    missing = SandboxStatus(None, "bubblewrap is not installed")
    monkeypatch.setattr(sandbox, "probe", lambda: missing)
    detect_sandbox.cache_clear()
    setup = configure(tmp_path, server)
    outside = tmp_path / "outside.txt"
    try:
        shown = await session(setup, lines(f"!echo ran > {outside}", "/exit"))
    finally:
        monkeypatch.undo()
        detect_sandbox.cache_clear()
    assert "without an OS sandbox (bubblewrap is not installed)" in shown
    assert shown.index("without an OS sandbox") < shown.index(f"! echo ran > {outside}")
    assert outside.read_text() == "ran\n"  # it did run, unsandboxed, as said


def test_what_counts_as_a_bang_command() -> None:
    assert shell_command("!ls -la") == "ls -la"
    assert shell_command("  ! git status ") == "git status"
    assert shell_command("!") is None
    assert shell_command("hello! there") is None


async def test_memory_shows_the_notes_in_use_and_adds_to_them(
    server: FaultServer, tmp_path: Path
) -> None:
    setup = configure(tmp_path, server)
    shown = await session(setup, lines("/memory", "/memory add use tabs, not spaces", "/exit"))
    assert "no project notes" in shown
    assert "created QWEN.md: - use tabs, not spaces" in shown
    assert (setup.workspace / "QWEN.md").read_text() == "- use tabs, not spaces\n"
    shown = await session(setup, lines("/memory", "hi", "/exit"))
    assert "project notes in use: QWEN.md" in shown
    assert "use tabs, not spaces" in str(server.requests[-1].json["messages"][0]["content"])


async def test_memory_adds_to_agents_md_when_that_is_the_one_read(
    server: FaultServer, tmp_path: Path
) -> None:
    setup = configure(tmp_path, server)
    (setup.workspace / "AGENTS.md").write_text("# Agents\nrun make test", encoding="utf-8")
    shown = await session(setup, lines("/memory", "/memory add run ruff too", "/exit"))
    assert "project notes in use: AGENTS.md" in shown
    assert "run make test" in shown
    assert (
        setup.workspace / "AGENTS.md"
    ).read_text() == "# Agents\nrun make test\n- run ruff too\n"
    assert not (setup.workspace / "QWEN.md").exists()  # it would hide AGENTS.md


def test_memory_add_writes_no_file_a_link_leads_to_but_notes(tmp_path: Path) -> None:
    """A workspace's QWEN.md may be a link; in a home folder, a link to .bashrc would
    have the user's note appended to their shell's start-up file."""
    (tmp_path / ".bashrc").write_text("export PATH=$PATH\n", encoding="utf-8")
    (tmp_path / "QWEN.md").symlink_to(".bashrc")
    said = add_note(tmp_path, "use tabs")
    assert "links to .bashrc, which is not a Markdown file" in said.plain
    assert (tmp_path / ".bashrc").read_text() == "export PATH=$PATH\n"
    # A link to other notes (CLAUDE.md -> AGENTS.md is common) is written through.
    (tmp_path / "QWEN.md").unlink()
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "notes.md").write_text("# notes\n", encoding="utf-8")
    (tmp_path / "QWEN.md").symlink_to("docs/notes.md")
    assert "added to QWEN.md" in add_note(tmp_path, "use tabs").plain
    assert (tmp_path / "docs" / "notes.md").read_text() == "# notes\n- use tabs\n"


async def test_init_asks_the_model_to_write_qwen_md(server: FaultServer, tmp_path: Path) -> None:
    setup = configure(tmp_path, server)
    await session(setup, lines("/init", "/exit"))
    assert sent(server)[-1] == {"role": "user", "content": INIT_PROMPT}
    (setup.workspace / "QWEN.md").write_text("# notes\n", encoding="utf-8")
    before = len(server.requests)
    shown = await session(setup, lines("/init", "/exit"))
    assert "QWEN.md exists already" in shown
    assert len(server.requests) == before


async def test_quit_and_clear_are_exit_and_new(server: FaultServer, tmp_path: Path) -> None:
    setup = configure(tmp_path, server)
    shown = await session(setup, lines("remember 42", "/clear", "what number?", "/quit"))
    assert "new conversation" in shown
    assert sent(server) == [{"role": "user", "content": "what number?"}]


async def test_tools_lists_every_tool(server: FaultServer, tmp_path: Path) -> None:
    shown = await session(configure(tmp_path, server), lines("/tools", "/exit"))
    for name in ("read_file", "write_file", "run_command"):
        assert name in shown


async def test_shift_tab_cycles_the_approval_mode(server: FaultServer, tmp_path: Path) -> None:
    setup = configure(tmp_path, server)
    shown = await session(
        setup, SHIFT_TAB + lines("/approval") + SHIFT_TAB + lines("/approval", "/exit")
    )
    modes = [line for line in shown.splitlines() if line.startswith("approval:")]
    assert [m.split()[1] for m in modes] == ["auto-edit", "yolo"]


def test_suggestions_make_sense() -> None:
    names = [command.name for command in BUILTIN]
    assert suggestion("theme", names) is None  # not /resume
    assert suggestion("hepl", names) == "help"
    assert suggestion("stats", names) == "metrics"
    assert suggestion("compa", names) == "compact"
    assert suggestion("comp", names) is None  # /compact or /compress
    assert suggestion("sessionz", names) == "sessions"


def test_esc_alone_interrupts_and_other_keys_are_kept_for_the_prompt() -> None:
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.input.typeahead import get_typeahead

    interrupted: list[bool] = []
    with create_pipe_input() as pipe:
        watcher = EscWatcher(0, lambda: interrupted.append(True), pipe)
        watcher.feed("next question")
        watcher.feed("\x1b[A")  # an arrow key: a sequence, not Esc
        watcher.feed("\x1b\r")  # Alt+Enter
        assert interrupted == []
        typed = "".join(key.data for key in get_typeahead(pipe))
        assert typed.startswith("next question")
        watcher.feed("\x1b")
        watcher.feed("\x1b\x1b")
        assert interrupted == [True, True]
        # What is typed ahead cannot answer an approval dialog: it is held meanwhile.
        watcher.feed("yes")
        with watcher.paused():
            assert get_typeahead(pipe) == []
        assert "".join(key.data for key in get_typeahead(pipe)) == "yes"


async def test_the_banner_says_which_project_notes_are_read(
    server: FaultServer, tmp_path: Path
) -> None:
    setup = configure(tmp_path, server)
    shown = await session(setup, lines("/exit"))
    assert "project notes" not in shown
    (setup.workspace / "AGENTS.md").write_text("# rules\n", encoding="utf-8")
    shown = await session(setup, lines("/exit"))
    assert "project notes: AGENTS.md · read with every message (/memory)" in shown


async def test_keys_typed_just_before_a_dialog_opens_cannot_answer_it() -> None:
    # A key typed while the turn ran but not read yet (the loop had not served the
    # terminal's reader) was left in the terminal for the approval dialog to read: a
    # "y" of the next message would approve a command. Pausing takes it first.
    import os
    import select

    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.input.typeahead import get_typeahead

    read_end, write_end = os.pipe()
    interrupted: list[bool] = []
    try:
        with create_pipe_input() as pipe:
            watcher = EscWatcher(read_end, lambda: interrupted.append(True), pipe)
            watcher.start()
            os.write(write_end, b"y")  # typed; the loop has not run the reader yet
            with watcher.paused():
                assert select.select([read_end], [], [], 0)[0] == []  # nothing for the dialog
                assert get_typeahead(pipe) == []
            assert "".join(key.data for key in get_typeahead(pipe)) == "y"
            watcher.stop()
    finally:
        os.close(read_end)
        os.close(write_end)
    assert interrupted == []
