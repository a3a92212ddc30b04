"""The status bar line: states spelled out, countdowns that move, budgets, tokens."""

from __future__ import annotations

import dataclasses
import io
from typing import Any

import pytest

from qwen_dev_cli.core.events import (
    AttemptStarted,
    BreakerTransition,
    Failover,
    RateLimitWait,
    RetryScheduled,
)
from qwen_dev_cli.core.status import ClientStatus, ProviderStatus
from qwen_dev_cli.ui.statusbar import (
    EVENT_SECONDS,
    Detail,
    Line,
    Segment,
    Shorter,
    StatusBar,
    status_table,
)
from qwen_dev_cli.ui.symbols import ASCII
from qwen_dev_cli.ui.theme import make_console


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def provider(name: str, state: str = "CLOSED", **changes: Any) -> ProviderStatus:
    base = ProviderStatus(name, f"{name}-model", state, 0.0, 0.0, None, None, None, None, None)
    return dataclasses.replace(base, **changes)


def bar(*providers: ProviderStatus, clock: Clock | None = None, **status: object) -> StatusBar:
    fields: dict[str, Any] = {
        "providers": list(providers),
        "active_provider": None,
        "active_model": None,
        "activity": None,
        "session_tokens": 0,
    }
    fields.update(status)
    snapshot = ClientStatus(**fields)
    return StatusBar(lambda: snapshot, clock=clock or Clock())


def test_each_breaker_state_is_spelled_out() -> None:
    line = bar(
        provider("sambanova", "OPEN", retry_in=41.6),
        provider("hf", "HALF_OPEN"),
        provider("local"),
    ).plain()
    assert "sambanova OPEN 42s" in line
    assert "hf HALF_OPEN" in line
    assert "local CLOSED" in line


def test_state_has_its_colour_in_the_toolbar() -> None:
    fragments = bar(provider("a", "OPEN", retry_in=5), provider("b")).toolbar()
    styles = {text.strip(): style for style, text, *_ in fragments}
    assert styles["○ a OPEN 5s"] == "class:qd.provider.open"
    assert styles["● b CLOSED"] == "class:qd.provider.closed"


def test_budgets_show_where_limits_are_set() -> None:
    line = bar(
        provider("limited", rpm_limit=50, rpm_left=47, tpm_limit=10000, tpm_left=8123),
        provider("free"),
    ).plain()
    # Used of the limit this minute (3 of 50 requests spent), as batch counts.
    assert "limited CLOSED rpm 3/50 tpm 1.9k/10k" in line
    assert line.count("rpm") == 1


def test_cooldown_after_a_429_is_shown() -> None:
    assert "cooldown 12s" in bar(provider("a", cooldown=11.8)).plain()


def test_active_provider_and_tokens_of_the_whole_session() -> None:
    snapshot = ClientStatus([provider("a"), provider("b")], "b", "b-large", None, 1200)
    status = StatusBar(lambda: snapshot, extra_tokens=lambda: 34)
    line = status.plain()
    assert "b · b-large" in line
    assert "1,234 tok" in line


def test_a_retry_counts_down_then_goes() -> None:
    clock = Clock()
    status = bar(provider("a"), clock=clock)
    status.on_event(RetryScheduled(2, 3, 3.1, "429 rate limited"))
    assert status.plain().startswith("retry 2/3 in 3.1s (429 rate limited) │ ")
    clock.now += 1.0
    assert "retry 2/3 in 2.1s (429 rate limited)" in status.plain()
    clock.now += 2.5
    assert "retry" not in status.plain()


def test_a_failover_is_shown_for_a_while() -> None:
    clock = Clock()
    status = bar(provider("sambanova"), provider("hf"), clock=clock)
    status.on_event(Failover("sambanova", "hf", "503 unavailable"))
    assert status.plain().startswith("sambanova failed (503 unavailable), trying hf │ ")
    clock.now += EVENT_SECONDS + 0.1
    assert "trying" not in status.plain()


def test_rate_limit_waits_and_breaker_changes_are_shown() -> None:
    status = bar(provider("a"))
    status.on_event(RateLimitWait("a", 4.0))
    assert "rate limit: a in 4.0s" in status.plain()
    status.on_event(BreakerTransition("a", "CLOSED", "OPEN"))
    assert "a circuit open: skipped until its trial call" in status.plain()
    status.on_event(AttemptStarted("a", "m", 1))  # routine: does not replace it
    assert "a circuit open" in status.plain()


