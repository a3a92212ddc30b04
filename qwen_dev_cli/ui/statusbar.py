"""The status bar: the client's health in one line, under the prompt and under a
streaming answer.

One model, two renderings: prompt-toolkit formatted text for the prompt's bottom
toolbar, and a rich ``Text`` for the footer shown while a turn streams. Colour marks
state, but every state is also spelled out, so the line reads the same without colour.

The line is made to fit the terminal, never cut: it is built from segments (what is
happening, the providers, the active model, tokens and context, the budget store),
each with shorter forms that say which :class:`Detail` they lose, and shortened by
the usefulness of that detail until it fits, whatever the segment's place on the
line: the least useful goes first (the store, budgets, healthy providers), the model
and the token count last. Only a single segment wider than the whole terminal loses
words, whole ones, at its end.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import TYPE_CHECKING

from rich.cells import cell_len

from ..core.account import RETRY_FLOOR
from ..core.events import (
    AttemptStarted,
    BreakerTransition,
    ClientEvent,
    Failover,
    QuotaExhausted,
    RateLimitWait,
    RetryBudgetSpent,
    RetryScheduled,
    Throttled,
)
from ..plurals import plural
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
#: The reasons (the client's words) a provider is passed over without being tried.
_SKIPPED_BECAUSE = frozenset({"circuit open", "cooling down"})


class Detail(IntEnum):
    """What a shorter form of a segment leaves out, from the least useful to the most.

    A line too wide for the terminal loses the least useful detail first, whatever
    segment holds it; room left over goes back to the most useful first.
    """

    STORE = 10  # budget: local -> left out (a warning about it is kept: STORE_WARNING)
    BUDGETS = 20  # each provider's rpm/tpm left
    HEALTHY_STATES = 30  # "CLOSED" after a healthy provider's name
    HEALTHY_NAMES = 40  # the healthy providers by name -> how many ("+3 ok")
    REASON = 50  # why the client is doing what it does: retry 2/3 in 3.1s (429...)
    EXACT_TOKENS = 60  # 12,345 tok -> 12k tok
    MODEL_PROVIDER = 70  # beta · beta-model -> beta-model
    HEALTHY_COUNT = 80  # the "+3 ok" after the providers that are not healthy
    TROUBLED_OTHERS = 90  # those after the first -> how many others ("+4 more")
    MORE_COUNT = 100  # the "+4 more"
    PROVIDERS = 110  # the first provider that is not healthy: the providers left out
    STORE_WARNING_WORDS = 120  # budget: per-process! -> per-process!
    STORE_WARNING = 130  # per-process! -> left out
    APPROVAL_WORD = 132  # approval yolo -> yolo
    MCP = 135  # mcp 2/3 (servers ready/started, while starting or one failed), left out
    TOKENS = 140  # the token count and context share, left out
    APPROVAL = 145  # the approval mode, left out
    MODEL = 150  # the model, left out
    ACTIVITY = 160  # what is happening, left out


@dataclass(frozen=True)
class Shorter:
    """A shorter form of a segment (empty: the segment left out), and the detail it
    loses compared with the form before it."""

    loses: Detail
    form: Form


@dataclass
class Segment:
    """One part of the line (what is happening, the providers, the model, the tokens,
    the budget store): its full form, then shorter ones, each losing a more useful
    detail than the one before.

    Args:
        name: what the segment shows.
        full: its full form.
        shorter: its shorter forms, in order; one that shows the same as the form
            before it is dropped, so each step changes what is shown.
    """

    name: str
    full: Form
    shorter: tuple[Shorter, ...] = ()
    #: How many of the shorter forms in it is shown (set by :meth:`Line.fit`).
    step: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        kept: list[Shorter] = []
        for shorter in self.shorter:
            previous = kept[-1].form if kept else self.full
            if shorter.form != previous:
                kept.append(shorter)
        self.shorter = tuple(kept)
        details = [shorter.loses for shorter in self.shorter]
        if details != sorted(set(details)):
            raise ValueError(f"{self.name}: each shorter form must lose a more useful detail")

    @property
    def shown(self) -> Form:
        return self.shorter[self.step - 1].form if self.step else self.full

    @property
    def next(self) -> Shorter | None:
        """The next shorter form, if there is one."""
        return self.shorter[self.step] if self.step < len(self.shorter) else None


@dataclass
class Line:
    """Segments joined by a separator, fitted to a width by :meth:`fit`."""

    segments: list[Segment] = field(default_factory=list)
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

    def fit(self, width: int, ellipsis: str) -> list[Fragment]:
        """The line at most ``width`` cells wide: shortened one detail at a time, the
        least useful first, then given back what room is left, the most useful first.
        The last segment shown is never left out: if even it does not fit, it loses
        whole words at its end, marked with ``ellipsis``."""
        taken: list[tuple[Detail, Segment]] = []
        while self.width() > width:
            steps = [
                (shorter.loses, segment)
                for segment in self.segments
                if (shorter := self._shorter(segment)) is not None
            ]
            if not steps:
                return _trim_words(self.fragments(), width, ellipsis)
            loses, segment = min(steps, key=lambda step: step[0])
            segment.step += 1
            taken.append((loses, segment))
        for loses, segment in sorted(taken, key=lambda step: step[0], reverse=True):
            # A segment gives back its latest step first; one it could not give back
            # keeps the steps before it too.
            if segment.step and segment.shorter[segment.step - 1].loses == loses:
                segment.step -= 1
                if self.width() > width:
                    segment.step += 1
        return self.fragments()

    def _shorter(self, segment: Segment) -> Shorter | None:
        """The segment's next shorter form, unless it would leave the line empty."""
        shorter = segment.next
        if shorter is None or shorter.form:
            return shorter
        others = any(other.shown for other in self.segments if other is not segment)
        return shorter if others else None


