"""Esc stops the answer being written, as Ctrl-C does (the peers' habit).

While a turn runs, the terminal is out of line mode with its echo off
(:func:`~qwen_dev_cli.ui.turnview.set_echo`), so each key arrives as it is pressed. The
watcher reads them: a read holding only Esc (one press, or two) interrupts; anything
else (the next message typed ahead, an arrow key's sequence, Alt+key) is handed to
the next prompt as prompt-toolkit's type-ahead, so nothing typed meanwhile is lost.
A lone Esc is told from a longer sequence by arriving alone: a terminal writes a
key's whole sequence at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prompt_toolkit.input.typeahead import get_typeahead, store_typeahead
from prompt_toolkit.input.vt100_parser import Vt100Parser

if TYPE_CHECKING:
    from prompt_toolkit.input import Input
    from prompt_toolkit.key_binding import KeyPress

ESC = "\x1b"


class EscWatcher:
    """Calls ``interrupt`` when Esc is pressed on the terminal ``fd`` while watching.

    Args:
        fd: the terminal's file descriptor (standard input).
        interrupt: what Esc does (cancel the running turn).
        prompt_input: the prompt's input, which gets what else was typed.
    """

    def __init__(self, fd: int, interrupt: Callable[[], None], prompt_input: Input) -> None:
        self.fd = fd
        self.interrupt = interrupt
        self.prompt_input = prompt_input
        self._watching = False

    @contextlib.contextmanager
    def watching(self) -> Iterator[None]:
        """Watch for Esc inside the block (the event loop's reader on ``fd``)."""
        self.start()
        try:
            yield
        finally:
            self.stop()

    def start(self) -> None:
        if self._watching:
            return
        try:
            asyncio.get_running_loop().add_reader(self.fd, self._read)
        except (NotImplementedError, OSError, ValueError, RuntimeError):
            return  # no reader on this loop or descriptor: Ctrl-C still works
        self._watching = True

    def stop(self) -> None:
        if not self._watching:
            return
        self._watching = False
        with contextlib.suppress(Exception):
            asyncio.get_running_loop().remove_reader(self.fd)

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Leave the terminal to someone else (the approval dialog) inside the block.
        What was typed ahead is held back meanwhile: text typed for the next message
        must not answer the dialog (a ``y`` in it would approve a command)."""
        was = self._watching
        if was:
            self._drain()  # keys typed but not read yet would be the dialog's to read
        self.stop()
        held = get_typeahead(self.prompt_input)
        try:
            yield
        finally:
            store_typeahead(self.prompt_input, held)
            if was:
                self.start()

    def _drain(self) -> None:
        """Read what the terminal holds now (typed, not yet read), as :meth:`_read`."""
        for _ in range(1024):  # up to 4 MiB typed or pasted ahead
            try:
                ready, _, _ = select.select([self.fd], [], [], 0)
            except (OSError, ValueError):
                return
            if not ready or not self._watching:
                return
            self._read()

    def _read(self) -> None:
        try:
            data = os.read(self.fd, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.stop()
            return
        if not data:
            self.stop()
            return
        self.feed(data.decode("utf-8", errors="replace"))

    def feed(self, text: str) -> None:
        """What one read brought: Esc alone interrupts; the rest is type-ahead."""
        if text and set(text) == {ESC}:
            self.interrupt()
            return
        keys: list[KeyPress] = []
        parser = Vt100Parser(keys.append)
        parser.feed(text)
        parser.flush()
        if keys:
            store_typeahead(self.prompt_input, keys)
