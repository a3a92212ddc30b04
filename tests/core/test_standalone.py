"""CircuitBreaker and RateLimiter are public API on their own (docs/LLM_CLIENT_GUIDE.md,
"The breaker and the limiter alone"): the guide's example runs, and both behave as
documented through ``qwen_dev_cli.core``'s surface alone."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

import qwen_dev_cli.core as core
from qwen_dev_cli.core import BreakerState, CircuitBreaker, CircuitOpenError, RateLimiter

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "LLM_CLIENT_GUIDE.md"


def test_both_are_in_the_public_surface() -> None:
    assert {"CircuitBreaker", "RateLimiter", "BreakerState", "CircuitOpenError"} <= set(
        core.__all__
    )


def test_the_guides_example_runs() -> None:
    section = GUIDE.read_text(encoding="utf-8").split("## The breaker and the limiter alone")[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match is not None
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(match.group(1), str(GUIDE), "exec"), {"__name__": "guide"})
    assert printed.getvalue() == "...\n"


def test_a_breaker_opens_refuses_then_lets_a_trial_through() -> None:
    now = [0.0]
    breaker = CircuitBreaker(failure_threshold=2, recovery_timeout=10.0, clock=lambda: now[0])
    states: list[BreakerState] = []
    for _ in range(2):
        breaker.acquire().failure()
    states.append(breaker.state)
    with pytest.raises(CircuitOpenError):
        breaker.acquire()
    now[0] = 10.0
    states.append(breaker.state)
    assert states == [BreakerState.OPEN, BreakerState.HALF_OPEN]
    breaker.acquire().success()


async def test_a_limiter_admits_its_budget_and_reconciles_tokens() -> None:
    limiter = RateLimiter(requests_per_minute=2, tokens_per_minute=1_000, clock=lambda: 0.0)
    reservation = await limiter.acquire(tokens=600)
    reservation.reconcile(100)  # the real count gives 500 back
    await limiter.acquire(tokens=800)
    assert limiter.remaining() == (0, 100)


def test_the_restraint_errors_and_events_are_public_with_the_others() -> None:
    """Issue 21's errors are raised to callers of ``LLMClient`` and its events reach
    their subscribers: importable from ``qwen_dev_cli.core`` like the others."""
    from qwen_dev_cli.core import errors, events

    for name, module in [
        ("BudgetWaitExceeded", errors),
        ("InsufficientQuota", errors),
        ("LocallyThrottled", errors),
        ("RetryBudgetExhausted", errors),
        ("RetryBudgetRefused", errors),
        ("QuotaExhausted", events),
        ("RetryBudgetSpent", events),
        ("Throttled", events),
    ]:
        assert name in core.__all__
        assert getattr(core, name) is getattr(module, name)