def test_while_a_turn_runs_its_time_is_shown() -> None:
    clock = Clock()
    status = bar(provider("a"), clock=clock)
    status.turn_started()
    clock.now += 3.2
    assert status.plain().startswith("working 3s │ ")
    status.turn_finished()
    assert "working" not in status.plain()


def test_the_client_activity_is_shown_when_no_event_explains_more() -> None:
    line = bar(provider("a"), activity="rate limit: waiting 2.0s for a").plain()
    assert line.startswith("rate limit: waiting 2.0s for a")


def test_status_table_details_every_provider() -> None:
    snapshot = ClientStatus(
        [
            provider("a", "OPEN", retry_in=12.34, success_rate=0.25),
            provider("b", rpm_limit=50, rpm_left=49, cooldown=3.0),
        ],
        "b",
        "b-model",
        None,
        42,
    )
    screen = io.StringIO()
    make_console(file=screen, width=140).print(status_table(snapshot))
    shown = screen.getvalue()
    assert "OPEN (trial in 12.3s)" in shown
    assert "25% ok" in shown
    assert "1 / 50" in shown  # used of the limit, as on the bar
    assert "rpm used" in shown
    assert "3.0s" in shown
    assert "unlimited" in shown


def test_the_bar_says_where_the_budget_is_kept() -> None:
    local = bar(provider("a"), store="local", store_location="/h/state.sqlite3", store_shared=True)
    redis = bar(provider("a"), store="redis", store_location="redis://r:6379/0", store_shared=True)

    assert local.plain().endswith("│ budget: local")
    assert redis.plain().endswith("│ budget: redis")
    assert bar(provider("a")).plain().endswith("│ budget: memory")


def test_a_failed_shared_store_is_flagged_on_the_bar() -> None:
    status = bar(
        provider("a"), store="redis", store_location="redis://r:6379/0", store_shared=False
    )

    fragments = status.toolbar()

    assert status.plain().endswith("│ budget: per-process!")
    assert ("class:qd.warning", "budget: per-process!") in fragments


def test_status_table_tells_the_store_and_its_location() -> None:
    def shown(store: str = "memory", location: str = "this process", shared: bool = False) -> str:
        snapshot = ClientStatus([provider("a")], None, None, None, 0, store, location, shared)
        screen = io.StringIO()
        make_console(file=screen, width=140).print(status_table(snapshot))
        return " ".join(screen.getvalue().split())

    local = shown("local", "/h/[x]/state.sqlite3", shared=True)
    assert "budget store: local · /h/[x]/state.sqlite3 (shared by every process" in local
    down = shown("redis", "redis://:***@r:6379/0", shared=False)
    assert "budget store: redis · redis://:***@r:6379/0 (unavailable: budgets" in down
    assert "budget store: memory · this process (not shared with other processes)" in shown()


def crowded(clock: Clock | None = None) -> StatusBar:
    """Five providers, one OPEN and one demoted, budgets, a context share: the line the
    issue saw cut mid-word at 80 columns."""
    snapshot = ClientStatus(
        [
            provider("alpha", "OPEN", retry_in=41.0),
            provider("beta", success_rate=0.33, rpm_limit=50, rpm_left=47),
            provider("gamma", rpm_limit=50, rpm_left=47, tpm_limit=10000, tpm_left=8123),
            provider("delta"),
            provider("local"),
        ],
        "beta",
        "beta-model",
        None,
        12_345,
        "local",
        "/h/state.sqlite3",
        True,
    )
    return StatusBar(lambda: snapshot, context=lambda: 0.42, clock=clock or Clock())


def cut_words(line: str, full: str) -> list[str]:
    """Words of ``line`` that are the start of a longer word of ``full`` but none of its
    own words: words cut short (``beta-m`` of ``beta-model``)."""
    whole = set(full.split())
    return [
        word
        for word in line.split()
        if word not in whole and any(other.startswith(word) for other in whole)
    ]


