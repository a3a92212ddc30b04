"""Retry policy as tenacity strategies.

The client retries *rounds*: one round offers the request to every available provider
in turn, moving on at once after a retryable failure. Only when a whole round fails
does the client sleep, and these strategies decide whether and how long:

- :func:`backoff_wait`: ``min(base_delay * 2**n, max_delay)`` with jitter, never less
  than the Retry-After the providers asked for (:class:`wait_retry_after_floor`);
- :func:`retry_stop`: after ``max_retries`` sleeps, or at once when the soonest any
  provider can be tried again is beyond ``max_retry_after`` (:class:`stop_if_retry_after_exceeds`);
- :class:`retry_if_round_retryable`: only if some failure in the round may go away.

Every decision is a pure function of tenacity's ``RetryCallState`` (random injected),
so tests check them without sleeping. :class:`RetryPolicy` holds the numbers, and
:data:`JITTERS` the jitter strategy of each :data:`~.settings.JitterMode`: a new one is
a name in that ``Literal`` and a line here.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Final, Protocol

from tenacity import stop_after_attempt, wait_exponential
from tenacity.retry import retry_base
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from .declarations import Check, declared
from .errors import AllProvidersFailed, ProviderError, ProviderUnavailable
from .settings import JitterMode, RetrySettings

if TYPE_CHECKING:
    from tenacity import RetryCallState


def _round_error(retry_state: RetryCallState) -> AllProvidersFailed | None:
    outcome = retry_state.outcome
    if outcome is None or not outcome.failed:
        return None
    exc = outcome.exception()
    return exc if isinstance(exc, AllProvidersFailed) else None


class wait_proportional_jitter(wait_base):
    """The inner wait plus a random 10-30 % of it: spreads clients without ever
    shortening the wait below what the backoff schedule promises."""

    def __init__(
        self,
        inner: wait_base,
        low: float = 0.1,
        high: float = 0.3,
        rng: random.Random | None = None,
    ) -> None:
        self.inner = inner
        self.low = low
        self.high = high
        self.rng = rng or random.Random()

    def __call__(self, retry_state: RetryCallState) -> float:
        delay = self.inner(retry_state)
        return delay * (1.0 + self.rng.uniform(self.low, self.high))


class wait_full_jitter(wait_base):
    """AWS "Full Jitter": uniformly random between 0 and the inner wait."""

    def __init__(self, inner: wait_base, rng: random.Random | None = None) -> None:
        self.inner = inner
        self.rng = rng or random.Random()

    def __call__(self, retry_state: RetryCallState) -> float:
        return self.rng.uniform(0.0, self.inner(retry_state))


class wait_retry_after_floor(wait_base):
    """The inner wait, but never less than the Retry-After the failed round carries;
    and when it carries one, never less than ``floor`` (the backoff's ``base_delay``):
    a tiny Retry-After (``0``, ``retry-after-ms: 1``) with full jitter must not let
    every retry go at once (Claude Code 2.1.98 burnt all its attempts in 13 s so)."""

    def __init__(self, inner: wait_base, floor: float = 0.0) -> None:
        self.inner = inner
        self.floor = floor

    def __call__(self, retry_state: RetryCallState) -> float:
        delay = self.inner(retry_state)
        error = _round_error(retry_state)
        if error is not None and error.retry_after is not None:
            return max(delay, error.retry_after, self.floor)
        return delay


class stop_if_retry_after_exceeds(stop_base):
    """Stop when the soonest retry the providers allow is further off than ``cap`` seconds."""

    def __init__(self, cap: float) -> None:
        self.cap = cap

    def __call__(self, retry_state: RetryCallState) -> bool:
        error = _round_error(retry_state)
        return error is not None and error.retry_after is not None and error.retry_after > self.cap


class retry_if_round_retryable(retry_base):
    """Retry a failed round only if one of its failures is transient."""

    def __call__(self, retry_state: RetryCallState) -> bool:
        error = _round_error(retry_state)
        return error is not None and round_is_retryable(error)


def round_is_retryable(error: AllProvidersFailed) -> bool:
    """Whether sleeping and trying again could change the outcome of a failed round."""
    if error.final:
        return False
    for failure in error.failures:
        err = failure.error
        if isinstance(err, ProviderUnavailable):
            return True
        if isinstance(err, ProviderError) and err.retryable:
            return True
    return False


class Jitter(Protocol):
    """A jitter strategy: wraps the backoff schedule's wait, drawing from ``rng``."""

    def __call__(self, inner: wait_base, *, rng: random.Random | None) -> wait_base: ...


#: The strategy of each jitter mode; its keys are exactly :data:`~.settings.JitterMode`'s.
JITTERS: Final[Mapping[JitterMode, Jitter]] = MappingProxyType(
    {"proportional": wait_proportional_jitter, "full": wait_full_jitter}
)


@dataclasses.dataclass(frozen=True)
class RetryPolicy(RetrySettings):
    """How a failed round is retried: ``LLMClient(retry=RetryPolicy(...))``.

    The fields, their defaults and their bounds are the ``[retry]`` table's
    (:class:`~.settings.RetrySettings`, declared once there); a policy is checked when
    it is made, so a client built in code accepts exactly what a configuration file
    does, and says what is wrong with a ``ValueError``.

    Args:
        max_retries: rounds retried after the first (each round tries every provider).
        base_delay, max_delay: delay before retry ``n`` is
            ``min(base_delay * 2**n, max_delay)``, plus jitter.
        max_retry_after: a Retry-After longer than this many seconds is not slept:
            fail over, or fail.
        jitter: a key of :data:`JITTERS`: ``"proportional"`` (+10-30 % of the delay)
            or ``"full"`` (AWS Full Jitter).
    """

    def __post_init__(self) -> None:
        for item in dataclasses.fields(RetrySettings):
            declaration = declared(item)
            if declaration is not None and declaration.check is not None:
                refusal = _refusal(declaration.check, getattr(self, item.name))
                if refusal is not None:
                    raise ValueError(f"RetryPolicy.{item.name} must be {refusal}")

    @classmethod
    def of(cls, settings: RetrySettings) -> RetryPolicy:
        """The policy a configuration's ``[retry]`` table describes."""
        if isinstance(settings, RetryPolicy):
            return settings
        return cls(**{item.name: getattr(settings, item.name) for item in dataclasses.fields(cls)})


def _refusal(check: Check, value: object) -> str | None:
    """What ``value`` should have been, if ``check`` refuses it. The configuration reads
    the same declarations (:mod:`qwen_dev_cli.config.checks`), naming a file's place."""
    if check.kind == "choice":
        if value in check.choices:
            return None
        return f"one of {', '.join(map(repr, check.choices))}, not {value!r}"
    if check.kind not in ("number", "integer"):
        return None  # no policy field is text or a URL
    expected = "an integer" if check.kind == "integer" else "a finite number"
    if check.above is not None:
        expected += f" greater than {check.above:g}"
    elif check.at_least is not None:
        expected += f" of at least {check.at_least:g}"
    if check.at_most is not None:
        expected += f" and at most {check.at_most:g}"
    kinds = int if check.kind == "integer" else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not math.isfinite(value):
        return f"{expected}, not {value!r}"
    if (
        (check.above is not None and not value > check.above)
        or (check.at_least is not None and not value >= check.at_least)
        or (check.at_most is not None and value > check.at_most)
    ):
        return f"{expected}, not {value!r}"
    return None


def backoff_wait(policy: RetrySettings, rng: random.Random | None = None) -> wait_base:
    """The wait before the next round, per ``policy``."""
    schedule = wait_exponential(multiplier=policy.base_delay, exp_base=2, max=policy.max_delay)
    return wait_retry_after_floor(JITTERS[policy.jitter](schedule, rng=rng), policy.base_delay)


def retry_stop(policy: RetrySettings) -> stop_base:
    """When to give up: after ``max_retries`` retries, or a Retry-After beyond the cap."""
    return stop_after_attempt(policy.max_retries + 1) | stop_if_retry_after_exceeds(
        policy.max_retry_after
    )