def _trim_words(line: list[Fragment], width: int, ellipsis: str) -> list[Fragment]:
    """The line cut after its last whole word that fits, with ``ellipsis``."""
    room = width - cell_len(ellipsis)
    kept: list[Fragment] = []
    used = 0
    for style, text in line:
        if used + cell_len(text) <= room:
            kept.append((style, text))
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
            kept.append((style, fitting))
        break
    if not kept:
        return []
    kept.append((kept[-1][0], ellipsis))
    return kept


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
        symbols: the characters to draw with (ASCII on terminals that need it).
        mcp: the MCP servers' ``(ready, started, starting)``, ``None`` without any:
            shown as ``mcp 2/3`` while one is starting or when one failed.
        width: the terminal's width in cells, for the toolbar (default: the width of
            the running prompt-toolkit application's output).
        approval: the approval mode now (``None``: not shown), shown as
            ``approval ask``; the modes that run things unasked stand out.
    """

    def __init__(
        self,
        status: Callable[[], ClientStatus],
        *,
        extra_tokens: Callable[[], int] = lambda: 0,
        context: Callable[[], float | None] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
        symbols: Symbols = UNICODE,
        mcp: Callable[[], tuple[int, int, bool] | None] = lambda: None,
        width: Callable[[], int] | None = None,
        approval: Callable[[], str | None] = lambda: None,
    ) -> None:
        self._status = status
        self._approval = approval
        self._mcp = mcp
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
        if _worth_showing(event):
            self._noted = _Noted(event, self._clock())
        elif isinstance(event, AttemptStarted) and _waiting_for_budget(self._noted):
            self._noted = None  # the budget let the request through: the wait is over

    def turn_started(self) -> None:
        self._turn_started = self._clock()
        self._noted = None

    def turn_finished(self) -> None:
        self._turn_started = None
        self._noted = None

    # --- the line ---------------------------------------------------------------------

    def fragments(self, width: int | None = None) -> list[Fragment]:
        """The line as ``(style, text)`` pieces, at most ``width`` cells wide (``None``:
        in full)."""
        line = self.line()
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
        for style, piece in self.fragments(width):
            text.append(piece, style)
        return text

    def line(self) -> Line:
        """The line's segments, each in full with its shorter forms."""
        status = self._status()
        symbols = self.symbols
        line = Line(separator=("qd.muted", f" {symbols.bar} "))
        activity = self._activity(status, self._clock())
        if activity is not None:
            line.segments.append(activity)
        providers = _providers(status.providers, symbols)
        if providers is not None:
            line.segments.append(providers)
        line.segments.append(_model(status, symbols))
        mcp = _mcp(self._mcp())
        if mcp is not None:
            line.segments.append(mcp)
        line.segments.append(self._usage(status))
        approval = _approval(self._approval())
        if approval is not None:
            line.segments.append(approval)
        line.segments.append(_store(status))
        return line

    def _usage(self, status: ClientStatus) -> Segment:
        tokens = status.session_tokens + self._extra_tokens()
        share = self._context()
        ctx: Form = ()
        if share is not None:
            style = "qd.warning" if share >= CONTEXT_WARN else "qd.muted"
            ctx = ((style, f" ctx {share:.0%}"),)
        full: Form = (("qd.muted", f"{tokens:,} tok"), *ctx)
        short: Form = (("qd.muted", f"{compact(tokens)} tok"), *ctx)
        return Segment(
            "usage", full, (Shorter(Detail.EXACT_TOKENS, short), Shorter(Detail.TOKENS, ()))
        )

    def _activity(self, status: ClientStatus, now: float) -> Segment | None:
        """What is happening now, in full then without its reason (none: nothing
        special)."""
        noted = self._noted
        texts: list[str] = []
        if noted is not None:
            texts = _event_forms(noted.event, now - noted.at)
        if not texts and status.activity:
            texts = [status.activity, status.activity.split(" (")[0]]
        if texts:
            full, short = texts
            return Segment(
                "activity",
                (("qd.activity", full),),
                (
                    Shorter(Detail.REASON, (("qd.activity", short),)),
                    Shorter(Detail.ACTIVITY, ()),
                ),
            )
        if self._turn_started is not None:
            working: Form = (("qd.busy", f"working {now - self._turn_started:.0f}s"),)
            return Segment("activity", working, (Shorter(Detail.ACTIVITY, ()),))
        return None


