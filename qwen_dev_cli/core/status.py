"""A snapshot of the client's health for a status bar: breakers, cool-downs, budgets;
and :class:`Activity`, what the client is doing now, from which it is made."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Activity:
    """What a status bar shows of the client at work (written by the dispatcher's
    :class:`~.attempt.AttemptStatus` and its announcements of waits)."""

    active: tuple[str, str] | None = None
    doing: str | None = None
    session_tokens: int = 0
    #: A stream not started yet: the provider, since when (its health clock) and how
    #: long it may stay silent, so a person sees why nothing happens.
    waiting: tuple[str, float, float] | None = None


@dataclass(frozen=True)
class ProviderStatus:
    name: str
    model: str
    #: ``CLOSED``, ``OPEN`` or ``HALF_OPEN``.
    state: str
    #: Seconds until an OPEN breaker lets a trial call through.
    retry_in: float
    #: Seconds left of a 429 cool-down.
    cooldown: float
    rpm_limit: int | None
    rpm_left: int | None
    tpm_limit: int | None
    tpm_left: int | None
    #: Recent success rate (0-1), ``None`` with no recent attempts.
    success_rate: float | None
    #: Retries the account's retry budget allows now (``None``: no budget kept).
    retry_budget: float | None = None
    #: Requests adaptive throttling refused locally in its two-minute window.
    throttled: int = 0
    #: Seconds until an exhausted quota resets (0: none known).
    quota_reset_in: float = 0.0


@dataclass(frozen=True)
class ClientStatus:
    providers: list[ProviderStatus]
    #: The provider and model of the latest attempt.
    active_provider: str | None
    active_model: str | None
    #: What the client is doing beyond a plain request: ``retry 2/3 in 3.1s (429 rate
    #: limited)``, a rate-limit wait... ``None`` when nothing special.
    activity: str | None
    #: Tokens used through this client since it was created.
    session_tokens: int
    #: Where budgets and breakers live: ``memory``, ``local`` or ``redis``.
    store: str = "memory"
    #: Where exactly (a file, a Redis URL with its password redacted).
    store_location: str = "this process"
    #: False when a shared store failed and the client runs on per-process state.
    store_shared: bool = False
