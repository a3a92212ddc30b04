"""What every state store must do.

Each store's test module subclasses :class:`StoreContract` and provides three fixtures:
``store``; ``peer``, a second handle on the same state, as another process would open it
(the same object for the in-process store); and ``wait``, which lets time pass for the
store: a :class:`~tests.core.fakes.FakeClock`'s ``sleep`` for a store whose clock is
injected, ``asyncio.sleep`` for one that reads a clock of its own (a Redis store uses
the server's). Windows and timeouts are a fraction of a second so that even real time
stays fast; waits are asserted with margins that real time needs.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

from qwen_dev_cli.core.account import (
    AccountPolicy,
    Admitted,
    BreakerPolicy,
    Outcome,
    Refused,
    Settlement,
    Transition,
)
from qwen_dev_cli.core.state import ProviderStateStore
from qwen_dev_cli.core.types import RateLimitHeaders

#: Lets ``seconds`` pass for the store under test.
Wait = Callable[[float], Awaitable[None]]

FAST_BREAKER = BreakerPolicy(
    failure_threshold=2, recovery_timeout=0.3, half_open_max_calls=1, trial_lease=5.0
)


def rid() -> str:
    return uuid.uuid4().hex


def account() -> str:
    return f"http://127.0.0.1:1/v1|model|{uuid.uuid4().hex[:16]}"


async def admitted(
    store: ProviderStateStore, key: str, policy: AccountPolicy, tokens: int = 1
) -> Admitted:
    decision = await store.admit(key, policy, tokens, rid())
    assert isinstance(decision, Admitted), decision
    return decision


async def refused(
    store: ProviderStateStore,
    key: str,
    policy: AccountPolicy,
    tokens: int = 1,
    ticket: str | None = None,
) -> Refused:
    decision = await store.admit(key, policy, tokens, rid(), ticket)
    assert isinstance(decision, Refused), decision
    return decision


class StoreContract:
    async def test_requests_per_window_are_shared(
        self, store: ProviderStateStore, peer: ProviderStateStore
    ) -> None:
        key, policy = account(), AccountPolicy(rpm=3, window=1.0, breaker=None)
        await admitted(store, key, policy)
        await admitted(peer, key, policy)
        await admitted(store, key, policy)
        refusal = await refused(peer, key, policy)
        assert refusal.reason == "budget"
        assert 0.5 < refusal.wait <= 1.01  # stamps are whole milliseconds, rounded up
        view = await store.view(key, policy)
        assert view.rpm_left == 0

    async def test_window_frees_after_its_length(
        self, store: ProviderStateStore, wait: Wait
    ) -> None:
        key, policy = account(), AccountPolicy(rpm=1, window=0.3, breaker=None)
        await admitted(store, key, policy)
        refusal = await refused(store, key, policy)
        await wait(refusal.wait + 0.02)
        await admitted(store, key, policy)

    async def test_tokens_are_reserved_then_reconciled(
        self, store: ProviderStateStore, peer: ProviderStateStore
    ) -> None:
        key, policy = account(), AccountPolicy(tpm=100, window=5.0, breaker=None)
        first = await admitted(store, key, policy, tokens=60)
        assert (await refused(peer, key, policy, tokens=60)).reason == "budget"
        settled = await store.settle(key, policy, first, Settlement("success", tokens=10))
        assert settled.view.tpm_left == 90
        await admitted(peer, key, policy, tokens=60)
        assert (await store.view(key, policy)).tpm_left == 30

    async def test_waiting_requests_are_served_in_arrival_order(
        self, store: ProviderStateStore, peer: ProviderStateStore, wait: Wait
    ) -> None:
        key, policy = account(), AccountPolicy(rpm=1, window=0.3, breaker=None)
        await admitted(store, key, policy)
        await refused(store, key, policy, ticket="early")
        await wait(0.01)
        await refused(peer, key, policy, ticket="late")
        assert (await store.view(key, policy)).waiting == 2
        await wait(0.35)
        # Room again, but the request that queued first goes first, whoever asks.
        behind = await refused(peer, key, policy, ticket="late")
        assert behind.reason == "budget"
        assert (await refused(peer, key, policy)).reason == "budget"  # no cutting in
        assert isinstance(await peer.admit(key, policy, 1, rid(), "early"), Admitted)
        await wait(0.35)
        assert isinstance(await store.admit(key, policy, 1, rid(), "late"), Admitted)
        assert (await store.view(key, policy)).waiting == 0

    async def test_server_headers_tighten_the_shared_budget(
        self, store: ProviderStateStore, peer: ProviderStateStore
    ) -> None:
        key, policy = account(), AccountPolicy(rpm=100, window=5.0, breaker=None)
        first = await admitted(store, key, policy)
        headers = RateLimitHeaders(remaining_requests=0, reset_requests=0.4)
        await store.settle(key, policy, first, Settlement("success", server=headers))
        refusal = await refused(peer, key, policy)
        assert refusal.reason == "budget"
        assert 0.2 < refusal.wait <= 0.4
        assert (await peer.view(key, policy)).rpm_left == 0

    async def test_a_429_cools_the_account_down_for_everyone(
        self, store: ProviderStateStore, peer: ProviderStateStore, wait: Wait
    ) -> None:
        key, policy = account(), AccountPolicy(breaker=FAST_BREAKER)
        first = await admitted(store, key, policy)
        await store.settle(key, policy, first, Settlement("neutral", cooldown=0.4))
        refusal = await refused(peer, key, policy)
        assert refusal.reason == "cooldown"
        assert 0.2 < refusal.wait <= 0.4
        # A shorter Retry-After seen later never shortens it.
        second = await admitted(store, account(), policy)
        await store.settle(key, policy, second, Settlement("neutral", cooldown=0.05))
        assert (await peer.view(key, policy)).cooldown > 0.2
        await wait(refusal.wait + 0.02)
        await admitted(peer, key, policy)

    async def test_failures_of_short_lived_processes_open_the_breaker(
        self, store: ProviderStateStore, peer: ProviderStateStore
    ) -> None:
        key, policy = account(), AccountPolicy(breaker=FAST_BREAKER)
        one = await admitted(store, key, policy)
        assert (await store.settle(key, policy, one, Settlement("failure"))).transitions == ()
        two = await admitted(peer, key, policy)
        settled = await peer.settle(key, policy, two, Settlement("failure"))
        assert [(t.old, t.new) for t in settled.transitions] == [("CLOSED", "OPEN")]
        assert settled.view.state == "OPEN"
        refusal = await refused(store, key, policy)
        assert refusal.reason == "open"
        assert 0.1 < refusal.wait <= 0.3

    async def test_a_success_resets_the_consecutive_failures(
        self, store: ProviderStateStore, peer: ProviderStateStore
    ) -> None:
        key, policy = account(), AccountPolicy(breaker=FAST_BREAKER)
        outcomes: tuple[Outcome, ...] = ("failure", "success", "failure")
        for outcome in outcomes:
            permit = await admitted(store, key, policy)
            await peer.settle(key, policy, permit, Settlement(outcome))
        view = await store.view(key, policy)
        assert (view.state, view.failures) == ("CLOSED", 1)

    async def test_half_open_allows_limited_trials_and_successes_close(
        self, store: ProviderStateStore, peer: ProviderStateStore, wait: Wait
    ) -> None:
        key, policy = account(), AccountPolicy(breaker=FAST_BREAKER)
        await self._open(store, key, policy)
        await wait(0.32)
        assert (await peer.view(key, policy)).state == "HALF_OPEN"
        trial = await store.admit(key, policy, 1, rid())
        assert isinstance(trial, Admitted)
        assert trial.trial
        assert trial.transitions == (Transition("OPEN", "HALF_OPEN", trial.transitions[0].reason),)
        assert (await refused(peer, key, policy)).reason == "half_open_full"
        settled = await store.settle(key, policy, trial, Settlement("success"))
        assert [(t.old, t.new) for t in settled.transitions] == [("HALF_OPEN", "CLOSED")]
        await admitted(peer, key, policy)

    async def test_a_failed_trial_reopens(self, store: ProviderStateStore, wait: Wait) -> None:
        key, policy = account(), AccountPolicy(breaker=FAST_BREAKER)
        await self._open(store, key, policy)
        await wait(0.32)
        trial = await admitted(store, key, policy)
        settled = await store.settle(key, policy, trial, Settlement("failure"))
        assert [(t.old, t.new) for t in settled.transitions] == [("HALF_OPEN", "OPEN")]
        assert (await refused(store, key, policy)).reason == "open"

    async def test_a_trial_slot_of_a_dead_process_expires(
        self, store: ProviderStateStore, wait: Wait
    ) -> None:
        breaker = BreakerPolicy(1, recovery_timeout=0.1, half_open_max_calls=1, trial_lease=0.2)
        key, policy = account(), AccountPolicy(breaker=breaker)
        await self._open(store, key, policy)
        await wait(0.12)
        await admitted(store, key, policy)  # the trial of a process that then dies
        assert (await refused(store, key, policy)).reason == "half_open_full"
        await wait(0.22)
        assert (await admitted(store, key, policy)).trial

    async def test_a_permit_from_before_a_transition_reports_into_the_void(
        self, store: ProviderStateStore
    ) -> None:
        key, policy = account(), AccountPolicy(breaker=FAST_BREAKER)
        slow = await admitted(store, key, policy)
        await self._open(store, key, policy)
        await store.reset(key)
        settled = await store.settle(key, policy, slow, Settlement("failure"))
        assert settled.transitions == ()
        assert settled.view.failures == 0

    async def test_reset_closes_and_ends_the_cool_down(self, store: ProviderStateStore) -> None:
        key, policy = account(), AccountPolicy(breaker=FAST_BREAKER)
        await self._open(store, key, policy)
        transitions = await store.reset(key)
        assert [(t.old, t.new) for t in transitions] == [("OPEN", "CLOSED")]
        view = await store.view(key, policy)
        assert (view.state, view.cooldown) == ("CLOSED", 0.0)
        await admitted(store, key, policy)

    async def test_an_unknown_account_is_fresh(self, store: ProviderStateStore) -> None:
        view = await store.view(account(), AccountPolicy(rpm=5, tpm=100))
        assert (view.state, view.rpm_left, view.tpm_left, view.cooldown) == ("CLOSED", 5, 100, 0)

    async def test_check_names_the_store(self, store: ProviderStateStore) -> None:
        assert await store.check()

    # --- account-wide restraint (issue 21) ----------------------------------------------

    async def test_the_retry_budget_is_the_accounts(
        self, store: ProviderStateStore, peer: ProviderStateStore
    ) -> None:
        key = account()
        policy = AccountPolicy(breaker=None, retry_ratio=0.5, retry_floor=1.0)
        assert (await store.view(key, policy)).retry_budget == 1.0
        retry = await store.admit(key, policy, 1, rid(), retry=True)
        assert isinstance(retry, Admitted)
        # The floor is spent, by another process: this one may not retry either.
        refusal = await peer.admit(key, policy, 1, rid(), retry=True)
        assert isinstance(refusal, Refused)
        assert refusal.reason == "retry_budget"
        assert "retry budget spent" in refusal.detail
        assert isinstance(await peer.admit(key, policy, 1, rid()), Admitted)  # not a retry
        # Two successes earn one retry (ratio 0.5).
        for _ in range(2):
            permit = await admitted(peer, key, policy)
            await peer.settle(key, policy, permit, Settlement("success"))
        assert (await store.view(key, policy)).retry_budget == 1.0
        assert isinstance(await store.admit(key, policy, 1, rid(), retry=True), Admitted)
        assert (await peer.view(key, policy)).retry_budget == 0.0
        assert (await peer.view(key, AccountPolicy())).retry_budget is None  # none kept

    async def test_adaptive_throttling_refuses_by_the_accounts_failures(
        self, store: ProviderStateStore, peer: ProviderStateStore
    ) -> None:
        key, policy = account(), AccountPolicy(breaker=None, throttle_k=2.0)
        # In flight, nothing is counted: a cold start never refuses a healthy provider.
        permits = [await store.admit(key, policy, 1, rid(), draw=0.0) for _ in range(12)]
        assert all(isinstance(p, Admitted) for p in permits)
        for permit in permits:
            assert isinstance(permit, Admitted)
            await store.settle(key, policy, permit, Settlement("failure"))
        # 12 failed attempts: refused with probability 12/13, in another process too.
        refusal = await peer.admit(key, policy, 1, rid(), draw=0.9)
        assert isinstance(refusal, Refused)
        assert refusal.reason == "throttled"
        assert "0 of the last 12 attempts" in refusal.detail
        assert isinstance(await peer.admit(key, policy, 1, rid(), draw=0.95), Admitted)
        assert isinstance(await peer.admit(key, policy, 1, rid()), Admitted)  # no draw
        assert (await store.view(key, policy)).throttled == 1
        # Successes bring it back gradually: 12 failures, 4 successes: p = (16 - 8)/17.
        for _ in range(4):
            permit = await admitted(store, key, policy)
            await store.settle(key, policy, permit, Settlement("success"))
        assert isinstance(await peer.admit(key, policy, 1, rid(), draw=0.48), Admitted)
        refusal = await peer.admit(key, policy, 1, rid(), draw=0.46)
        assert isinstance(refusal, Refused)
        assert refusal.reason == "throttled"
        off = AccountPolicy(breaker=None, throttle_k=0.0)
        assert isinstance(await peer.admit(key, off, 1, rid(), draw=0.0), Admitted)

    async def test_an_exhausted_quota_keeps_every_process_off_until_its_reset(
        self, store: ProviderStateStore, peer: ProviderStateStore, wait: Wait
    ) -> None:
        key, policy = account(), AccountPolicy(breaker=FAST_BREAKER)
        first = await admitted(store, key, policy)
        await store.settle(key, policy, first, Settlement("neutral", quota=0.4))
        refusal = await refused(peer, key, policy)
        assert refusal.reason == "quota"
        assert 0.2 < refusal.wait <= 0.4
        assert "quota exhausted" in refusal.detail
        assert 0.2 < (await peer.view(key, policy)).quota_reset_in <= 0.4
        await wait(refusal.wait + 0.02)
        await admitted(peer, key, policy)
        assert (await peer.view(key, policy)).quota_reset_in == 0.0
        again = await admitted(store, key, policy)
        await store.settle(key, policy, again, Settlement("neutral", quota=30.0))
        await peer.reset(key)
        await admitted(peer, key, policy)

    @staticmethod
    async def _open(store: ProviderStateStore, key: str, policy: AccountPolicy) -> None:
        assert policy.breaker is not None
        for _ in range(policy.breaker.failure_threshold):
            permit = await admitted(store, key, policy)
            await store.settle(key, policy, permit, Settlement("failure"))
        assert (await store.view(key, policy)).state == "OPEN"


__all__ = ["FAST_BREAKER", "StoreContract", "Wait", "account", "admitted", "refused", "rid"]
