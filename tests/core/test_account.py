"""The account rules with explicit time: what the real-time store tests cannot reach."""

from __future__ import annotations

import math

import pytest

from qwen_dev_cli.core import LLMClient
from qwen_dev_cli.core.account import (
    BUCKETS,
    MAX_COOLDOWN,
    TICKET_LEASE,
    WINDOW_GUARD,
    AccountPolicy,
    AccountState,
    Admitted,
    BreakerPolicy,
    Refused,
    Settlement,
)
from qwen_dev_cli.core.providers.openai_compat import OpenAICompatProvider


def test_a_dead_waiters_place_expires_and_those_behind_move_up() -> None:
    state = AccountState()
    policy = AccountPolicy(rpm=1, breaker=None)
    assert isinstance(state.admit(0.0, policy, 1, "r1"), Admitted)
    assert isinstance(state.admit(1.0, policy, 1, "r2", "dead"), Refused)
    assert isinstance(state.admit(2.0, policy, 1, "r3", "alive"), Refused)
    # The window frees at 60 s; "dead" stopped renewing at 1 s, so "alive" goes first.
    assert state.admit(60.5, policy, 1, "r4", "alive") == Admitted("r4", 0, False, 60_500, 1)
    assert 1.0 + TICKET_LEASE < 60.5


def test_the_guard_holds_an_admission_past_the_window() -> None:
    """Admissions are stamped before the request leaves, servers count on arrival: a
    request admitted the moment the oldest left our window could reach the server just
    inside its own. The client's accounts hold each admission a guard longer."""
    state = AccountState()
    policy = AccountPolicy(rpm=1, breaker=None, guard=WINDOW_GUARD)
    assert policy.held == 60.0 + WINDOW_GUARD
    assert isinstance(state.admit(0.0, policy, 1, "r1"), Admitted)
    early = state.admit(60.5, policy, 1, "r2")
    assert isinstance(early, Refused)
    assert early.reason == "budget"
    assert early.wait == pytest.approx(WINDOW_GUARD - 0.5)
    assert state.view(60.5, policy).rpm_left == 0
    assert isinstance(state.admit(60.0 + WINDOW_GUARD, policy, 1, "r3"), Admitted)
    # Without a guard, the same arithmetic is exact to the window.
    exact = AccountState()
    unguarded = AccountPolicy(rpm=1, breaker=None)
    exact.admit(0.0, unguarded, 1, "r1")
    assert isinstance(exact.admit(60.0, unguarded, 1, "r2"), Admitted)


@pytest.mark.parametrize("guard", [-1.0, math.inf, math.nan])
def test_a_guard_is_a_finite_number_of_seconds(guard: float) -> None:
    with pytest.raises(ValueError, match="guard"):
        AccountPolicy(guard=guard)


def test_the_clients_accounts_keep_the_guard() -> None:
    client = LLMClient([OpenAICompatProvider("p", base_url="http://127.0.0.1:9/v1", model="m")])
    assert [slot.policy.held for slot in client._router.slots] == [60.0 + WINDOW_GUARD]


def test_a_renewed_place_keeps_its_arrival_time() -> None:
    state = AccountState()
    policy = AccountPolicy(rpm=1, breaker=None)
    state.admit(0.0, policy, 1, "r1")
    state.admit(1.0, policy, 1, "x", "first")
    state.admit(1.5, policy, 1, "x", "second")
    for t in range(2, 59, 2):  # both renew within the lease until room is made
        state.admit(float(t), policy, 1, "x", "second")
        state.admit(float(t), policy, 1, "x", "first")
    refusal = state.admit(60.0, policy, 1, "y", "second")  # room, but not its turn
    assert isinstance(refusal, Refused)
    assert refusal.reason == "budget"
    assert isinstance(state.admit(60.0, policy, 1, "z", "first"), Admitted)


def test_json_round_trip_keeps_everything() -> None:
    state = AccountState()
    policy = AccountPolicy(rpm=5, tpm=500, breaker=BreakerPolicy(1, 30.0, 2))
    permit = state.admit(100.0, policy, 120, "r1")
    assert isinstance(permit, Admitted)
    state.settle(100.5, policy, permit, Settlement("failure", tokens=80, cooldown=5.0))
    state.admit(101.0, policy, 1, "r2", "t")
    again = AccountState.from_json(state.to_json())
    assert again == state
    assert again.view(102.0, policy) == state.view(102.0, policy)


def test_reads_what_luas_cjson_writes_for_empty_arrays() -> None:
    text = '{"e":{},"q":0,"n":0,"sr":null,"st":{},"cd":0,"b":["CLOSED",3,0,0,0,"",[]],"w":[]}'
    state = AccountState.from_json(text)
    assert (state.entries, state.waiters, state.breaker.epoch) == ([], {}, 3)


@pytest.mark.parametrize(
    "text", ['{"e": []}', "[]", "not json", '{"e":[],"n":0,"cd":0,"b":["AJAR"],"w":{}}']
)
def test_anything_else_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError, match="not an account state"):
        AccountState.from_json(text)


