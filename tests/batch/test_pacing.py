"""A batch's prompts in flight follow from the budget: what the account's minute serves
times the observed latency, under ``--concurrency``, and never more than the budget
left now (other processes' requests included), so nothing queues that the budget
cannot take. The integration tests run a real client over a loopback server."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from faultserver import FaultServer
from qwen_dev_cli.batch.pacing import GUESSED_LATENCY, GUESSED_TOKENS, Budget, Pacing, budget_left
from qwen_dev_cli.batch.runner import RequestOptions
from qwen_dev_cli.core.account import AccountPolicy, Admitted
from qwen_dev_cli.core.state import MemoryStore, account_key
from qwen_dev_cli.core.status import ProviderStatus

from .test_runner import Batch, server

__all__ = ["server"]  # the fixture, imported for pytest


def provider(
    rpm: int | None,
    left: int | None,
    state: str = "CLOSED",
    tpm: int | None = None,
    tokens_left: int | None = None,
) -> ProviderStatus:
    return ProviderStatus("p", "m", state, 0.0, 0.0, rpm, left, tpm, tokens_left, None)


def test_the_limit_is_the_budgets_rate_times_the_latency_under_the_ceiling() -> None:
    pacing = Pacing.of(8, [provider(60, 60), provider(60, 60)])  # 2 requests a second
    assert pacing.limit() == min(8, math.ceil(2 * GUESSED_LATENCY))  # before any answer
    pacing.observe(1.2)
    assert pacing.limit() == 3  # 2/s x 1.2 s: three in flight keep the budget busy
    for _ in range(30):
        pacing.observe(0.1)
    assert pacing.limit() == 1  # at least one
    for _ in range(30):
        pacing.observe(100.0)
    assert pacing.limit() == 8  # --concurrency stays the ceiling


def test_without_a_budget_the_ceiling_alone_limits() -> None:
    pacing = Pacing.of(5, [provider(60, 60), provider(None, None)])
    pacing.observe(0.01)
    assert pacing.limit() == 5
    assert pacing.allows(4, 4, [provider(60, 0)])


def test_no_prompt_starts_that_the_budget_left_cannot_take() -> None:
    pacing = Pacing(8, (Budget(600, None),), latency=1.0)  # 10 a second: limit 8
    providers = [provider(600, 2)]
    assert pacing.allows(1, 1, providers)  # two left, one started and not yet admitted
    assert not pacing.allows(2, 2, providers)  # both spoken for
    assert pacing.allows(2, 0, providers)  # the two in flight were admitted already
    assert pacing.allows(0, 0, [provider(600, 0)])  # one always goes: it learns the wait
    # A provider whose breaker is open serves nothing now.
    assert budget_left([provider(600, 50, "OPEN"), provider(600, 1)]) == 1


def test_tokens_a_minute_pace_as_requests_a_minute_do() -> None:
    """``tpm = 20000`` with prompts reserving 4,000 tokens serves five a minute, whatever
    ``rpm`` allows; once answers say what a request really cost, that counts."""
    pacing = Pacing.of(8, [provider(600, 600, tpm=20_000, tokens_left=20_000)])
    assert pacing.rate == 20_000 / 60 / GUESSED_TOKENS  # nothing reserved yet: a guess
    pacing.reserving(4_000)
    assert pacing.rate == 5 / 60
    pacing.observe(12.0)
    assert pacing.limit() == 1  # 5 a minute x 12 s
    for _ in range(30):
        pacing.observe(12.0, tokens=400)  # the answers were short: reconciled to 400
    assert pacing.rate == pytest.approx(50 / 60)
    assert pacing.limit() == 8  # 50 a minute x 12 s is 10: the ceiling, 8
    # What may start now is what the tokens left can reserve, and the requests left.
    assert budget_left([provider(600, 600, tpm=20_000, tokens_left=9_000)], 4_000) == 2
    assert budget_left([provider(1, 1, tpm=20_000, tokens_left=9_000)], 4_000) == 1
    assert budget_left([provider(None, None, tpm=20_000, tokens_left=3_999)], 4_000) == 0
    assert not pacing.allows(1, 1, [provider(600, 600, tpm=20_000, tokens_left=3_999)])
    # A provider without either limit leaves the ceiling alone to limit.
    assert Pacing.of(8, [provider(None, None, tpm=20_000), provider(None, None)]).rate is None


async def test_a_batch_holds_back_what_the_tokens_left_cannot_take(
    server: FaultServer, tmp_path: Path
) -> None:
    """``tpm = 2000`` and prompts that reserve about 910 tokens (900 of answer room):
    two fit at once. Eight allowed in flight, the batch starts only what the tokens left
    can take, so no prompt waits in the account's queue; the short answers give their
    tokens back and the rest follow."""
    batch = Batch(server, tmp_path, tpm=2_000)
    end, tally = await batch.run(8, concurrency=8, request=RequestOptions(max_tokens=900))
    assert end.stopped is None
    assert sum(r["ok"] for r in batch.results().values()) == 8
    assert not batch.queueing.is_set()  # no prompt queued for budget in the client
    assert tally.remaining == 0


async def test_a_batch_sends_only_what_the_minute_can_take_then_stops(
    server: FaultServer, tmp_path: Path
) -> None:
    """Four requests a minute, eight prompts, eight allowed in flight: four are answered,
    the fifth learns the budget frees in about a minute (beyond --max-wait) and the
    batch stops; nothing waited in the account's queue, the rest is left for a resume."""
    batch = Batch(server, tmp_path, rpm=4, max_wait=2.0)
    end, tally = await batch.run(8, concurrency=8, max_wait=2.0)
    results = batch.results()
    assert sum(r["ok"] for r in results.values()) == 4
    assert end.stopped is not None
    assert "lab's budget for this minute is spent" in end.stopped
    assert "more than --max-wait 2s" in end.stopped
    assert tally.remaining == 3
    assert len(server.requests) == 4
    assert not batch.queueing.is_set()  # no prompt queued for budget in the client


async def test_budget_other_processes_spent_holds_prompts_back_in_the_batch(
    server: FaultServer, tmp_path: Path
) -> None:
    """A REPL (another client on the same account) has spent 28 of 30 requests this
    minute: the batch sends two and holds the rest back instead of queueing them."""
    store = MemoryStore()
    policy = AccountPolicy(rpm=30)
    key = account_key(server.base_url, "fault-model", None, "lab")
    for n in range(28):
        assert isinstance(await store.admit(key, policy, 1, f"repl-{n}"), Admitted)
    batch = Batch(server, tmp_path, rpm=30, state=store, max_wait=2.0)
    end, tally = await batch.run(6, concurrency=8, max_wait=2.0)
    assert sum(r["ok"] for r in batch.results().values()) == 2
    assert len(server.requests) == 2
    assert end.stopped is not None
    assert "budget" in end.stopped
    assert not batch.queueing.is_set()
    assert tally.remaining == 3
