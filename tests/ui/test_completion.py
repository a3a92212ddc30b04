"""Completion of slash commands, their arguments, and ``@`` workspace paths."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest
from prompt_toolkit import PromptSession
from prompt_toolkit.buffer import Buffer
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from qwen_dev_cli.ui.completion import ReplCompleter


class Catalog:
    def summaries(self) -> list[tuple[str, str]]:
        return [
            ("help", "these commands"),
            ("metrics", "numbers"),
            ("model", "use another model"),
            ("provider", "use other providers"),
        ]

    def argument_choices(self, name: str) -> list[str]:
        return ["sambanova", "hf", "local"] if name == "provider" else []


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    (root / "src" / "pkg").mkdir(parents=True)
    (root / "src" / "app.py").write_text("print('app')\n")
    (root / "src" / "api.py").write_text("")
    (root / "README.md").write_text("# readme\n")
    (root / ".env").write_text("SECRET=1\n")
    (root / "__pycache__").mkdir()
    (tmp_path / "outside.txt").write_text("not yours\n")
    return root


def complete(completer: ReplCompleter, text: str) -> list[tuple[str, int, str]]:
    found = completer.get_completions(Document(text), CompleteEvent(completion_requested=True))
    return [(c.text, c.start_position, c.display_meta_text) for c in found]


def test_slash_completes_command_names_with_their_help(workspace: Path) -> None:
    completer = ReplCompleter(Catalog(), workspace)
    assert complete(completer, "/m") == [
        ("/metrics", -2, "numbers"),
        ("/model", -2, "use another model"),
    ]
    assert [text for text, _, _ in complete(completer, "/")] == [
        "/help",
        "/metrics",
        "/model",
        "/provider",
    ]


def test_command_arguments_complete_from_their_choices(workspace: Path) -> None:
    completer = ReplCompleter(Catalog(), workspace)
    assert complete(completer, "/provider s") == [("sambanova", -1, "")]
    assert complete(completer, "/model q") == []


def test_at_completes_workspace_paths(workspace: Path) -> None:
    completer = ReplCompleter(Catalog(), workspace)
    assert [text for text, _, _ in complete(completer, "look at @")] == ["README.md", "src/"]
    assert complete(completer, "explain @src/ap") == [
        ("src/api.py", -6, ""),
        ("src/app.py", -6, ""),
    ]
    assert [text for text, _, _ in complete(completer, "@src/")] == [
        "src/api.py",
        "src/app.py",
        "src/pkg/",
    ]


def test_hidden_entries_only_when_asked_for(workspace: Path) -> None:
    completer = ReplCompleter(Catalog(), workspace)
    assert complete(completer, "@.e") == [(".env", -2, "")]
    assert "__pycache__/" not in [text for text, _, _ in complete(completer, "@")]


def test_nothing_outside_the_workspace_is_offered(workspace: Path) -> None:
    completer = ReplCompleter(Catalog(), workspace)
    assert complete(completer, "@../") == []
    assert complete(completer, "mail me@example") == []


async def test_tab_completes_in_a_real_prompt(workspace: Path) -> None:
    with create_pipe_input() as pipe:
        session: PromptSession[str] = PromptSession(
            input=pipe,
            output=DummyOutput(),
            completer=ReplCompleter(Catalog(), workspace),
            complete_while_typing=True,
        )
        for typed, expected in (("/he", "/help"), ("read @src/app", "read @src/app.py")):
            buffer = session.default_buffer
            answer = asyncio.create_task(session.prompt_async(handle_sigint=False))
            pipe.send_text(typed)
            await until(partial(menu_shows, buffer, typed))
            pipe.send_text("\t")
            await until(partial(text_is, buffer, expected))
            pipe.send_text("\r")
            assert await answer == expected


def menu_shows(buffer: Buffer, typed: str) -> bool:
    """The completion menu is up, computed for everything typed."""
    state = buffer.complete_state
    return bool(state and state.completions and state.original_document.text == typed)


def text_is(buffer: Buffer, expected: str) -> bool:
    return buffer.text == expected


async def until(condition: Callable[[], bool]) -> None:
    """Let the prompt run until ``condition`` holds (completion runs asynchronously)."""
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition never held")