def test_view_changes_nothing() -> None:
    state = AccountState()
    policy = AccountPolicy(rpm=2, breaker=BreakerPolicy(1, 10.0, 1))
    permit = state.admit(0.0, policy, 1, "r1")
    assert isinstance(permit, Admitted)
    state.settle(0.0, policy, permit, Settlement("failure"))
    before = state.to_json()
    assert state.view(20.0, policy).state == "HALF_OPEN"
    assert state.to_json() == before


@pytest.mark.parametrize(("rpm", "tpm"), [(0, None), (None, 0), (-1, 5)])
def test_budgets_below_one_are_refused(rpm: int | None, tpm: int | None) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        AccountPolicy(rpm=rpm, tpm=tpm)


def test_the_window_stays_small_at_high_rates_and_reconciles_exactly() -> None:
    state = AccountState()
    policy = AccountPolicy(rpm=100_000, tpm=10_000_000, breaker=None)
    permits = []
    for i in range(5000):  # 5,000 requests over 50 s
        permit = state.admit(i * 0.01, policy, 100, f"r{i}")
        assert isinstance(permit, Admitted)
        permits.append(permit)
    assert len(state.entries) <= BUCKETS + 1
    for permit in permits:
        state.settle(50.0, policy, permit, Settlement("success", tokens=40))
    view = state.view(50.0, policy)
    assert view.rpm_left == 100_000 - 5000
    assert view.tpm_left == 10_000_000 - 5000 * 40


def test_a_bucket_leaves_with_its_latest_request_never_earlier() -> None:
    state = AccountState()
    policy = AccountPolicy(rpm=2, breaker=None)
    state.admit(0.0, policy, 1, "a")
    state.admit(0.5, policy, 1, "b")  # same bucket as "a" (0.6 s wide)
    refusal = state.admit(1.0, policy, 1, "c")
    assert isinstance(refusal, Refused)
    assert refusal.wait == pytest.approx(59.5)  # when "b" leaves, not "a"
    assert isinstance(state.admit(60.5, policy, 1, "d"), Admitted)


@pytest.mark.parametrize("cooldown", [float("nan"), float("-inf"), -5.0])
def test_nonsense_cool_downs_are_ignored(cooldown: float) -> None:
    state = AccountState()
    policy = AccountPolicy()
    permit = state.admit(0.0, policy, 1, "r")
    assert isinstance(permit, Admitted)
    state.settle(0.0, policy, permit, Settlement("neutral", cooldown=cooldown))
    assert state.view(0.0, policy).cooldown == 0.0


def test_no_retry_after_locks_an_account_away_for_more_than_a_day() -> None:
    state = AccountState()
    policy = AccountPolicy()
    permit = state.admit(0.0, policy, 1, "r")
    assert isinstance(permit, Admitted)
    state.settle(0.0, policy, permit, Settlement("neutral", cooldown=float("inf")))
    assert state.view(0.0, policy).cooldown == MAX_COOLDOWN


def test_a_clock_that_steps_back_keeps_buckets_in_order_and_reconcilable() -> None:
    state = AccountState()
    policy = AccountPolicy(tpm=1000, breaker=None)
    first = state.admit(100.0, policy, 300, "a")
    second = state.admit(90.0, policy, 300, "b")  # NTP stepped the clock back
    assert isinstance(first, Admitted)
    assert isinstance(second, Admitted)
    assert [e[0] for e in state.entries] == sorted(e[0] for e in state.entries)
    state.settle(90.5, policy, second, Settlement("success", tokens=50))
    assert state.tokens == 350


def test_restraint_survives_json_and_a_state_from_before_it_loads() -> None:
    state = AccountState()
    policy = AccountPolicy(breaker=None, retry_ratio=0.2, throttle_k=2.0)
    permit = state.admit(100.0, policy, 1, "r1", retry=True)
    assert isinstance(permit, Admitted)
    state.settle(101.0, policy, permit, Settlement("failure", quota=50.0))
    again = AccountState.from_json(state.to_json())
    assert again == state
    assert again.view(102.0, policy).quota_reset_in == 49.0
    assert again.view(102.0, policy).retry_budget == 9.0  # the floor, one retry spent
    old = '{"e":[],"q":0,"n":0,"sr":null,"st":null,"cd":0,"b":["CLOSED",0,0,0,0,"",{}],"w":{}}'
    assert AccountState.from_json(old).health == []


def test_health_buckets_never_go_back_with_the_clock() -> None:
    state = AccountState()
    policy = AccountPolicy(breaker=None, throttle_k=2.0)
    for now in (1000.0, 1012.0, 990.0):  # the clock stepped back 22 s
        permit = state.admit(now, policy, 1, f"r{now}")
        assert isinstance(permit, Admitted)
        state.settle(now, policy, permit, Settlement("failure"))
    assert [bucket[0] for bucket in state.health] == [1_000_000, 1_010_000]
    assert state.health[-1][1] == 2
