"""How a running batch shows its progress.

On a terminal, :class:`LiveProgress`: a rich ``Live`` display redrawn a few times a
second: done/total with a bar and the ETA, ok/failed, the pace, each provider's breaker
and its account's budget (requests and tokens spent in the current minute, by every
process sharing it), and any wait in progress. Elsewhere (a log file, CI),
:class:`PlainProgress`: one short line every ``every`` seconds. Both read the run's
:class:`~qwen_dev_cli.batch.tally.Tally` and the client's status; both take their
output and their clock.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TextIO

from rich.console import Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from ..ui.theme import breaker_style
from .tally import Tally, amount, duration

if TYPE_CHECKING:
    from types import TracebackType

    from rich.console import Console, RenderableType

    from ..core.status import ClientStatus, ProviderStatus

StatusSource = Callable[[], "ClientStatus"]


def budget(status: ClientStatus) -> tuple[int | None, int | None]:
    """The requests per minute of every provider together and what is left of them in
    the current window; ``None`` when any provider is unlimited."""
    limits = [p.rpm_limit for p in status.providers]
    if not limits or any(limit is None for limit in limits):
        return None, None
    left = sum(p.rpm_left if p.rpm_left is not None else p.rpm_limit or 0 for p in status.providers)
    return sum(limit or 0 for limit in limits), left


def eta_text(tally: Tally, status: ClientStatus) -> str:
    seconds = tally.eta(*budget(status))
    return "ETA ?" if seconds is None else f"ETA {duration(seconds)}"


def counts_text(tally: Tally) -> str:
    finished = tally.skipped + tally.done
    percent = 100 * finished // tally.total if tally.total else 100
    return f"{finished}/{tally.total} ({percent}%)"


def provider_text(provider: ProviderStatus) -> str:
    """``lab CLOSED, 118/120 requests, 23.4k/100.0k tokens this minute``."""
    parts = [f"{provider.name} {provider.state}"]
    if provider.state == "OPEN" and provider.retry_in > 0:
        parts[0] += f" (trial in {duration(provider.retry_in)})"
    if provider.cooldown > 0:
        parts.append(f"cooling down {duration(provider.cooldown)}")
    spent = []
    if provider.rpm_limit is not None and provider.rpm_left is not None:
        spent.append(f"{provider.rpm_limit - provider.rpm_left}/{provider.rpm_limit} requests")
    if provider.tpm_limit is not None and provider.tpm_left is not None:
        used = provider.tpm_limit - provider.tpm_left
        spent.append(f"{amount(used)}/{amount(provider.tpm_limit)} tokens")
    if spent:
        parts.append(", ".join(spent) + " this minute")
    return ", ".join(parts)


def progress_line(tally: Tally, status: ClientStatus) -> str:
    """One plain line: where the batch is, its pace, the ETA, any wait or stop."""
    prompts, tokens = tally.per_minute()
    line = (
        f"{counts_text(tally)} done: {tally.ok} ok, {tally.failed} failed, "
        f"{tally.in_flight} in flight; {prompts:.1f} prompts/min, {amount(tokens)} tokens/min; "
        f"{eta_text(tally, status)}"
    )
    wait = tally.waiting()
    if wait is not None:
        line += f"; waiting {duration(tally.wait_left(wait))} ({wait.reason})"
    sick = [p for p in status.providers if p.state != "CLOSED" or p.cooldown > 0]
    if sick:
        line += "; " + "; ".join(provider_text(p) for p in sick)
    if tally.note:
        line += f"; {tally.note}"
    return line


class LiveProgress:
    """The live display of a batch on a terminal: enter it, and :meth:`run` it as a task.

    It is redrawn from the event loop (not rich's refresh thread), so the tally and the
    client's status are read where they change, and the status refreshes itself from
    the state store (budgets spent by other processes included).

    Args:
        tally: the run's counts.
        status: returns the client's status (breakers, budgets).
        console: where to draw (stderr's console: stdout may carry ``--json``).
        refresh_per_second: redraws per second.
        sleep: how to wait between redraws (injectable).
    """

    def __init__(
        self,
        tally: Tally,
        status: StatusSource,
        *,
        console: Console,
        refresh_per_second: float = 4,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.tally = tally
        self.status = status
        self.console = console
        self._interval = 1.0 / refresh_per_second
        self._sleep = sleep
        self._live = Live(
            console=console,
            get_renderable=self.render,
            auto_refresh=False,
            redirect_stdout=False,
            redirect_stderr=True,
        )

    def __enter__(self) -> LiveProgress:
        self._live.start(refresh=True)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._live.stop()  # drawn once more: the final counts stay on the screen

    async def run(self) -> None:
        """Redraw until cancelled."""
        while True:
            await self._sleep(self._interval)
            self._live.refresh()

    def render(self) -> RenderableType:
        tally, status = self.tally, self.status()
        head = Table.grid(padding=(0, 1))
        head.add_row(
            ProgressBar(total=max(1, tally.total), completed=tally.skipped + tally.done, width=40),
            Text(counts_text(tally), style="qd.progress"),
            Text(eta_text(tally, status), style="qd.eta"),
        )
        prompts, tokens = tally.per_minute()
        counts = Text.assemble(
            ("ok ", "qd.muted"),
            (str(tally.ok), "qd.ok"),
            ("  failed ", "qd.muted"),
            (str(tally.failed), "qd.error" if tally.failed else ""),
            ("  in flight ", "qd.muted"),
            str(tally.in_flight),
            ("  skipped ", "qd.muted"),
            str(tally.skipped),
            ("  pace ", "qd.muted"),
            f"{prompts:.1f} prompts/min, {amount(tokens)} tokens/min",
            ("  elapsed ", "qd.muted"),
            duration(tally.elapsed),
        )
        rows: list[RenderableType] = [head, counts]
        providers = Table.grid(padding=(0, 2))
        for provider in status.providers:
            name, _, rest = provider_text(provider).partition(" ")
            state = Text(rest, style=breaker_style(provider.state))
            providers.add_row(Text(name, style="qd.name"), state)
        rows.append(providers)
        wait = tally.waiting()
        if wait is not None:
            left = duration(tally.wait_left(wait))
            rows.append(Text(f"waiting {left}: {wait.reason}", style="qd.warning"))
        if tally.note:
            rows.append(Text(tally.note, style="qd.activity"))
        return Group(*rows)


class PlainProgress:
    """One progress line to ``err`` every ``every`` seconds, for logs and pipes.

    Args:
        tally: the run's counts.
        status: returns the client's status.
        err: where lines go.
        every: seconds between lines.
        sleep: how to wait (injectable).
    """

    def __init__(
        self,
        tally: Tally,
        status: StatusSource,
        *,
        err: TextIO,
        every: float = 30.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        get_time: Callable[[], float] = time.monotonic,
    ) -> None:
        self.tally = tally
        self.status = status
        self.err = err
        self.every = every
        self._sleep = sleep
        self._get_time = get_time

    async def run(self) -> None:
        """Report every ``every`` seconds until cancelled."""
        next_at = self._get_time() + self.every
        while True:
            await self._sleep(max(0.0, next_at - self._get_time()))
            next_at += self.every
            self.report()

    def report(self) -> None:
        self.err.write(f"qwen-dev batch: {progress_line(self.tally, self.status())}\n")
        self.err.flush()