@pytest.mark.parametrize("width", [80, 120])
def test_a_narrow_bar_drops_details_by_priority_and_never_cuts_a_word(width: int) -> None:
    clock = Clock()
    status = crowded(clock)
    full = status.plain()
    assert len(full) > 120
    for activity in (None, Failover("alpha", "beta", "HTTP 503: injected"), "retry"):
        if isinstance(activity, Failover):
            status.on_event(activity)
        elif activity == "retry":
            status.on_event(RetryScheduled(2, 3, 3.1, "alpha: circuit open"))
        line = status.plain(width)
        assert len(line) <= width
        assert "beta-model" in line  # the model and the tokens stay
        assert "tok ctx 42%" in line
        assert "alpha OPEN 41s" in line  # and the provider that is down
        assert cut_words(line, status.plain()) == []
        assert "…" not in line


def test_at_80_and_120_columns_the_bar_reads_like_this() -> None:
    status = crowded()
    assert status.plain(79) == (
        "○ alpha OPEN 41s  ● beta 33% ok  +3 ok │ beta · beta-model │ 12,345 tok ctx 42%"
    )
    status.on_event(RetryScheduled(2, 3, 3.1, "alpha: circuit open"))
    assert status.plain(79) == (
        "retry 2/3 in 3.1s │ ○ alpha OPEN 41s  +4 more │ beta-model │ 12,345 tok ctx 42%"
    )
    assert status.plain(119) == (
        "retry 2/3 in 3.1s │ ○ alpha OPEN 41s  ● beta 33% ok  ● gamma  ● delta  ● local │ "
        "beta · beta-model │ 12,345 tok ctx 42%"
    )


def test_the_toolbar_fits_the_terminal_it_is_drawn_on() -> None:
    snapshot = crowded()._status()
    status = StatusBar(lambda: snapshot, width=lambda: 80)
    text = "".join(piece for _, piece, *_ in status.toolbar())
    assert len(text) <= 79  # a cell spare: writing the very last one may scroll
    assert "beta · beta-model" in text


def test_a_single_segment_wider_than_the_terminal_loses_whole_words() -> None:
    status = bar(provider("a"), activity="waiting for the provider to answer its first token")
    line = status.plain(30)
    assert line == "waiting for the provider to…"


def test_a_demoted_provider_shows_its_recent_success_in_yellow() -> None:
    status = bar(provider("alpha"), provider("beta", success_rate=0.33))
    assert "● beta 33% ok" in status.plain()
    assert "beta CLOSED" not in status.plain()
    assert ("class:qd.provider.degraded", "● beta 33% ok") in status.toolbar()
    assert "● alpha CLOSED" in status.plain()  # a healthy one keeps its state


def test_all_healthy_providers_shrink_to_a_count() -> None:
    status = bar(*(provider(f"p{n}") for n in range(6)), active_provider="p0", active_model="m")
    assert status.plain(60) == "● p0  ● p1  ● p2  ● p3  ● p4  ● p5 │ p0 · m │ 0 tok"
    assert status.plain(33) == "● 6 providers ok │ p0 · m │ 0 tok"


def test_ascii_symbols_draw_the_same_line_in_plain_ascii() -> None:
    snapshot = crowded()._status()
    status = StatusBar(lambda: snapshot, symbols=ASCII)
    line = status.plain()
    assert line.isascii()
    assert "o alpha OPEN 41s" in line
    assert " | beta - beta-model | " in line
    assert status.plain(40).isascii()


def test_a_provider_passed_over_for_its_open_circuit_is_not_said_to_have_failed() -> None:
    status = bar(provider("alpha", "OPEN", retry_in=30), provider("beta"))
    status.on_event(Failover("alpha", "beta", "circuit open"))
    assert status.plain().startswith("alpha circuit open, trying beta │ ")
    assert status.plain(60).startswith("alpha circuit open, trying beta │ ")


def unshared(clock: Clock | None = None) -> StatusBar:
    """One provider down, a breaker event on the bar and the shared store unreachable."""
    status = bar(
        provider("alpha", "OPEN", retry_in=30),
        clock=clock,
        active_provider="alpha",
        active_model="alpha-model",
        session_tokens=12_345,
        store="redis",
        store_location="redis://r:6379/0",
        store_shared=False,
    )
    status.on_event(BreakerTransition("alpha", "CLOSED", "OPEN"))
    return status


