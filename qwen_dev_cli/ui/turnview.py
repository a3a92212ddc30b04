"""What the terminal shows while a turn runs: the answer streaming as markdown, tool
calls as they happen, and the status bar as a footer that keeps refreshing.

The prompt's toolbar is gone while a turn runs (prompt-toolkit has returned), so the
view draws the same status line itself, at the bottom of a rich ``Live`` region
whose only other content is the unfinished tail of the answer. A timer task on the
event loop refreshes it: at most ``frame_interval`` apart when the answer changed,
and every ``status_interval`` regardless, so countdowns and the elapsed time move
while a request hangs or sleeps before a retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TextIO

from rich.live import Live
from rich.text import Text

from ..agent.turn import (
    AssistantRestart,
    AssistantText,
    ContextCompacted,
    FileChanged,
    ToolCallFinished,
    ToolCallStarted,
    TurnEnded,
    why_cut,
)
from ..core.events import BreakerTransition, ClientEvent, Failover, RetryScheduled
from ..plurals import plural
from ..tools.diff import diff_stats
from .render import MarkdownStream
from .safe_text import printable
from .statusbar import event_line
from .symbols import Symbols, symbols_for

if TYPE_CHECKING:
    from types import TracebackType

    from rich.console import Console, ConsoleOptions, RenderResult

    from ..agent.turn import AgentEvent, TurnResult
    from .statusbar import StatusBar

#: Tools whose output the user sees the end of (the rest: ``/output``).
SHOWS_OUTPUT = frozenset({"run_command"})
#: Lines of a command's output shown under it.
TAIL_LINES = 5


class TurnView:
    """An event sink for one turn, and the live display that goes with it.

    Use as ``async with TurnView(console, status) as view:`` and pass ``view`` as the
    turn's sink.

    Args:
        console: the REPL's console.
        status: the status bar drawn as the footer.
        frame_interval: the shortest time between two redraws of a changing answer.
        status_interval: the longest time between two redraws (at least twice a second).
        quiet_input: a terminal whose echo is turned off while the turn runs, so keys
            typed meanwhile do not garble the display (``None``: leave it alone).
        get_time: monotonic seconds.
    """

    def __init__(
        self,
        console: Console,
        status: StatusBar,
        *,
        frame_interval: float = 0.08,
        status_interval: float = 0.25,
        quiet_input: TextIO | None = None,
        get_time: Callable[[], float] = time.monotonic,
    ) -> None:
        self.console = console
        self.status = status
        self.symbols = symbols_for(console)
        self.stream = MarkdownStream(console)
        self.frame_interval = frame_interval
        self.status_interval = status_interval
        self._quiet_input = quiet_input
        self._get_time = get_time
        self._live = Live(
            console=console,
            auto_refresh=False,
            transient=True,
            get_renderable=lambda: _Footer(self),
        )
        self._ticker: asyncio.Task[None] | None = None
        self._drawn_version = -1
        self._drawn_at = 0.0
        self.refreshes = 0

    # --- lifetime ---------------------------------------------------------------------

    async def __aenter__(self) -> TurnView:
        self._start()
        self._ticker = asyncio.create_task(self._tick())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        self.stream.finish()
        self._stop()

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Take the live display down (to ask the user something), then bring it back."""
        self.stream.finish()
        self._stop()
        try:
            yield
        finally:
            self._start()

    def _start(self) -> None:
        self._echo(False)
        self._live.start(refresh=True)

    def _stop(self) -> None:
        self._live.stop()
        self._echo(True)

    def _echo(self, on: bool) -> None:
        if self._quiet_input is not None:
            set_echo(self._quiet_input, on)

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.frame_interval)
            self.refresh_if_due()

    def refresh_if_due(self) -> None:
        """Redraw if the answer changed and a frame is due, or the status line is."""
        now = self._get_time()
        changed = self.stream.version != self._drawn_version
        if (changed and now - self._drawn_at >= self.frame_interval) or (
            now - self._drawn_at >= self.status_interval
        ):
            self._drawn_version = self.stream.version
            self._drawn_at = now
            self.refreshes += 1
            self._live.refresh()

    # --- the sink ---------------------------------------------------------------------

    def __call__(self, event: AgentEvent) -> None:
        if isinstance(event, AssistantText):
            self.stream.feed(printable(event.text))
        elif isinstance(event, AssistantRestart):
            self.stream.restart(event.reason)
        elif isinstance(event, ToolCallStarted):
            self.stream.finish()
            arguments = _arguments(event.arguments, self.symbols)
            line = printable(f"{self.symbols.tool} {event.name} {arguments}")
            self.console.print(Text(line, "qd.tool"))
        elif isinstance(event, ToolCallFinished):
            self._finished(event)
        elif isinstance(event, FileChanged):
            added, removed = diff_stats(event.diff)
            line = printable(f"  {self.symbols.edit} {event.path} (+{added} -{removed})")
            self.console.print(Text(line, "qd.file.changed"))
        elif isinstance(event, ContextCompacted):
            self.stream.finish()
            self.console.print(Text(f"{self.symbols.compacted} {event.description}", "qd.muted"))
        elif isinstance(event, TurnEnded):
            self.stream.finish()
            self.console.print(Text(summary(event.result, self.symbols), "qd.muted"))

    def _finished(self, event: ToolCallFinished) -> None:
        """``✓ name ok`` (or why not), then the end of a command's output, dimmed."""
        symbols = self.symbols
        symbol, style = {
            "ok": (symbols.ok, "qd.ok"),
            "denied": (symbols.failed, "qd.notice"),
            "error": (symbols.failed, "qd.error"),
        }[event.status]
        shown = event.status != "denied" and event.name in SHOWS_OUTPUT
        head, body = command_result(event.output) if shown else (_first_line(event.output), [])
        note = "" if event.status == "ok" else f": {head[:120]}"
        self.console.print(Text(printable(f"  {symbol} {event.name} {event.status}{note}"), style))
        if not body:
            return
        for line in body[-TAIL_LINES:]:
            text = Text(printable(f"    {symbols.bar} {line}"), "qd.muted", no_wrap=True)
            text.overflow = "ellipsis"
            self.console.print(text)
        if len(body) > TAIL_LINES:
            more = f"    {symbols.ellipsis} the last {TAIL_LINES} of {plural(len(body), 'line')}"
            self.console.print(Text(f"{more}: /output shows it all", "qd.muted"))

    def client_event(self, event: ClientEvent) -> None:
        """A retry, failover or breaker change: worth a line, unless it would land in
        the middle of an answer (the status bar shows it anyway)."""
        worth_a_line = isinstance(event, RetryScheduled | Failover | BreakerTransition)
        if worth_a_line and not self.stream.has_output:
            line = printable(f"{self.symbols.again} {event_line(event)}")
            self.console.print(Text(line, "qd.notice"))

    def interrupted(self) -> None:
        self.stream.interrupt()

    def failed(self, message: str) -> None:
        self.stream.finish()
        self.console.print(Text(f"{self.symbols.failed} {message}", "qd.failure"))


