"""Issue 21's account-wide restraint where the user sees it: the status bar counts a
wait for budget down and shows each provider's retry budget, local throttling and
quota; text mode says each event in one stderr line (a quota once, with its reset);
stream-json tells them as ``system`` events; ``doctor`` shows each account's."""

from __future__ import annotations

import dataclasses
import io
import json
import time
from typing import Any

from qwen_dev_cli.core.account import RETRY_FLOOR, AccountPolicy, AccountView
from qwen_dev_cli.core.events import (
    AttemptStarted,
    Failover,
    QuotaExhausted,
    RateLimitWait,
    RetryBudgetSpent,
    Throttled,
)
from qwen_dev_cli.core.settings import ProviderSettings
from qwen_dev_cli.core.state import MemoryStore
from qwen_dev_cli.core.status import ClientStatus, ProviderStatus
from qwen_dev_cli.ui.doctor import ProbeResult, account_line, account_views, report
from qwen_dev_cli.ui.notices import ClientNotices, quota_line
from qwen_dev_cli.ui.statusbar import StatusBar, status_table
from qwen_dev_cli.ui.stream_json import StreamJson
from qwen_dev_cli.ui.theme import make_console


class Clock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def provider(name: str = "alpha", **changes: Any) -> ProviderStatus:
    base = ProviderStatus(name, f"{name}-model", "CLOSED", 0.0, 0.0, None, None, None, None, None)
    return dataclasses.replace(base, **changes)


def bar(*providers: ProviderStatus, clock: Clock) -> StatusBar:
    snapshot = ClientStatus(list(providers), None, None, None, 0)
    return StatusBar(lambda: snapshot, clock=clock)


# --- the status bar ------------------------------------------------------------------


def test_a_wait_for_budget_counts_down_to_the_budget_then_to_giving_up() -> None:
    clock = Clock()
    status = bar(provider(), clock=clock)
    status.on_event(RateLimitWait("alpha", 4.0, max_wait=120.0))
    assert "rate limit: alpha in 4.0s (gives up in 120s)" in status.plain()
    clock.now += 3.0
    assert "rate limit: alpha in 1.0s (gives up in 117s)" in status.plain()
    clock.now += 10.0  # a queue may run longer than the first estimate
    assert "rate limit: waiting for alpha (gives up in 107s)" in status.plain()
    status.on_event(AttemptStarted("alpha", "m", 1))  # admitted: the wait is over
    assert "rate limit" not in status.plain()


def test_a_wait_past_max_wait_is_no_longer_shown() -> None:
    clock = Clock()
    status = bar(provider(), clock=clock)
    status.on_event(RateLimitWait("alpha", 50.0, max_wait=5.0))
    clock.now += 5.0
    assert "rate limit" not in status.plain()


def test_an_attempt_does_not_clear_other_news() -> None:
    clock = Clock()
    status = bar(provider("alpha"), provider("beta"), clock=clock)
    status.on_event(Failover("alpha", "beta", "503 unavailable"))
    status.on_event(AttemptStarted("beta", "m", 2))
    assert "trying beta" in status.plain()


def test_retry_budget_throttling_and_quota_are_shown_per_provider() -> None:
    clock = Clock()
    sick = provider("alpha", retry_budget=2.4, throttled=3, quota_reset_in=0.0)
    out = provider("beta", quota_reset_in=7380.0)
    line = bar(sick, out, clock=clock).plain()
    assert "alpha CLOSED throttled 3 retries 2" in line  # breaker closed, yet troubled
    assert "beta CLOSED quota 2h 3m" in line


def test_nothing_is_shown_while_the_store_keeps_no_restraint() -> None:
    line = bar(provider("alpha"), clock=Clock()).plain()
    assert "retries" not in line
    assert "throttled" not in line
    assert "quota" not in line


def test_a_retry_budget_untouched_by_retries_is_not_shown() -> None:
    # A healthy account's budget is at or above its floor: noise on every status bar.
    line = bar(provider("alpha", retry_budget=RETRY_FLOOR), clock=Clock()).plain()
    assert "retries" not in line
    spent = bar(provider("alpha", retry_budget=0.0), clock=Clock())
    assert "retries 0" in spent.plain()


def test_the_restraint_events_are_status_bar_notices() -> None:
    clock = Clock()
    status = bar(provider("alpha"), provider("beta"), clock=clock)
    status.on_event(Throttled("alpha", 0.42))
    assert "alpha throttled locally (overloaded), trying the next provider" in status.plain()
    status.on_event(RetryBudgetSpent("alpha"))
    assert "alpha retry budget spent: no retry" in status.plain()
    status.on_event(QuotaExhausted("beta", 90.0, "insufficient_quota"))
    assert "beta quota exhausted for 1m 30s" in status.plain()
    clock.now += 60.0  # still exhausted: still said
    assert "beta quota exhausted" in status.plain()
    clock.now += 31.0
    assert "quota exhausted" not in status.plain()


