"""The client's configuration objects: checked when made, today's defaults when left
out, and ``from_settings`` builds the same client a hand-written call does."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, get_args

import pytest

from qwen_dev_cli.core import (
    BreakerPolicy,
    ClientSettings,
    LLMClient,
    ProviderSettings,
    RateLimits,
    RetryPolicy,
    RetrySettings,
    Timeouts,
)
from qwen_dev_cli.core.retry import JITTERS, backoff_wait
from qwen_dev_cli.core.settings import BreakerSettings, JitterMode

from .scripted import ScriptedProvider


def test_every_jitter_mode_has_exactly_one_strategy() -> None:
    assert set(JITTERS) == set(get_args(JitterMode))


@pytest.mark.parametrize("mode", get_args(JitterMode))
def test_every_jitter_mode_builds_a_backoff(mode: JitterMode) -> None:
    assert backoff_wait(RetryPolicy(jitter=mode)) is not None


def test_a_retry_policy_has_the_retry_tables_fields_and_defaults() -> None:
    table = RetrySettings()
    policy = RetryPolicy()
    assert dataclasses.astuple(policy) == dataclasses.astuple(table)
    assert (policy.max_retries, policy.base_delay, policy.max_delay) == (3, 1.0, 60.0)
    assert (policy.max_retry_after, policy.jitter) == (60.0, "proportional")


def test_a_configured_table_becomes_the_same_policy() -> None:
    table = RetrySettings(5, 2.0, 30.5, 0.0, "full")
    assert RetryPolicy.of(table) == RetryPolicy(5, 2.0, 30.5, 0.0, "full")
    policy = RetryPolicy(max_retries=1)
    assert RetryPolicy.of(policy) is policy


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_retries": -1}, r"RetryPolicy\.max_retries must be an integer of at least 0"),
        ({"max_retries": 2.5}, r"max_retries must be an integer"),
        ({"max_retries": True}, r"max_retries must be an integer"),
        ({"base_delay": 0}, r"base_delay must be a finite number greater than 0"),
        ({"max_delay": math.nan}, r"max_delay must be a finite number"),
        ({"max_retry_after": -1.0}, r"max_retry_after must be a finite number of at least 0"),
        ({"jitter": "random"}, r"jitter must be one of 'proportional', 'full', not 'random'"),
    ],
)
def test_a_retry_policy_refuses_what_a_config_file_may_not_say(
    options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        RetryPolicy(**options)


def test_a_retry_policy_is_checked_when_changed_too() -> None:
    with pytest.raises(ValueError, match="max_retries"):
        dataclasses.replace(RetryPolicy(), max_retries=-1)


@pytest.mark.parametrize(
    "options", [{"attempt": 0}, {"attempt": -1.0}, {"first_byte": 0.0}, {"deadline": math.nan}]
)
def test_timeouts_must_be_positive(options: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=r"Timeouts\.\w+ must be a positive number"):
        Timeouts(**options)


def test_the_stream_deadline_is_ten_attempts_and_at_least_ten_minutes() -> None:
    assert Timeouts().stream_deadline == 600.0
    assert Timeouts(attempt=120.0).stream_deadline == 1200.0
    assert Timeouts(attempt=120.0, deadline=5.0).stream_deadline == 5.0


@pytest.mark.parametrize("options", [{"requests_per_minute": 0}, {"tokens_per_minute": -5}])
def test_rate_limits_below_one_are_refused(options: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        RateLimits(**options)


def test_a_breaker_policy_is_checked() -> None:
    with pytest.raises(ValueError, match="failure_threshold"):
        BreakerPolicy(failure_threshold=0)


def test_the_policy_objects_are_frozen() -> None:
    for policy in (RetryPolicy(), BreakerPolicy(), RateLimits(), Timeouts()):
        field = dataclasses.fields(policy)[0].name
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(policy, field, None)


def slots(client: LLMClient) -> list[Any]:
    """What the client holds for each provider (a breaker's lease, a first-byte limit:
    nothing public shows them)."""
    return list(client._router.slots)


def budgets(client: LLMClient) -> list[tuple[int | None, int | None]]:
    return [(p.rpm_limit, p.tpm_limit) for p in client.status().providers]


def test_left_out_each_concern_keeps_its_default() -> None:
    client = LLMClient([ScriptedProvider("a")])
    assert client.retry == RetryPolicy()
    assert client.timeouts == Timeouts()
    [slot] = slots(client)
    # A trial call's slot is leased for four attempts: a stream may outlast one.
    assert slot.policy.breaker == BreakerPolicy(trial_lease=240.0)
    assert budgets(client) == [(None, None)]


def test_none_turns_the_breaker_and_rate_limiting_off() -> None:
    settings = ProviderSettings("s", "m", base_url="http://127.0.0.1:9/v1", rpm=5, tpm=50)
    client = LLMClient([ScriptedProvider("a"), settings], breaker=None, rate_limits=None)
    assert [slot.policy.breaker for slot in slots(client)] == [None, None]
    assert budgets(client) == [(None, None), (None, None)]


def test_rate_limits_apply_to_providers_passed_as_objects_only() -> None:
    settings = ProviderSettings("s", "m", base_url="http://127.0.0.1:9/v1", rpm=5)
    client = LLMClient(
        [ScriptedProvider("a"), settings],
        rate_limits=RateLimits(requests_per_minute=7, tokens_per_minute=700),
    )
    assert budgets(client) == [(7, 700), (5, None)]


def test_first_byte_applies_to_providers_passed_as_objects_only() -> None:
    settings = ProviderSettings("s", "m", base_url="http://127.0.0.1:9/v1", first_byte_timeout=3)
    client = LLMClient([ScriptedProvider("a"), settings], timeouts=Timeouts(first_byte=0.5))
    assert [slot.first_byte_timeout for slot in slots(client)] == [0.5, 3]


def test_from_settings_builds_what_the_configuration_says() -> None:
    providers = (
        ProviderSettings("a", "m", base_url="http://127.0.0.1:9/v1", timeout=30.0),
        ProviderSettings("b", "m", base_url="http://127.0.0.1:9/v1", timeout=90.0),
    )
    client = LLMClient.from_settings(
        ClientSettings(
            providers,
            retry=RetrySettings(5, 2.0, 30.5, 0.0, "full"),
            circuit_breaker=BreakerSettings(True, 2, 10.0, 1),
            rate_limit_enabled=False,
            telemetry_enabled=False,
        )
    )
    assert client.retry == RetryPolicy(5, 2.0, 30.5, 0.0, "full")
    assert client.timeouts == Timeouts(attempt=90.0)  # the slowest provider's
    for slot in slots(client):
        assert slot.policy.breaker == BreakerPolicy(2, 10.0, 1, trial_lease=360.0)
    assert budgets(client) == [(None, None), (None, None)]
    assert not client.telemetry.enabled


def test_from_settings_without_a_breaker() -> None:
    settings = ClientSettings(
        (ProviderSettings("a", "m", base_url="http://127.0.0.1:9/v1"),),
        circuit_breaker=BreakerSettings(enabled=False),
    )
    [slot] = slots(LLMClient.from_settings(settings))
    assert slot.policy.breaker is None
