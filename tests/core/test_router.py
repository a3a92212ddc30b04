"""Router: configured order while healthy, sick providers drop behind, probing ones
keep their place, and old outcomes are forgotten."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from qwen_dev_cli.core.account import AccountView
from qwen_dev_cli.core.router import ProviderHealth, ProviderSlot, Router
from qwen_dev_cli.core.settings import DEFAULT_CONTEXT_WINDOW
from qwen_dev_cli.core.types import ChatRequest, ProviderChunk, ProviderReply

from .fakes import FakeClock


@dataclass
class NamedProvider:
    """A provider the router can rank; it is never called."""

    name: str
    model: str = "qwen"
    max_tokens: int | None = None
    context_window: int = DEFAULT_CONTEXT_WINDOW

    async def chat(self, request: ChatRequest) -> ProviderReply:
        raise AssertionError("the router never calls a provider")

    def stream(self, request: ChatRequest) -> AsyncIterator[ProviderChunk]:
        raise AssertionError("the router never calls a provider")

    async def aclose(self) -> None:
        return None


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=500.0)


def router_of(clock: FakeClock, *names: str, tolerance: float = 0.1, prior: float = 0.0) -> Router:
    """A router over raw success rates unless a test asks for smoothing."""
    slots = [
        ProviderSlot(NamedProvider(name), priority, ProviderHealth(clock=clock, window=300.0))
        for priority, name in enumerate(names)
    ]
    return Router(slots, tolerance=tolerance, prior=prior)


def record(router: Router, name: str, ok: int, failed: int) -> None:
    slot = router.get(name)
    assert slot is not None
    for _ in range(ok):
        slot.health.record(True)
    for _ in range(failed):
        slot.health.record(False)


def order(router: Router) -> list[str]:
    return [slot.name for slot in router.ranked()]


def test_configured_order_without_history(clock: FakeClock) -> None:
    assert order(router_of(clock, "sambanova", "hf", "ollama")) == ["sambanova", "hf", "ollama"]


def test_configured_order_while_all_healthy(clock: FakeClock) -> None:
    router = router_of(clock, "a", "b", "c")
    for name in "abc":
        record(router, name, ok=10, failed=0)
    assert order(router) == ["a", "b", "c"]


def test_failing_provider_drops_behind(clock: FakeClock) -> None:
    router = router_of(clock, "a", "b", "c")
    record(router, "a", ok=5, failed=5)
    record(router, "b", ok=10, failed=0)
    assert order(router) == ["b", "c", "a"]


def test_within_tolerance_keeps_configured_order(clock: FakeClock) -> None:
    router = router_of(clock, "a", "b")
    record(router, "a", ok=19, failed=2)  # 90.5 %
    record(router, "b", ok=10, failed=0)
    assert order(router) == ["a", "b"]


@pytest.mark.parametrize(("ok_a", "ok_b"), [(9, 10), (7, 8), (3, 4), (1, 2)])
def test_exactly_tolerance_below_the_best_keeps_its_place(ok_a: int, ok_b: int) -> None:
    router = router_of(FakeClock(), "a", "b")
    record(router, "a", ok=ok_a, failed=10 - ok_a)
    record(router, "b", ok=ok_b, failed=10 - ok_b)
    assert order(router) == ["a", "b"]


def test_just_beyond_tolerance_drops_behind(clock: FakeClock) -> None:
    router = router_of(clock, "a", "b")
    record(router, "a", ok=17, failed=3)  # 85 %
    record(router, "b", ok=20, failed=0)
    assert order(router) == ["b", "a"]


def test_trailing_providers_are_ranked_by_success_then_priority(clock: FakeClock) -> None:
    router = router_of(clock, "a", "b", "c", "d")
    record(router, "a", ok=1, failed=4)
    record(router, "b", ok=1, failed=1)
    record(router, "c", ok=4, failed=0)
    record(router, "d", ok=2, failed=2)
    assert order(router) == ["c", "b", "d", "a"]


def test_half_open_provider_keeps_its_configured_place(clock: FakeClock) -> None:
    router = router_of(clock, "a", "b")
    slot = router.get("a")
    assert slot is not None
    slot.learn(AccountView(state="OPEN", retry_in=30.0))
    record(router, "a", ok=0, failed=5)
    assert order(router) == ["b", "a"]  # OPEN: behind
    clock.advance(30.0)
    assert slot.breaker_state() == "HALF_OPEN"
    assert order(router) == ["a", "b"]  # its trial calls must get a turn


def test_outcomes_older_than_the_window_are_forgotten(clock: FakeClock) -> None:
    router = router_of(clock, "a", "b")
    record(router, "a", ok=0, failed=5)
    clock.advance(299.0)
    assert order(router) == ["b", "a"]
    clock.advance(2.0)
    assert order(router) == ["a", "b"]


def test_one_failure_after_a_quiet_spell_does_not_demote(clock: FakeClock) -> None:
    router = router_of(clock, "a", "b", prior=10.0)
    record(router, "a", ok=0, failed=1)
    record(router, "b", ok=1, failed=0)
    assert order(router) == ["a", "b"]
    record(router, "a", ok=0, failed=1)
    assert order(router) == ["b", "a"]


def test_default_window_is_a_minute() -> None:
    clock = FakeClock()
    health = ProviderHealth(clock=clock)
    health.record(False)
    clock.advance(59.0)
    assert health.success_rate() == 0.0
    clock.advance(2.0)
    assert health.success_rate() is None


def test_only_recent_samples_count(clock: FakeClock) -> None:
    health = ProviderHealth(clock=clock, max_samples=50)
    for ok in [False] * 50 + [True] * 50:
        health.record(ok)
    assert health.success_rate() == 1.0


def test_success_rate_without_history_is_unknown(clock: FakeClock) -> None:
    assert ProviderHealth(clock=clock).success_rate() is None


def test_get_by_name(clock: FakeClock) -> None:
    router = router_of(clock, "a", "b")
    slot = router.get("b")
    assert slot is not None
    assert slot.priority == 1
    assert router.get("zzz") is None
