"""Store selection, redaction, account keys, and the fallback that never costs an answer."""

from __future__ import annotations

import asyncio
import time

import pytest

from qwen_dev_cli.core.account import AccountPolicy, AccountView, Admitted, Refused, Settlement
from qwen_dev_cli.core.state import (
    FallbackStore,
    MemoryStore,
    StoreConfigError,
    StoreError,
    account_key,
    redact_url,
    validate_store_spec,
)

from .store_contract import account, rid


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:pw@h:6379/0", "redis://:***@h:6379/0"),
        ("rediss://user:s3cret@example.com:6380/2", "rediss://user:***@example.com:6380/2"),
        ("redis://u:p@ss@h:1/0", "redis://u:***@h:1/0"),
        ("redis://:pw@h:notaport/0", "redis://:***@h:notaport/0"),
        ("redis://h:6379/0", "redis://h:6379/0"),
        # Generated (base64) passwords hold "/", "?" and "#" (issue 22, finding 7).
        ("redis://:ab/cd+ef==@h:6379/0", "redis://:***@h:6379/0"),
        ("rediss://u:x?y#z@h:6380/1", "rediss://u:***@h:6380/1"),
        ("redis://:a/b@h:port/0", "redis://:***@h:port/0"),
    ],
)
def test_redact_url_hides_every_password(url: str, shown: str) -> None:
    assert redact_url(url) == shown


@pytest.mark.parametrize("spec", ["local", "memory", "redis://h:6379/0", "rediss://:p@h/3"])
def test_accepted_store_specs(spec: str) -> None:
    assert validate_store_spec(spec) == spec


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("sqlite", "expected 'local', 'memory'"),
        ("http://h:6379", "expected 'local', 'memory'"),
        ("redis://:secret@h:port/0", "malformed Redis URL"),
        ("redis://:se/cret@h:port/0", "malformed Redis URL"),
        ("redis://:se#cret@h:6379/x", "database must be a number|no host|malformed"),
        ("redis:///0", "no host"),
        ("redis://h:6379/zero", "database must be a number"),
    ],
)
def test_bad_store_specs_say_what_is_expected(spec: str, message: str) -> None:
    with pytest.raises(StoreConfigError, match=message) as info:
        validate_store_spec(spec)
    assert "cret" not in str(info.value)


def test_account_key_never_holds_the_key() -> None:
    key = account_key("https://api.example.com/v1/", "m", "sk-very-secret", "p")
    assert "sk-very-secret" not in key
    assert key.startswith("https://api.example.com/v1|m|")
    assert key != account_key("https://api.example.com/v1", "m", "sk-other", "p")
    assert key == account_key("https://api.example.com/v1", "m", "sk-very-secret", "other-name")


class SlowStore(MemoryStore):
    """A store that hangs (a Redis server stopped with SIGSTOP, say)."""

    kind = "redis"
    location = "redis://slow"
    calls = 0

    async def admit(
        self,
        account: str,
        policy: AccountPolicy,
        tokens: int,
        reservation: str,
        ticket: str | None = None,
        *,
        draw: float | None = None,
        retry: bool = False,
    ) -> Admitted | Refused:
        self.calls += 1
        await asyncio.sleep(30)
        raise AssertionError("unreachable")


class BrokenStore(MemoryStore):
    kind = "local"
    location = "/broken"

    async def admit(
        self,
        account: str,
        policy: AccountPolicy,
        tokens: int,
        reservation: str,
        ticket: str | None = None,
        *,
        draw: float | None = None,
        retry: bool = False,
    ) -> Admitted | Refused:
        raise StoreError("disk full")


async def test_a_hanging_store_holds_an_answer_up_for_at_most_its_timeout() -> None:
    warnings: list[str] = []
    slow = SlowStore()
    store = FallbackStore(slow, warn=warnings.append, timeout=0.2)
    started = time.monotonic()
    permit = await store.admit(account(), AccountPolicy(), 1, rid())
    assert isinstance(permit, Admitted)
    assert time.monotonic() - started < 5  # the timeout, not the 30 s hang
    # While it is down, requests do not wait on it at all.
    await store.admit(account(), AccountPolicy(), 1, rid())
    assert slow.calls == 1
    assert len(warnings) == 1


async def test_a_reservation_is_settled_in_the_store_that_granted_it() -> None:
    fallback = MemoryStore()
    store = FallbackStore(BrokenStore(), fallback=fallback, warn=lambda _: None)
    key, policy = account(), AccountPolicy(tpm=100)
    permit = await store.admit(key, policy, 60, rid())
    assert isinstance(permit, Admitted)
    settled = await store.settle(key, policy, permit, Settlement("success", tokens=10))
    assert settled.view.tpm_left == 90
    assert (await fallback.view(key, policy)).tpm_left == 90


class BuggyStore(MemoryStore):
    kind = "local"
    location = "/buggy"

    async def view(self, account: str, policy: AccountPolicy) -> AccountView:
        raise TypeError("a bug, not an outage")


async def test_even_a_bug_in_a_store_costs_no_answer() -> None:
    warnings: list[str] = []
    store = FallbackStore(BuggyStore(), warn=warnings.append)
    view = await store.view(account(), AccountPolicy(rpm=3))
    assert view.rpm_left == 3
    assert store.degraded
    assert "a bug" in warnings[0]


async def test_a_bug_in_a_store_is_one_line_for_the_user_not_a_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Issue 22, finding 12: log.exception printed a whole traceback on stderr (nothing
    # configures logging, so Python's last-resort handler wrote it).
    warnings: list[str] = []
    store = FallbackStore(BuggyStore(), warn=warnings.append)
    await store.view(account(), AccountPolicy(rpm=3))
    assert "Traceback" not in capsys.readouterr().err
    (warning,) = warnings
    assert "TypeError: a bug, not an outage" in warning
