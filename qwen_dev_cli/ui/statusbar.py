"""The status bar: the client's health in one line, under the prompt and under a
streaming answer.

One model, two renderings: prompt-toolkit formatted text for the prompt's bottom
toolbar, and a rich ``Text`` for the footer shown while a turn streams. Colour marks
state, but every state is also spelled out, so the line reads the same without colour.

The line is made to fit the terminal, never cut: it is built from segments (what is
happening, the providers, the active model, tokens and context, the budget store),
each with shorter forms, and shortened by priority until it fits: the least useful
detail goes first (the store, budgets, healthy providers), the model and the token
count last. Only a single segment wider than the whole terminal loses words, whole
ones, at its end.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rich.cells import cell_len

from ..core.events import (
    BreakerTransition,
    ClientEvent,
    Failover,
    RateLimitWait,
    RetryScheduled,
)
from ..words import plural
from .symbols import UNICODE, Symbols
from .theme import breaker_style

if TYPE_CHECKING:
    from prompt_toolkit.formatted_text import StyleAndTextTuples
    from rich.table import Table
    from rich.text import Text

    from ..core.status import ClientStatus, ProviderStatus

#: A piece of the line: the name of its style (see :mod:`.theme`), and its text.
Fragment = tuple[str, str]
#: One way to show a segment; empty: the segment is left out.
Form = tuple[Fragment, ...]

#: How long a one-off event (a failover, a breaker transition) stays on the bar.
EVENT_SECONDS = 8.0
#: From this share of the context window on, ``ctx N%`` stands out (compaction is near).
CONTEXT_WARN = 0.7
#: A CLOSED provider whose recent success rate is below this is shown with it, styled
#: as degraded: it is being demoted (tried after the others), though its breaker is closed.
HEALTHY = 0.8

#: The order segments are shortened in, one step at a time, until the line fits: each
#: entry moves that segment to its next shorter form (left out, at the end of its forms).
_SHORTEN_ORDER = (
    "store",  # budget: local -> left out
    "providers",  # -> without rpm/tpm budgets
    "providers",  # -> healthy ones by name only
    "providers",  # -> those that are not healthy, and how many others are ("+3 ok")
    "activity",  # -> without its reason
    "usage",  # 12,345 tok -> 12k tok
    "model",  # beta · beta-model -> beta-model
    "providers",  # -> those that are not healthy
    "providers",  # -> the first of them, and how many others there are
    "providers",  # -> the first of them
    "providers",  # -> left out
    "store",  # budget: per-process! -> per-process!
)
#: Who gets room back first when the shortening went further than it had to.
_GROW_BACK_ORDER = ("model", "usage", "activity", "providers", "store")
#: The reasons (the client's words) a provider is passed over without being tried.
_SKIPPED_BECAUSE = frozenset({"circuit open", "cooling down"})
#: When every segment is at its shortest: which are left out first.
_DROP_ORDER = ("store", "providers", "usage", "model", "activity")


@dataclass(frozen=True)
class _Noted:
    event: ClientEvent
    at: float


@dataclass
class _Segment:
    name: str
    forms: list[Form]
    step: int = 0
    dropped: bool = False

    @property
    def shown(self) -> Form:
        return () if self.dropped else self.forms[self.step]

    def shorten(self) -> bool:
        if self.step + 1 < len(self.forms):
            self.step += 1
            return True
        return False


@dataclass
class _Line:
    segments: list[_Segment] = field(default_factory=list)
    separator: Fragment = ("qd.muted", " │ ")

    def fragments(self) -> list[Fragment]:
        line: list[Fragment] = []
        for form in (segment.shown for segment in self.segments):
            if not form:
                continue
            if line:
                line.append(self.separator)
            line.extend(form)
        return line

    def width(self) -> int:
        return sum(cell_len(text) for _, text in self.fragments())

    def segment(self, name: str) -> _Segment | None:
        return next((s for s in self.segments if s.name == name), None)

    def fit(self, width: int, ellipsis: str) -> list[Fragment]:
        """Shorten by priority until the line is at most ``width`` cells wide."""
        for name in _SHORTEN_ORDER:
            if self.width() <= width:
                return self._grow_back(width)
            segment = self.segment(name)
            if segment is not None:
                segment.shorten()
        for name in _DROP_ORDER:
            if self.width() <= width:
                return self.fragments()
            shown = [s for s in self.segments if s.shown]
            segment = self.segment(name)
            if segment is not None and len(shown) > 1:
                segment.dropped = True
        line = self.fragments()
        if self.width() <= width:
            return line
        return _trim_words(line, width, ellipsis)

    def _grow_back(self, width: int) -> list[Fragment]:
        """Give back what room is left, to the most useful segments first."""
        for name in _GROW_BACK_ORDER:
            segment = self.segment(name)
            while segment is not None and segment.step > 0:
                segment.step -= 1
                if self.width() > width:
                    segment.step += 1
                    break
        return self.fragments()


def _trim_words(line: list[Fragment], width: int, ellipsis: str) -> list[Fragment]:
    """The line cut after its last whole word that fits, with ``ellipsis``."""
    room = width - cell_len(ellipsis)
    kept: list[Fragment] = []
    used = 0
    for role, text in line:
        if used + cell_len(text) <= room:
            kept.append((role, text))
            used += cell_len(text)
            continue
        words = text.split(" ")
        fitting = ""
        for count in range(len(words), 0, -1):
            candidate = " ".join(words[:count]).rstrip()
            if candidate and used + cell_len(candidate) <= room:
                fitting = candidate
                break
        if fitting:
            kept.append((role, fitting))
        break
    if not kept:
        return []
    kept.append((kept[-1][0], ellipsis))
    return kept


class StatusBar:
    """What the client is doing and how healthy each provider is, as one line.

    Args:
        status: returns the client's current status (a callable, because the REPL may
            replace its client with ``/model`` or ``/provider``).
        extra_tokens: tokens used by clients this session replaced, added to the count.
        context: the share of the active provider's context window the conversation
            takes (0-1), ``None`` while unknown: shown as ``ctx N%``.
        clock: monotonic seconds (injectable for tests).
        symbols: the characters to draw with (ASCII on terminals that need it).
        width: the terminal's width in cells, for the toolbar (default: the width of
            the running prompt-toolkit application's output).
    """

    def __init__(
        self,
        status: Callable[[], ClientStatus],
        *,
        extra_tokens: Callable[[], int] = lambda: 0,
        context: Callable[[], float | None] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
        symbols: Symbols = UNICODE,
        width: Callable[[], int] | None = None,
    ) -> None:
        self._status = status
        self._extra_tokens = extra_tokens
        self._context = context
        self._clock = clock
        self.symbols = symbols
        self._width = width or _application_width
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

    def fragments(self, width: int | None = None) -> list[Fragment]:
        """The line as ``(role, text)`` pieces, at most ``width`` cells wide (``None``:
        in full)."""
        line = self._line()
        if width is None:
            return line.fragments()
        return line.fit(width, self.symbols.ellipsis)

    def plain(self, width: int | None = None) -> str:
        """The line without styles."""
        return "".join(text for _, text in self.fragments(width))

    def toolbar(self) -> StyleAndTextTuples:
        """prompt-toolkit formatted text (styled by :func:`~.theme.prompt_style`),
        fitted to the terminal (a cell spare: writing the last one may scroll it)."""
        width = max(self._width() - 1, 1)
        return [(f"class:{style}", text) for style, text in self.fragments(width)]

    def rich_text(self, width: int | None = None) -> Text:
        from rich.text import Text

        text = Text(no_wrap=True, overflow="ellipsis")
        for role, piece in self.fragments(width):
            text.append(piece, role)
        return text

    def _line(self) -> _Line:
        status = self._status()
        symbols = self.symbols
        line = _Line(separator=("qd.muted", f" {symbols.bar} "))
        activity = self._activity(status, self._clock())
        if activity:
            line.segments.append(_Segment("activity", activity))
        providers = _provider_forms(status.providers, symbols)
        if providers:
            line.segments.append(_Segment("providers", providers))
        line.segments.append(_Segment("model", _model_forms(status, symbols)))
        line.segments.append(_Segment("usage", self._usage_forms(status)))
        line.segments.append(_Segment("store", _store_forms(status)))
        return line

    def _usage_forms(self, status: ClientStatus) -> list[Form]:
        tokens = status.session_tokens + self._extra_tokens()
        share = self._context()
        ctx: Form = ()
        if share is not None:
            ctx = (("qd.warning" if share >= CONTEXT_WARN else "qd.muted", f" ctx {share:.0%}"),)
        full: Form = (("qd.muted", f"{tokens:,} tok"), *ctx)
        short: Form = (("qd.muted", f"{compact(tokens)} tok"), *ctx)
        return [full] if full == short else [full, short]

    def _activity(self, status: ClientStatus, now: float) -> list[Form]:
        """What is happening now, in full then shorter (none: nothing special)."""
        noted = self._noted
        if noted is not None:
            forms = _event_forms(noted.event, now - noted.at)
            if forms:
                return [(("qd.activity", text),) for text in forms]
        if status.activity:
            full = status.activity
            short = full.split(" (")[0]
            texts = [full] if short == full else [full, short]
            return [(("qd.activity", text),) for text in texts]
        if self._turn_started is not None:
            return [(("qd.busy", f"working {now - self._turn_started:.0f}s"),)]
        return []


def _application_width() -> int:
    from prompt_toolkit.application import get_app

    return get_app().output.get_size().columns


def _event_forms(event: ClientEvent, elapsed: float) -> list[str]:
    """The bar's words for a recent client event, in full then short; none once it is
    over (a countdown that ran out, an event shown long enough)."""
    if isinstance(event, RetryScheduled):
        if elapsed >= event.delay:
            return []
        retry = f"retry {event.retry}/{event.max_retries} in {event.delay - elapsed:.1f}s"
        return [f"{retry} ({event.reason})", retry]
    if isinstance(event, RateLimitWait):
        if elapsed >= event.delay:
            return []
        return [f"rate limit: {event.provider} in {event.delay - elapsed:.1f}s", "rate limit"]
    if elapsed >= EVENT_SECONDS:
        return []
    if isinstance(event, Failover):
        why = event.reason if event.reason in _SKIPPED_BECAUSE else "failed"
        return [event_line(event), f"{event.from_provider} {why}, trying {event.to_provider}"]
    if isinstance(event, BreakerTransition):
        line = event_line(event)
        return [line, line.split(":")[0]]
    return []


def event_line(event: ClientEvent) -> str:
    """One line saying what the client did and why, for a person: ``alpha 503
    unavailable, trying beta``; ``alpha circuit open``. Empty for routine events."""
    if isinstance(event, RetryScheduled):
        return f"retry {event.retry}/{event.max_retries} in {event.delay:.1f}s ({event.reason})"
    if isinstance(event, Failover):
        if event.reason in _SKIPPED_BECAUSE:  # it was not tried: it did not fail
            return f"{event.from_provider} {event.reason}, trying {event.to_provider}"
        return f"{event.from_provider} failed ({event.reason}), trying {event.to_provider}"
    if isinstance(event, BreakerTransition):
        if event.new == "OPEN":
            return f"{event.provider} circuit open: skipped until its trial call"
        if event.new == "HALF_OPEN":
            return f"{event.provider} circuit half-open: trial calls"
        return f"{event.provider} circuit closed: healthy again"
    if isinstance(event, RateLimitWait):
        return f"rate limit: waiting {event.delay:.1f}s for {event.provider}"
    return ""


def _healthy(provider: ProviderStatus) -> bool:
    return (
        provider.state == "CLOSED"
        and provider.cooldown <= 0
        and (provider.success_rate is None or provider.success_rate >= HEALTHY)
    )


def _mark(provider: ProviderStatus, symbols: Symbols) -> str:
    return {"CLOSED": symbols.closed, "OPEN": symbols.open, "HALF_OPEN": symbols.half_open}.get(
        provider.state, "?"
    )


def _provider(
    provider: ProviderStatus, symbols: Symbols, *, budgets: bool, terse: bool
) -> list[Fragment]:
    """One provider: its mark, name and state (``terse``: the state only when it is not
    healthy), cool-down, and budgets."""
    mark = _mark(provider, symbols)
    state = provider.state
    role = breaker_style(state)
    rate = provider.success_rate
    if state == "OPEN":
        state += f" {provider.retry_in:.0f}s"
    elif state == "CLOSED" and rate is not None and rate < HEALTHY:
        state, role = f"{rate:.0%} ok", "qd.provider.degraded"
    elif state == "CLOSED" and terse:
        state = ""
    out: list[Fragment] = [(role, f"{mark} {provider.name}" + (f" {state}" if state else ""))]
    if provider.cooldown > 0:
        out.append(("qd.provider.cooling", f" cooldown {provider.cooldown:.0f}s"))
    if budgets:
        out.extend(_budget(provider))
    return out


def _provider_forms(providers: Sequence[ProviderStatus], symbols: Symbols) -> list[Form]:
    """The providers at each level of :data:`_SHORTEN_ORDER` (a level that changes
    nothing here repeats the one before, so the levels stay aligned)."""
    if not providers:
        return []

    def joined(pieces: list[list[Fragment]]) -> Form:
        out: list[Fragment] = []
        for index, piece in enumerate(pieces):
            if index:
                out.append(("qd.muted", "  "))
            out.extend(piece)
        return tuple(out)

    def each(
        chosen: Sequence[ProviderStatus], *, budgets: bool, terse: bool
    ) -> list[list[Fragment]]:
        return [_provider(p, symbols, budgets=budgets, terse=terse) for p in chosen]

    troubled = [p for p in providers if not _healthy(p)]
    healthy = len(providers) - len(troubled)
    terse = joined(each(providers, budgets=False, terse=True))
    if not troubled:
        counted: Form = (
            ("qd.provider.closed", f"{symbols.closed} {plural(len(providers), 'provider')} ok"),
        )
        summary = counted if len(providers) > 1 else terse
        worst: Form = summary
        only_troubled: Form = summary
        first = summary
    else:
        others: list[list[Fragment]] = (
            [[("qd.provider.closed", f"+{healthy} ok")]] if healthy else []
        )
        summary = joined(each(troubled, budgets=False, terse=True) + others)
        only_troubled = joined(each(troubled, budgets=False, terse=True))
        hidden = len(providers) - 1
        more: list[list[Fragment]] = [[("qd.muted", f"+{hidden} more")]] if hidden else []
        first = joined(each(troubled[:1], budgets=False, terse=True))
        worst = joined(each(troubled[:1], budgets=False, terse=True) + more)
    return [
        joined(each(providers, budgets=True, terse=False)),
        joined(each(providers, budgets=False, terse=False)),
        terse,
        summary,
        only_troubled,
        worst,
        first,
        (),
    ]


def _budget(provider: ProviderStatus) -> list[Fragment]:
    out: list[Fragment] = []
    if provider.rpm_limit is not None and provider.rpm_left is not None:
        out.append(("qd.muted", f" rpm {provider.rpm_left}/{provider.rpm_limit}"))
    if provider.tpm_limit is not None and provider.tpm_left is not None:
        out.append(("qd.muted", f" tpm {compact(provider.tpm_left)}/{compact(provider.tpm_limit)}"))
    return out


def _model_forms(status: ClientStatus, symbols: Symbols) -> list[Form]:
    if status.active_provider is not None:
        name, model = status.active_provider, status.active_model or ""
    elif status.providers:
        name, model = status.providers[0].name, status.providers[0].model
    else:
        return [(("qd.model", "no provider"),)]
    full: Form = (("qd.model", f"{name} {symbols.dot} {model}"),)
    return [full, (("qd.model", model),)] if model else [(("qd.model", name),)]


def _store_forms(status: ClientStatus) -> list[Form]:
    """Where the budget lives: ``budget: local``; ``budget: per-process!`` when a shared
    store failed (shortened, but kept until the very last)."""
    if _unshared(status):
        warning: Form = (("qd.warning", "budget: per-process!"),)
        # Twice: the first shortening of the store leaves a warning as it is.
        return [warning, warning, (("qd.warning", "per-process!"),)]
    return [(("qd.muted", f"budget: {status.store}"),), ()]


def _unshared(status: ClientStatus) -> bool:
    """A shared store failed: this process counts its budget alone for now."""
    return status.store != "memory" and not status.store_shared


def store_line(status: ClientStatus, symbols: Symbols = UNICODE) -> str:
    """``/status``: the store, where it is, and who shares it."""
    if status.store == "memory":
        sharing = "not shared with other processes"
    elif _unshared(status):
        sharing = "unavailable: budgets and breakers per process until it is back"
    elif status.store == "local":
        sharing = "shared by every process on this machine"
    else:
        sharing = "shared by every machine using it"
    return f"budget store: {status.store} {symbols.dot} {status.store_location} ({sharing})"


def compact(number: int) -> str:
    """``9200`` -> ``9.2k``: budgets stay short."""
    if abs(number) >= 10_000:
        return f"{number / 1000:.0f}k"
    if abs(number) >= 1000:
        return f"{number / 1000:.1f}k"
    return str(number)


def status_table(status: ClientStatus, symbols: Symbols = UNICODE) -> Table:
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
        table.add_row(
            provider.name,
            provider.model,
            Text(state, breaker_style(provider.state)),
            f"{provider.cooldown:.1f}s" if provider.cooldown > 0 else "-",
            _left(provider.rpm_left, provider.rpm_limit),
            _left(provider.tpm_left, provider.tpm_limit),
            "-" if provider.success_rate is None else f"{provider.success_rate:.0%} ok",
        )
    active = "-"
    if status.active_provider:
        active = f"{status.active_provider} {symbols.dot} {status.active_model}"
    # Text, not markup: a path or an activity may hold square brackets.
    table.caption = Text.assemble(
        f"active: {active}   activity: {status.activity or 'idle'}   "
        f"tokens this session: {status.session_tokens:,}\n",
        (store_line(status, symbols), "qd.warning" if _unshared(status) else ""),
    )
    table.caption_justify = "left"
    return table


def _left(left: int | None, limit: int | None) -> str:
    if limit is None or left is None:
        return "unlimited"
    return f"{left:,} / {limit:,}"
