"""The REPL prompt's keys, driven headless: a real PromptSession on a pipe."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prompt_toolkit import PromptSession
from prompt_toolkit.history import InMemoryHistory
from prompt_toolkit.input import PipeInput, create_pipe_input
from prompt_toolkit.output import DummyOutput

from qwen_dev_cli.ui.keys import repl_key_bindings

ALT_ENTER = "\x1b\r"
PASTE_START, PASTE_END = "\x1b[200~", "\x1b[201~"
UP, CTRL_U, CTRL_Y, CTRL_B = "\x1b[A", "\x15", "\x19", "\x02"


@pytest.fixture
def pipe() -> Iterator[PipeInput]:
    with create_pipe_input() as pipe_input:
        yield pipe_input


async def read(pipe: PipeInput, keys: str, history: list[str] | None = None) -> str:
    kept = InMemoryHistory()
    for entry in history or []:
        kept.append_string(entry)
    session: PromptSession[str] = PromptSession(
        input=pipe, output=DummyOutput(), key_bindings=repl_key_bindings(), history=kept
    )
    pipe.send_text(keys)
    return await session.prompt_async(handle_sigint=False)


async def test_enter_sends_the_line(pipe: PipeInput) -> None:
    assert await read(pipe, "hello\r") == "hello"


async def test_alt_enter_starts_a_new_line_instead_of_sending(pipe: PipeInput) -> None:
    assert await read(pipe, f"first{ALT_ENTER}second\r") == "first\nsecond"


async def test_pasted_lines_stay_one_message(pipe: PipeInput) -> None:
    pasted = f"{PASTE_START}def f():\r\n    return 1\r\n{PASTE_END}"
    assert await read(pipe, f"look:{ALT_ENTER}{pasted}\r") == "look:\ndef f():\n    return 1\n"


async def test_ctrl_c_clears_a_typed_line(pipe: PipeInput) -> None:
    assert await read(pipe, "half a thought\x03fresh\r") == "fresh"


async def test_ctrl_c_on_an_empty_line_interrupts(pipe: PipeInput) -> None:
    with pytest.raises(KeyboardInterrupt):
        await read(pipe, "\x03")


async def test_ctrl_d_on_an_empty_line_leaves(pipe: PipeInput) -> None:
    with pytest.raises(EOFError):
        await read(pipe, "\x04")


async def test_ctrl_u_on_a_recalled_multi_line_message_empties_it(pipe: PipeInput) -> None:
    recalled = "def f():\n    return 1\nprint(f())"
    assert await read(pipe, f"{UP}{CTRL_U}fresh\r", history=[recalled]) == "fresh"


async def test_ctrl_u_kills_back_to_the_start_and_ctrl_y_brings_it_back(pipe: PipeInput) -> None:
    typed = f"first{ALT_ENTER}second third{CTRL_B * 5}{CTRL_U}"
    assert await read(pipe, f"{typed}\r") == "third"


async def test_what_ctrl_u_killed_can_be_yanked_back(pipe: PipeInput) -> None:
    typed = f"first{ALT_ENTER}second{CTRL_U}again: {CTRL_Y}"
    assert await read(pipe, f"{typed}\r") == "again: first\nsecond"
