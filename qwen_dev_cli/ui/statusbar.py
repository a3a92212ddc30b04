"""The status bar: the client's health in one line, under the prompt and under a
streaming answer.

One model, two renderings: prompt-toolkit formatted text for the prompt's bottom
toolbar, and a rich ``Text`` for the footer shown while a turn streams. Colour marks
state, but every state is also spelled out, so the line reads the same without colour.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from ..core.events import (
    BreakerTransition,
    ClientEvent,
    Failover,
    RateLimitWait,
    RetryScheduled,
    describe,
)

if TYPE_CHECKING:
    from prompt_toolkit.formatted_text import StyleAndTextTuples
    from rich.table import Table
    from rich.text import Text

    from ..core.status import ClientStatus, ProviderStatus

Role = Literal[
    "closed", "open", "half", "cool", "dim", "active", "activity", "busy", "warn", "plain"
]
Fragment = tuple[Role, str]

#: How long a one-off event (a failover, a breaker transition) stays on the bar.
EVENT_SECONDS = 8.0
SEPARATOR: Fragment = ("dim", " │ ")
#: From this share of the context window on, ``ctx N%`` stands out (compaction is near).
CONTEXT_WARN = 0.7

#: prompt-toolkit style rules for the toolbar, by role.
TOOLBAR_STYLE: dict[str, str] = {
    "bottom-toolbar": "noreverse bg:#1c1c1c #bcbcbc",
    "status.closed": "fg:ansigreen",
    "status.open": "fg:ansired bold",
    "status.half": "fg:ansiyellow",
    "status.cool": "fg:ansiyellow",
    "status.dim": "fg:#808080",
    "status.active": "fg:ansicyan",
    "status.activity": "fg:ansimagenta bold",
    "status.busy": "fg:ansiblue",
    "status.warn": "fg:ansiyellow bold",
    "status.plain": "",
}

#: rich styles for the footer, by role.
RICH_STYLE: dict[Role, str] = {
    "closed": "green",
    "open": "bold red",
    "half": "yellow",
    "cool": "yellow",
    "dim": "dim",
    "active": "cyan",
    "activity": "bold magenta",
    "busy": "blue",
    "warn": "bold yellow",
    "plain": "",
}

_STATE_ROLE: dict[str, Role] = {"CLOSED": "closed", "OPEN": "open", "HALF_OPEN": "half"}
_STATE_MARK = {"CLOSED": "●", "OPEN": "○", "HALF_OPEN": "◐"}


@dataclass(frozen=True)
class _Noted:
    event: ClientEvent
    at: float


class StatusBar:
    """What the client is doing and how healthy each provider is, as one line.

    Args:
        status: returns the client's current status (a callable, because the REPL may
            replace its client with ``/model`` or ``/provider``).
        extra_tokens: tokens used by clients this session replaced, added to the count.
        context: the share of the active provider's context window the conversation
            takes (0-1), ``None`` while unknown: shown as ``ctx N%``.
        clock: monotonic seconds (injectable for tests).
    """

    def __init__(
        self,
        status: Callable[[], ClientStatus],
        *,
        extra_tokens: Callable[[], int] = lambda: 0,
        context: Callable[[], float | None] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._status = status
        self._extra_tokens = extra_tokens
        self._context = context
        self._clock = clock
        self._noted: _Noted | None = None
        self._turn_started: float | None = None

    # --- inputs -----------------------------------------------------------------------

    def on_event(self, event: ClientEvent) -> None:
        """A client listener: remember the latest event worth showing."""
        if isinstance(event, RetryScheduled | Failover | RateLimitWait | BreakerTransition):
            self._noted = _Noted(event, self._clock())

    def turn_started(self) -> None:
        self._turn_started = self._clock()
        self._noted = None

    def turn_finished(self) -> None:
        self._turn_started = None
        self._noted = None

    # --- the line ---------------------------------------------------------------------

    def fragments(self) -> list[Fragment]:
        """The line as ``(role, text)`` pieces."""
        status = self._status()
        now = self._clock()
        parts: list[list[Fragment]] = []
        activity = self._activity(status, now)
        if activity is not None:
            parts.append([activity])
        parts.append(_providers(status.providers))
        parts.append([("active", _active(status))])
        tokens = status.session_tokens + self._extra_tokens()
        usage: list[Fragment] = [("dim", f"{tokens:,} tok")]
        share = self._context()
        if share is not None:
            usage.append(("warn" if share >= CONTEXT_WARN else "dim", f" ctx {share:.0%}"))
        parts.append(usage)
        parts.append([_store(status)])
        line: list[Fragment] = []
        for index, part in enumerate(parts):
            if index:
                line.append(SEPARATOR)
            line.extend(part)
        return line

    def plain(self) -> str:
        """The line without styles."""
        return "".join(text for _, text in self.fragments())

    def toolbar(self) -> StyleAndTextTuples:
        """prompt-toolkit formatted text (use :data:`TOOLBAR_STYLE` for the colours)."""
        return [(f"class:status.{role}", text) for role, text in self.fragments()]

    def rich_text(self) -> Text:
        from rich.text import Text

        text = Text(no_wrap=True, overflow="ellipsis")
        for role, piece in self.fragments():
            text.append(piece, RICH_STYLE[role])
        return text

    def _activity(self, status: ClientStatus, now: float) -> Fragment | None:
        noted = self._noted
        if noted is not None:
            left = now - noted.at
            event = noted.event
            if isinstance(event, RetryScheduled) and left < event.delay:
                remaining = event.delay - left
                return (
                    "activity",
                    f"retry {event.retry}/{event.max_retries} in {remaining:.1f}s ({event.reason})",
                )
            if isinstance(event, RateLimitWait) and left < event.delay:
                return ("activity", f"rate limit: {event.provider} in {event.delay - left:.1f}s")
            if isinstance(event, Failover | BreakerTransition) and left < EVENT_SECONDS:
                return ("activity", describe(event).split(" (")[0])
        if status.activity:
            return ("activity", status.activity)
        if self._turn_started is not None:
            return ("busy", f"working {now - self._turn_started:.0f}s")
        return None


def _providers(providers: list[ProviderStatus]) -> list[Fragment]:
    out: list[Fragment] = []
    for index, provider in enumerate(providers):
        if index:
            out.append(("dim", "  "))
        role = _STATE_ROLE.get(provider.state, "plain")
        state = provider.state
        if state == "OPEN":
            state += f" {provider.retry_in:.0f}s"
        out.append((role, f"{_STATE_MARK.get(provider.state, '?')} {provider.name} {state}"))
        if provider.cooldown > 0:
            out.append(("cool", f" cooldown {provider.cooldown:.0f}s"))
        out.extend(_budget(provider))
    return out


def _budget(provider: ProviderStatus) -> list[Fragment]:
    out: list[Fragment] = []
    if provider.rpm_limit is not None and provider.rpm_left is not None:
        out.append(("dim", f" rpm {provider.rpm_left}/{provider.rpm_limit}"))
    if provider.tpm_limit is not None and provider.tpm_left is not None:
        out.append(("dim", f" tpm {compact(provider.tpm_left)}/{compact(provider.tpm_limit)}"))
    return out


def _unshared(status: ClientStatus) -> bool:
    """A shared store failed: this process counts its budget alone for now."""
    return status.store != "memory" and not status.store_shared


def _store(status: ClientStatus) -> Fragment:
    """Where the budget lives: ``budget: local``, or ``budget: per-process!``."""
    if _unshared(status):
        return ("warn", "budget: per-process!")
    return ("dim", f"budget: {status.store}")


def store_line(status: ClientStatus) -> str:
    """``/status``: the store, where it is, and who shares it."""
    if status.store == "memory":
        sharing = "not shared with other processes"
    elif _unshared(status):
        sharing = "unavailable: budgets and breakers per process until it is back"
    elif status.store == "local":
        sharing = "shared by every process on this machine"
    else:
        sharing = "shared by every machine using it"
    return f"budget store: {status.store} · {status.store_location} ({sharing})"


def _active(status: ClientStatus) -> str:
    if status.active_provider is not None:
        return f"{status.active_provider} · {status.active_model}"
    if status.providers:
        first = status.providers[0]
        return f"{first.name} · {first.model}"
    return "no provider"


def compact(number: int) -> str:
    """``9200`` -> ``9.2k``: budgets stay short."""
    if abs(number) >= 10_000:
        return f"{number / 1000:.0f}k"
    if abs(number) >= 1000:
        return f"{number / 1000:.1f}k"
    return str(number)


def status_table(status: ClientStatus) -> Table:
    """``/status``: each provider's breaker, cool-down and budgets in full, and where
    they are kept."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title="Providers", title_justify="left")
    for column in ("provider", "model", "breaker", "cool-down", "rpm left", "tpm left", "recent"):
        table.add_column(column, justify="right" if column.endswith(("left", "recent")) else "left")
    for provider in status.providers:
        state = provider.state
        if state == "OPEN":
            state += f" (trial in {provider.retry_in:.1f}s)"
        role = _STATE_ROLE.get(provider.state, "plain")
        table.add_row(
            provider.name,
            provider.model,
            f"[{RICH_STYLE[role]}]{state}[/]" if RICH_STYLE[role] else state,
            f"{provider.cooldown:.1f}s" if provider.cooldown > 0 else "-",
            _left(provider.rpm_left, provider.rpm_limit),
            _left(provider.tpm_left, provider.tpm_limit),
            "-" if provider.success_rate is None else f"{provider.success_rate:.0%} ok",
        )
    active = f"{status.active_provider} · {status.active_model}" if status.active_provider else "-"
    # Text, not markup: a path or an activity may hold square brackets.
    table.caption = Text.assemble(
        f"active: {active}   activity: {status.activity or 'idle'}   "
        f"tokens this session: {status.session_tokens:,}\n",
        (store_line(status), RICH_STYLE["warn"] if _unshared(status) else ""),
    )
    table.caption_justify = "left"
    return table


def _left(left: int | None, limit: int | None) -> str:
    if limit is None or left is None:
        return "unlimited"
    return f"{left:,} / {limit:,}"
