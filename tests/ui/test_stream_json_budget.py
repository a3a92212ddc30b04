"""stream-json's rate_limit_event (issue 20): the account's shared budget as Claude
Code's rate_limit_info, told when its status changes."""

from __future__ import annotations

import io
import json
from typing import Any

from qwen_dev_cli.core.events import RateLimitWait, RetryScheduled
from qwen_dev_cli.core.status import ClientStatus, ProviderStatus
from qwen_dev_cli.ui.stream_json import StreamJson, budget_info

NOW = 1_800_000_000.0


def provider(
    name: str = "lab",
    *,
    rpm: tuple[int, int | None] | None = None,
    tpm: tuple[int, int | None] | None = None,
    cooldown: float = 0.0,
) -> ProviderStatus:
    return ProviderStatus(
        name=name,
        model="m",
        state="CLOSED",
        retry_in=0.0,
        cooldown=cooldown,
        rpm_limit=rpm[0] if rpm else None,
        rpm_left=rpm[1] if rpm else None,
        tpm_limit=tpm[0] if tpm else None,
        tpm_left=tpm[1] if tpm else None,
        success_rate=None,
    )


def test_utilization_is_the_most_used_of_requests_and_tokens() -> None:
    info = budget_info(provider(rpm=(10, 9), tpm=(1000, 700)), now=NOW)
    assert info == {
        "status": "allowed",
        "resetsAt": int(NOW) + 60,
        "utilization": 0.3,
        "provider": "lab",
    }
    warning = budget_info(provider(rpm=(10, 2)), now=NOW)
    assert warning is not None
    assert (warning["status"], warning["utilization"]) == ("allowed_warning", 0.8)
    spent = budget_info(provider(rpm=(10, 0)), now=NOW)
    assert spent is not None
    assert spent["status"] == "rejected"


def test_a_cool_down_or_a_wait_is_rejected_until_it_ends() -> None:
    cooling = budget_info(provider(cooldown=12.5), now=NOW)
    assert cooling == {"status": "rejected", "resetsAt": int(NOW) + 13, "provider": "lab"}
    waiting = budget_info(provider(rpm=(10, 0)), now=NOW, wait=31.0)
    assert waiting is not None
    assert (waiting["status"], waiting["resetsAt"]) == ("rejected", int(NOW) + 31)
    assert budget_info(provider(), now=NOW) is None  # no budget: nothing to tell
    assert budget_info(provider(rpm=(10, None)), now=NOW) is None  # not learned yet


class Budget:
    def __init__(self) -> None:
        self.providers = [provider(rpm=(10, None))]

    def __call__(self) -> ClientStatus:
        return ClientStatus(self.providers, None, None, None, 0)


def told(out: io.StringIO) -> list[dict[str, Any]]:
    found = [json.loads(line) for line in out.getvalue().splitlines()]
    return [e["rate_limit_info"] for e in found if e["type"] == "rate_limit_event"]


def test_events_come_when_the_status_changes_and_carry_the_session() -> None:
    out = io.StringIO()
    stream = StreamJson(out, partial=False)
    budget = Budget()
    stream.watch_budget(budget, wall=lambda: NOW)
    retry = RetryScheduled(1, 3, 0.1, "503")
    stream.client_event(retry)  # nothing learned yet: nothing said
    assert told(out) == []
    budget.providers = [provider(rpm=(10, 9))]
    stream.client_event(retry)
    budget.providers = [provider(rpm=(10, 8))]
    stream.client_event(retry)  # still allowed: not said again
    stream.client_event(RateLimitWait("lab", 20.0))
    budget.providers = [provider(rpm=(10, 5))]
    stream.client_event(retry)
    # A provider without a budget: its 429 cool-down, then its end (said once).
    budget.providers = [provider(rpm=(10, 5)), provider("backup", cooldown=3.0)]
    stream.client_event(retry)
    budget.providers = [provider(rpm=(10, 5)), provider("backup")]
    stream.client_event(retry)
    stream.client_event(retry)
    assert [(info["provider"], info["status"]) for info in told(out)] == [
        ("lab", "allowed"),
        ("lab", "rejected"),
        ("lab", "allowed"),
        ("backup", "rejected"),
        ("backup", "allowed"),
    ]
    assert told(out)[1]["resetsAt"] == int(NOW) + 20
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    limits = [e for e in events if e["type"] == "rate_limit_event"]
    assert all({"session_id", "uuid"} <= set(e) for e in limits)