def _approval(mode: str | None) -> Segment | None:
    """``approval ask``; ``auto-edit`` and ``yolo`` (things run unasked) stand out."""
    if mode is None:
        return None
    style = "qd.muted" if mode == "ask" else "qd.warning"
    return Segment(
        "approval",
        ((style, f"approval {mode}"),),
        (Shorter(Detail.APPROVAL_WORD, ((style, mode),)), Shorter(Detail.APPROVAL, ())),
    )


def _mcp(counts: tuple[int, int, bool] | None) -> Segment | None:
    """``mcp 2/3`` (servers ready/started) while one starts (busy) or once one failed
    (a warning); nothing when all are ready or none is configured."""
    if counts is None:
        return None
    ready, started, starting = counts
    if ready >= started:
        return None
    style = "qd.busy" if starting else "qd.warning"
    return Segment("mcp", ((style, f"mcp {ready}/{started}"),), (Shorter(Detail.MCP, ()),))


def _application_width() -> int:
    from prompt_toolkit.application import get_app

    return get_app().output.get_size().columns


def _worth_showing(event: ClientEvent) -> bool:
    return isinstance(
        event,
        RetryScheduled
        | Failover
        | RateLimitWait
        | BreakerTransition
        | Throttled
        | RetryBudgetSpent
        | QuotaExhausted,
    )


def _waiting_for_budget(noted: _Noted | None) -> bool:
    return noted is not None and isinstance(noted.event, RateLimitWait)


def _budget_wait_forms(event: RateLimitWait, elapsed: float) -> list[str]:
    """A wait for budget counted down: to when the budget frees, then (a queue may run
    longer) to when the client gives up (``max_wait``); none once both are past."""
    if event.max_wait is None:  # a cool-down's wait: its delay only
        if elapsed >= event.delay:
            return []
        return [f"rate limit: {event.provider} in {event.delay - elapsed:.1f}s", "rate limit"]
    left = event.max_wait - elapsed
    if left <= 0:
        return []
    gives_up = f"gives up in {left:.0f}s"
    if elapsed < event.delay:
        wait = f"rate limit: {event.provider} in {event.delay - elapsed:.1f}s"
        return [f"{wait} ({gives_up})", wait]
    return [f"rate limit: waiting for {event.provider} ({gives_up})", "rate limit"]


def _restraint_forms(
    event: Throttled | RetryBudgetSpent | QuotaExhausted, elapsed: float
) -> list[str]:
    """The account-wide restraint's events, in full then short."""
    if isinstance(event, QuotaExhausted):
        if event.reset_in is not None and elapsed >= event.reset_in:
            return []
        line = event_line(event)
        return [line, f"quota: {event.provider}"]
    if elapsed >= EVENT_SECONDS:
        return []
    if isinstance(event, Throttled):
        return [event_line(event), f"{event.provider} throttled"]
    return [event_line(event), "retry budget spent"]


