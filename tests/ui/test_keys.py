"""The REPL prompt's keys, driven headless: a real PromptSession on a pipe."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prompt_toolkit import PromptSession
from prompt_toolkit.input import PipeInput, create_pipe_input
from prompt_toolkit.output import DummyOutput

from qwen_dev_cli.ui.keys import repl_key_bindings

ALT_ENTER = "\x1b\r"
PASTE_START, PASTE_END = "\x1b[200~", "\x1b[201~"


@pytest.fixture
def pipe() -> Iterator[PipeInput]:
    with create_pipe_input() as pipe_input:
        yield pipe_input


async def read(pipe: PipeInput, keys: str) -> str:
    session: PromptSession[str] = PromptSession(
        input=pipe, output=DummyOutput(), key_bindings=repl_key_bindings()
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