class _Footer:
    """The live region: the answer's unfinished tail, then the status line."""

    def __init__(self, view: TurnView) -> None:
        self._view = view

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self._view.stream.tail
        yield self._view.status.rich_text(options.max_width)


def summary(result: TurnResult, symbols: Symbols) -> str:
    """One muted line under an answer: who answered, what it cost."""
    parts = [
        f"{result.provider} {symbols.dot} {result.model}",
        plural(result.usage.total_tokens, "token"),
        f"{result.latency_ms / 1000:.1f}s",
    ]
    if result.attempts > 1:
        parts.append(plural(result.attempts, "attempt"))
    if result.tool_calls:
        parts.append(plural(len(result.tool_calls), "tool call"))
    if result.stopped == "max_steps":
        parts.append("stopped: step limit")
    cut = why_cut(result)
    if cut:
        parts.append(cut)
    return f"{symbols.rule} " + f" {symbols.dot} ".join(parts)


def command_result(output: str) -> tuple[str, list[str]]:
    """A command's result as the model is told it (``exit code N``, or that it timed
    out, then its output): that first line, and the output's lines (none for no
    output). A note that the user changed the command comes before, and is skipped."""
    lines = output.splitlines()
    if lines and lines[0].startswith("(the user changed the command to:"):
        lines = lines[1:]
    if not lines:
        return "", []
    body = lines[1:]
    while body and not body[-1].strip():
        body.pop()
    return lines[0], [] if body == ["(no output)"] else body


def _first_line(output: str) -> str:
    return output.strip().splitlines()[0] if output.strip() else ""


def _arguments(arguments: dict[str, Any], symbols: Symbols) -> str:
    shown = ", ".join(f"{key}={value!r}" for key, value in arguments.items())
    return shown if len(shown) <= 100 else shown[:99] + symbols.ellipsis


def set_echo(stream: TextIO, on: bool) -> None:
    """Turn a terminal's echo and line editing on or off (Ctrl-C still interrupts)."""
    try:
        import termios

        fd = stream.fileno()
        if not os.isatty(fd):
            return
        attrs = termios.tcgetattr(fd)
        flags = termios.ECHO | termios.ICANON
        attrs[3] = attrs[3] | flags if on else attrs[3] & ~flags
        termios.tcsetattr(fd, termios.TCSANOW, attrs)
    except (ImportError, OSError, ValueError):  # not a terminal, or not POSIX
        return


def terminal_input() -> TextIO | None:
    """Standard input when it is a terminal."""
    stdin = sys.stdin
    return stdin if stdin is not None and stdin.isatty() else None
