"""What a batch shows while it runs: counts, pace, ETA against the budget, waits."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
from typing import Any

from qwen_dev_cli.batch.progress import LiveProgress, PlainProgress, progress_line
from qwen_dev_cli.batch.tally import Tally, duration
from qwen_dev_cli.core.status import ClientStatus, ProviderStatus
from qwen_dev_cli.ui.theme import make_console


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def status(*providers: ProviderStatus) -> ClientStatus:
    return ClientStatus(list(providers), None, None, None, 0)


def provider(name: str = "lab", **changes: Any) -> ProviderStatus:
    base = ProviderStatus(name, "m", "CLOSED", 0.0, 0.0, None, None, None, None, None)
    return dataclasses.replace(base, **changes)


def running(clock: Clock) -> Tally:
    tally = Tally(100, 10, get_time=clock)
    for _ in range(30):
        tally.prompt_started()
    clock.now += 30
    for index in range(28):
        tally.prompt_finished(ok=index % 14 != 0, tokens=100)
    return tally


def test_counts_pace_and_eta_at_the_recent_pace() -> None:
    clock = Clock()
    tally = running(clock)
    assert (tally.ok, tally.failed, tally.in_flight, tally.remaining) == (26, 2, 2, 62)
    prompts, tokens = tally.per_minute()
    assert (prompts, tokens) == (56.0, 5600.0)  # 28 in 30 s
    eta = tally.eta()
    assert eta is not None
    assert round(eta) == round(62 * 60 / 56)


def test_the_eta_is_never_sooner_than_the_budget_allows() -> None:
    clock = Clock()
    tally = running(clock)
    # 62 left, 2 of this minute's 20 requests left: 60 more need 3 minutes.
    assert tally.eta(rpm=20, rpm_left=2) == 180.0


def test_a_plain_line_says_where_the_batch_is_and_why_it_waits() -> None:
    clock = Clock()
    tally = running(clock)
    tally.wait_started(41.2, "rate limited")
    sick = provider("spare", state="OPEN", retry_in=12.0)
    line = progress_line(tally, status(provider(rpm_limit=120, rpm_left=20), sick))
    assert line.startswith("38/100 (38%) done: 26 ok, 2 failed, 2 in flight; 56.0 prompts/min")
    assert "waiting 41s (rate limited)" in line
    assert "spare OPEN (trial in 12s)" in line
    assert "lab" not in line  # a healthy provider is not news


async def test_the_plain_reporter_prints_a_line_every_interval() -> None:
    clock = Clock()
    tally = running(clock)
    err = io.StringIO()
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.now += seconds
        if len(slept) == 3:
            raise asyncio.CancelledError

    reporter = PlainProgress(tally, status, err=err, every=0.5, sleep=sleep, get_time=clock)
    with contextlib.suppress(asyncio.CancelledError):
        await reporter.run()
    lines = err.getvalue().splitlines()
    assert slept == [0.5, 0.5, 0.5]
    assert len(lines) == 2
    assert all(x.startswith("qwen-dev batch: 38/100 (38%) done") for x in lines)


def test_the_live_display_shows_done_total_budget_and_breakers() -> None:
    clock = Clock()
    tally = running(clock)
    tally.wait_started(30, "providers cooling down after a 429")
    tally.note = "stopping: test"
    providers = status(
        provider("lab", rpm_limit=120, rpm_left=20, tpm_limit=100_000, tpm_left=76_600),
        provider("spare", state="OPEN", retry_in=42.0),
    )
    screen = io.StringIO()
    console = make_console(file=screen, width=120, color_system=None)
    console.print(LiveProgress(tally, lambda: providers, console=console).render())
    shown = screen.getvalue()
    assert "38/100 (38%)" in shown
    assert "ETA 1m06s" in shown  # spare has no rpm limit: the pace decides
    assert "ok 26  failed 2  in flight 2  skipped 10" in shown
    assert "lab    CLOSED, 100/120 requests, 23.4k/100.0k tokens this minute" in shown
    assert "spare  OPEN (trial in 42s)" in shown
    assert "waiting 30s: providers cooling down after a 429" in shown
    assert "stopping: test" in shown


def test_durations_read_naturally() -> None:
    assert [duration(x) for x in (0.4, 42, 185, 7260)] == ["0s", "42s", "3m05s", "2h01m"]


async def test_the_live_display_redraws_from_the_event_loop() -> None:
    clock = Clock()
    tally = running(clock)
    screen = io.StringIO()
    console = make_console(file=screen, width=100, force_terminal=True, color_system=None)
    redraws = 0

    async def sleep(seconds: float) -> None:
        nonlocal redraws
        assert seconds == 0.25
        redraws += 1
        if redraws == 3:
            raise asyncio.CancelledError
        tally.prompt_finished(ok=True, tokens=1)

    with (
        LiveProgress(tally, status, console=console, sleep=sleep) as live,
        contextlib.suppress(asyncio.CancelledError),
    ):
        await live.run()
    shown = screen.getvalue()
    assert "38/100 (38%)" in shown
    assert "40/100 (40%)" in shown  # drawn again as prompts finished