def scenes() -> list[StatusBar]:
    clock = Clock()
    retrying = crowded(clock)
    retrying.on_event(RetryScheduled(2, 3, 3.1, "alpha: circuit open"))
    working = bar(provider("a"), clock=clock)
    working.turn_started()
    alone = bar(clock=clock, activity="waiting for the provider to answer (slow)")
    return [crowded(), retrying, unshared(), working, alone, bar(provider("a"), provider("b"))]


@pytest.mark.parametrize("status", scenes())
def test_every_segment_says_what_each_shorter_form_loses_and_can_fit(status: StatusBar) -> None:
    line = status.line()
    details = [shorter.loses for segment in line.segments for shorter in segment.shorter]
    assert all(isinstance(detail, Detail) for detail in details)
    assert len(details) == len(set(details))  # no ties: one order, whatever the positions
    for segment in line.segments:
        assert segment.shorter, segment.name
        losses = [shorter.loses for shorter in segment.shorter]
        assert losses == sorted(losses), segment.name  # each form loses a more useful detail
        assert segment.shorter[-1].form == (), segment.name  # it may be left out
        shortest = [s.form for s in segment.shorter if s.form] or [segment.full]
        assert sum(len(text) for _, text in shortest[-1]) <= 40, segment.name  # half of 80


def test_a_segment_whose_shorter_form_loses_less_is_refused() -> None:
    with pytest.raises(ValueError, match="more useful"):
        Segment(
            "x",
            (("qd.plain", "a b c"),),
            (Shorter(Detail.MODEL, (("qd.plain", "a b"),)), Shorter(Detail.STORE, ())),
        )


def test_the_shortening_follows_what_is_lost_not_where_it_sits() -> None:
    def segment(name: str, loses: Detail) -> Segment:
        return Segment(
            name, (("qd.plain", f"{name} in full"),), (Shorter(loses, (("qd.plain", name),)),)
        )

    width = len("first in full | second")  # room for one segment in full
    for order in (("first", "second"), ("second", "first")):
        for least, most in (("first", "second"), ("second", "first")):
            details = {least: Detail.BUDGETS, most: Detail.MODEL_PROVIDER}
            line = Line([segment(name, details[name]) for name in order], ("qd.muted", " | "))
            shown = "".join(text for _, text in line.fit(width, "..."))
            assert f"{most} in full" in shown, (order, least)
            assert f"{least} in full" not in shown, (order, least)


@pytest.mark.parametrize("status", scenes())
def test_the_bar_is_the_same_whatever_the_order_of_its_segments(status: StatusBar) -> None:
    def shown(line: Line, width: int) -> list[tuple[str, str]]:
        return sorted(fragment for fragment in line.fit(width, "…") if fragment != line.separator)

    for width in range(10, 140, 3):
        line = status.line()
        backwards = status.line()
        backwards.segments.reverse()
        assert shown(backwards, width) == shown(line, width), width


def test_a_line_that_needed_every_shortening_still_gives_room_back() -> None:
    status = unshared()
    assert status.plain(60) == "alpha circuit open │ alpha-model │ 12,345 tok │ per-process!"
    assert status.plain(78) == (
        "alpha circuit open │ alpha · alpha-model │ 12,345 tok │ budget: per-process!"
    )


# --- issue 24: the approval mode, and one convention for budgets --------------------------


def test_the_approval_mode_is_on_the_bar_and_stands_out_when_things_run_unasked() -> None:
    mode = "ask"
    status = ClientStatus([provider("a")], None, None, None, 0)
    line = StatusBar(lambda: status, approval=lambda: mode)
    assert "approval ask" in line.plain()
    mode = "yolo"
    fragments = line.fragments()
    assert ("qd.warning", "approval yolo") in fragments
    # Narrow, it shortens to the mode, and outlasts the token count.
    narrow = line.plain(16)
    assert narrow.endswith("yolo")
    assert "approval" not in narrow
    assert "tok" not in narrow


def test_budgets_count_what_is_used_on_the_bar_in_status_and_in_batch() -> None:
    from qwen_dev_cli.batch.progress import provider_text

    limited = provider("lab", rpm_limit=120, rpm_left=2, tpm_limit=100_000, tpm_left=76_600)
    assert "118/120 requests" in provider_text(limited)
    assert "rpm 118/120" in bar(limited).plain()
    screen = io.StringIO()
    status = ClientStatus([limited], None, None, None, 0)
    make_console(file=screen, width=140).print(status_table(status))
    assert "118 / 120" in screen.getvalue()