def test_status_table_has_the_restraint_of_each_provider() -> None:
    snapshot = ClientStatus(
        [provider("a", retry_budget=4.0, throttled=2), provider("b")], None, None, None, 0
    )
    screen = io.StringIO()
    make_console(file=screen, width=160).print(status_table(snapshot))
    assert "4.0 retries, 2 throttled" in screen.getvalue()


# --- stderr lines in text mode -------------------------------------------------------


def test_each_event_is_one_line_when_a_person_reads() -> None:
    said: list[str] = []
    notices = ClientNotices(said.append, chatty=True)
    notices(AttemptStarted("alpha", "m", 1))  # routine
    notices(Throttled("alpha", 0.5))
    notices(RetryBudgetSpent("alpha"))
    assert said == ["throttled alpha locally (p=0.50)", "retry budget spent for alpha"]


def test_a_quota_is_one_line_with_its_reset_not_one_per_attempt() -> None:
    said: list[str] = []
    clock = Clock()
    notices = ClientNotices(said.append, chatty=False, clock=clock, wall=lambda: 0.0)
    for _ in range(5):  # five attempts, processes, rounds meet it
        notices(QuotaExhausted("alpha", 7200.0, "insufficient_quota"))
    notices(Throttled("alpha", 0.5))  # a script hears only the quota
    assert len(said) == 1
    reset = time.strftime("%H:%M", time.localtime(7200.0))
    assert said[0] == f"quota exhausted on alpha until {reset} (in 2h 0m): insufficient_quota"
    clock.now += 7200.0  # reset, then exhausted again: said again
    notices(QuotaExhausted("alpha", 60.0, "insufficient_quota"))
    assert len(said) == 2


def test_a_quota_of_unknown_reset_says_so() -> None:
    line = quota_line(QuotaExhausted("alpha", None, "billing"), 0.0)
    assert (
        line == "quota exhausted on alpha until it resets (the provider did not say when): billing"
    )


# --- stream-json ---------------------------------------------------------------------


def events(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_stream_json_tells_quota_throttling_and_the_retry_budget_as_system_events() -> None:
    out = io.StringIO()
    clock = Clock()
    stream = StreamJson(out, partial=False, clock=clock)
    stream.watch_budget(lambda: ClientStatus([provider()], None, None, None, 0), wall=lambda: 1e9)
    for _ in range(3):
        stream.client_event(QuotaExhausted("alpha", 3600.0, "insufficient_quota"))
    stream.client_event(Throttled("alpha", 0.25))
    stream.client_event(RetryBudgetSpent("alpha"))
    stream.client_event(RateLimitWait("alpha", 2.0, max_wait=120.0))
    stream._flush()
    system = [e for e in events(out) if e["type"] == "system"]
    assert [e["subtype"] for e in system] == [
        "quota",
        "throttled",
        "retry_budget",
        "rate_limit_wait",
    ]
    quota = system[0]
    assert quota["provider"] == "alpha"
    assert quota["resets_in"] == 3600.0
    assert quota["resetsAt"] == 1_000_003_600
    assert quota["detail"] == "insufficient_quota"
    assert system[1]["probability"] == 0.25
    assert system[3]["max_wait"] == 120.0


# --- doctor --------------------------------------------------------------------------


class KeptStore(MemoryStore):
    """A store that keeps the restraint (as the core's stores will)."""

    async def view(self, account: str, policy: AccountPolicy) -> AccountView:
        return AccountView(retry_budget=3.5, throttled=4, quota_reset_in=120.0)


async def test_doctor_shows_each_accounts_retry_budget_and_throttling() -> None:
    lab = ProviderSettings("lab", "m", base_url="http://127.0.0.1:9/v1")
    views = await account_views([lab], KeptStore())
    screen = io.StringIO()
    result = ProbeResult("lab", "in use", "not needed", True, "answered", "m", 12.0)
    report([result], make_console(file=screen, width=200), views)
    shown = screen.getvalue()
    assert (
        "account: retry budget 3.5 left, 4 refused locally (throttling, last 2 min), "
        "quota exhausted, resets in 120s"
    ) in shown


def test_doctor_says_nothing_of_an_account_whose_store_keeps_no_restraint() -> None:
    assert account_line(AccountView()) is None
    assert (
        account_line(AccountView(retry_budget=5.0))
        == "account: retry budget 5.0 left, none throttled"
    )