def _event_forms(event: ClientEvent, elapsed: float) -> list[str]:
    """The bar's words for a recent client event, in full then short; none once it is
    over (a countdown that ran out, an event shown long enough)."""
    if isinstance(event, RetryScheduled):
        if elapsed >= event.delay:
            return []
        retry = f"retry {event.retry}/{event.max_retries} in {event.delay - elapsed:.1f}s"
        return [f"{retry} ({event.reason})", retry]
    if isinstance(event, RateLimitWait):
        return _budget_wait_forms(event, elapsed)
    if isinstance(event, Throttled | RetryBudgetSpent | QuotaExhausted):
        return _restraint_forms(event, elapsed)
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
    if isinstance(event, Throttled):
        return f"{event.provider} throttled locally (overloaded), trying the next provider"
    if isinstance(event, RetryBudgetSpent):
        return f"{event.provider} retry budget spent: no retry, trying the next provider"
    if isinstance(event, QuotaExhausted):
        when = "" if event.reset_in is None else f" for {_span(event.reset_in)}"
        return f"{event.provider} quota exhausted{when}: skipped until it resets"
    return ""


def _span(seconds: float) -> str:
    """``2h 3m``, ``4m 10s``, ``12s``."""
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s" if minutes else f"{secs}s"


def _healthy(provider: ProviderStatus) -> bool:
    return (
        provider.state == "CLOSED"
        and provider.cooldown <= 0
        and provider.quota_reset_in <= 0
        and provider.throttled == 0
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
    style = breaker_style(state)
    rate = provider.success_rate
    if state == "OPEN":
        state += f" {provider.retry_in:.0f}s"
    elif state == "CLOSED" and rate is not None and rate < HEALTHY:
        state, style = f"{rate:.0%} ok", "qd.provider.degraded"
    elif state == "CLOSED" and terse:
        state = ""
    out: list[Fragment] = [(style, f"{mark} {provider.name}" + (f" {state}" if state else ""))]
    if provider.cooldown > 0:
        out.append(("qd.provider.cooling", f" cooldown {provider.cooldown:.0f}s"))
    out.extend(_restraint(provider))
    if budgets:
        out.extend(_budget(provider))
        out.extend(_retry_budget(provider))
    return out


def _restraint(provider: ProviderStatus) -> list[Fragment]:
    """What the account's restraint holds against a provider now: an exhausted quota,
    requests throttled locally (none shown while the store keeps neither)."""
    out: list[Fragment] = []
    if provider.quota_reset_in > 0:
        out.append(("qd.provider.cooling", f" quota {_span(provider.quota_reset_in)}"))
    if provider.throttled > 0:
        out.append(("qd.warning", f" throttled {provider.throttled}"))
    return out


def _retry_budget(provider: ProviderStatus) -> list[Fragment]:
    """The retries the account's retry budget allows now, among the budgets: shown only
    once retries have eaten into its floor (a healthy account's budget is noise), as a
    warning when none is left."""
    left = provider.retry_budget
    if left is None or left >= RETRY_FLOOR:
        return []
    return [("qd.warning" if left < 1 else "qd.muted", f" retries {left:.0f}")]


def _providers(providers: Sequence[ProviderStatus], symbols: Symbols) -> Segment | None:
    """Every provider with its state and budgets, then shorter: those that are not
    healthy kept the longest."""
    if not providers:
        return None

    def joined(pieces: list[list[Fragment]]) -> Form:
        out: list[Fragment] = []
        for index, piece in enumerate(pieces):
            if index:
                out.append(("qd.muted", "  "))
            out.extend(piece)
        return tuple(out)

    def each(
        chosen: Sequence[ProviderStatus], *, budgets: bool = False, terse: bool = True
    ) -> list[list[Fragment]]:
        return [_provider(p, symbols, budgets=budgets, terse=terse) for p in chosen]

    troubled = [p for p in providers if not _healthy(p)]
    healthy = len(providers) - len(troubled)
    terse = joined(each(providers))
    closed = "qd.provider.closed"
    shorter = [
        Shorter(Detail.BUDGETS, joined(each(providers, terse=False))),
        Shorter(Detail.HEALTHY_STATES, terse),
    ]
    if not troubled:
        if len(providers) > 1:
            counted = f"{symbols.closed} {plural(len(providers), 'provider')} ok"
            shorter.append(Shorter(Detail.HEALTHY_NAMES, ((closed, counted),)))
    else:
        others: list[list[Fragment]] = [[(closed, f"+{healthy} ok")]] if healthy else []
        hidden = len(providers) - 1
        more: list[list[Fragment]] = [[("qd.muted", f"+{hidden} more")]] if hidden else []
        shorter += [
            Shorter(Detail.HEALTHY_NAMES, joined(each(troubled) + others)),
            Shorter(Detail.HEALTHY_COUNT, joined(each(troubled))),
            Shorter(Detail.TROUBLED_OTHERS, joined(each(troubled[:1]) + more)),
            Shorter(Detail.MORE_COUNT, joined(each(troubled[:1]))),
        ]
    shorter.append(Shorter(Detail.PROVIDERS, ()))
    return Segment("providers", joined(each(providers, budgets=True, terse=False)), tuple(shorter))


def _budget(provider: ProviderStatus) -> list[Fragment]:
    """``rpm 3/4 tpm 1.2k/10k``: used of the limit this minute, as ``batch`` counts
    (``3/4`` reads as three of four spent, the way a quota is read)."""
    out: list[Fragment] = []
    if provider.rpm_limit is not None and provider.rpm_left is not None:
        used = _used(provider.rpm_left, provider.rpm_limit)
        out.append(("qd.muted", f" rpm {used}/{provider.rpm_limit}"))
    if provider.tpm_limit is not None and provider.tpm_left is not None:
        used, limit = _used(provider.tpm_left, provider.tpm_limit), provider.tpm_limit
        out.append(("qd.muted", f" tpm {compact(used)}/{compact(limit)}"))
    return out


def _used(left: int, limit: int) -> int:
    return min(limit, max(0, limit - left))


def _model(status: ClientStatus, symbols: Symbols) -> Segment:
    """The provider answering and its model; the model alone, shorter."""
    if status.active_provider is not None:
        name, model = status.active_provider, status.active_model or ""
    elif status.providers:
        name, model = status.providers[0].name, status.providers[0].model
    else:
        name, model = "no provider", ""
    gone = Shorter(Detail.MODEL, ())
    if not model:
        return Segment("model", (("qd.model", name),), (gone,))
    full: Form = (("qd.model", f"{name} {symbols.dot} {model}"),)
    return Segment("model", full, (Shorter(Detail.MODEL_PROVIDER, (("qd.model", model),)), gone))


def _store(status: ClientStatus) -> Segment:
    """Where the budget lives: ``budget: local``, among the first details to go;
    ``budget: per-process!`` when a shared store failed, kept until the very last."""
    if _unshared(status):
        return Segment(
            "store",
            (("qd.warning", "budget: per-process!"),),
            (
                Shorter(Detail.STORE_WARNING_WORDS, (("qd.warning", "per-process!"),)),
                Shorter(Detail.STORE_WARNING, ()),
            ),
        )
    return Segment(
        "store", (("qd.muted", f"budget: {status.store}"),), (Shorter(Detail.STORE, ()),)
    )


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
    columns = ("provider", "model", "breaker", "cool-down", "rpm used", "tpm used", "recent")
    for column in (*columns, "restraint"):
        table.add_column(column, justify="right" if column.endswith(("used", "recent")) else "left")
    for provider in status.providers:
        state = provider.state
        if state == "OPEN":
            state += f" (trial in {provider.retry_in:.1f}s)"
        table.add_row(
            provider.name,
            provider.model,
            Text(state, breaker_style(provider.state)),
            f"{provider.cooldown:.1f}s" if provider.cooldown > 0 else "-",
            _spent(provider.rpm_left, provider.rpm_limit),
            _spent(provider.tpm_left, provider.tpm_limit),
            "-" if provider.success_rate is None else f"{provider.success_rate:.0%} ok",
            restraint_cell(provider),
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


def restraint_cell(provider: ProviderStatus) -> str:
    """``/status``: the retries the account's retry budget allows, the requests
    throttled locally, an exhausted quota; ``-`` when the store keeps none."""
    parts = []
    if provider.retry_budget is not None:
        parts.append(f"{provider.retry_budget:.1f} retries")
    if provider.throttled:
        parts.append(f"{provider.throttled} throttled")
    if provider.quota_reset_in > 0:
        parts.append(f"quota {_span(provider.quota_reset_in)}")
    return ", ".join(parts) or "-"


def _spent(left: int | None, limit: int | None) -> str:
    """Used of the limit this minute, as on the status bar and in ``batch``."""
    if limit is None or left is None:
        return "unlimited"
    return f"{_used(left, limit):,} / {limit:,}"
