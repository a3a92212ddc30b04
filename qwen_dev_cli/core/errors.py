"""The one exception tree of the LLM client.

Every failure the client can report derives from :class:`LLMError`. Lower-layer
errors (httpx, JSON, llama.cpp) are translated at the provider boundary with
``raise ... from exc`` so callers never need to catch transport exceptions::

    LLMError
    ├── ProviderError                 one provider failed one attempt
    │   ├── TransientError            worth retrying or failing over
    │   │   ├── ConnectionFailed      refused, reset, DNS, TLS
    │   │   ├── RequestTimeout        connect/read/write/pool timeout
    │   │   ├── RateLimited           429 (carries retry_after)
    │   │   ├── ServerError           5xx
    │   │   │   └── Overloaded        529, or 503 that says so
    │   │   ├── StreamInterrupted     a stream that ended or broke mid-answer
    │   │   └── MalformedResponse     a body or event that is not what the API promises
    │   │       └── ResponseTooLarge  past a size limit (bytes, a line, tool arguments)
    │   └── PermanentError            retrying cannot help
    │       ├── InsufficientQuota     429/403 saying the quota or credit is gone (fail over)
    │       ├── AuthenticationError   401, 403 (fail over: another provider may accept)
    │       ├── NotFoundError         404: wrong base_url or model (fail over)
    │       ├── Redirected            3xx: the endpoint moved; not followed (fail over)
    │       ├── BadRequestError       400, 422 (do not fail over: the request is at fault)
    │       │   └── ContextLengthExceeded
    │       ├── RequestTooLarge       bigger than the provider's whole TPM budget (fail over)
    │       └── ProviderSetupError    cannot work as configured: missing extra, bad model file
    ├── CircuitOpenError              provider skipped: its breaker is open (no network call)
    ├── ProviderUnavailable           provider skipped: cooling down after a 429, or its
    │                                 quota exhausted until a reset
    ├── LocallyThrottled              provider skipped: adaptive throttling refused locally
    ├── RetryBudgetRefused            provider not retried: its retry budget is spent
    ├── NoProviderConfigured          nothing to send the request to
    └── AllProvidersFailed            the request failed on every provider; holds each error
        ├── RateLimitExhausted        ...because every provider asked to wait > max_retry_after
        ├── BudgetWaitExceeded        ...because a provider's budget did not free within max_wait
        └── RetryBudgetExhausted      ...and the account's retry budget allows no retry
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


class LLMError(Exception):
    """Root of every error the client raises."""

    def __init__(self, message: str, *, provider: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider

    @property
    def kind(self) -> str:
        """A stable, machine-readable name for the error (``ask --json`` ``error.type``)."""
        return _snake(type(self).__name__)

    def __str__(self) -> str:
        if self.provider:
            return f"{self.provider}: {self.message}"
        return self.message

    def to_dict(self, providers: list[dict[str, str]] | None = None) -> dict[str, Any]:
        """The error as ``ask --json`` and ``batch`` output report it: ``type``,
        ``message``, ``providers`` (what each one ended with; given when the error itself
        cannot say, as for providers skipped before any was tried) and, when known,
        ``retry_after``."""
        error: dict[str, Any] = {
            "type": self.kind,
            "message": str(self),
            "providers": self._providers() if providers is None else providers,
        }
        retry_after = getattr(self, "retry_after", None)
        if retry_after is not None:
            error["retry_after"] = retry_after
        return error

    def _providers(self) -> list[dict[str, str]]:
        return [{"name": self.provider, "error": self.message}] if self.provider else []


class ProviderError(LLMError):
    """One attempt on one provider failed.

    Args:
        message: what went wrong, for a human.
        provider: the provider's configured name.
        status_code: the HTTP status, when there was one.
    """

    retryable = False
    #: Whether the next provider may take the request (401/403/404 yes, 400 no).
    fail_over = True

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        status_code: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, provider=provider)
        self.status_code = status_code
        #: Seconds the provider asked us to wait (Retry-After), when it said.
        self.retry_after = retry_after


class TransientError(ProviderError):
    """A failure that may go away: retry later or try another provider."""

    retryable = True


class ConnectionFailed(TransientError):
    """The connection could not be made or was reset."""


class RequestTimeout(TransientError):
    """Connecting, sending or waiting for bytes took longer than the timeout."""


class RateLimited(TransientError):
    """429: the provider refused for now; ``retry_after`` says how long, when it said.
    ``quota``: its code or message spoke of a quota (``RESOURCE_EXHAUSTED``): with no
    reset, or one beyond ``max_retry_after``, the client takes it for an exhausted
    quota, not a rate limit."""

    quota = False


class ServerError(TransientError):
    """The provider answered 5xx."""


class Overloaded(ServerError):
    """The provider says it is over capacity (529, or 503 that says so)."""


class StreamInterrupted(TransientError):
    """A streamed answer broke off before it was complete.

    Args:
        after_first_token: whether the user had already seen part of the answer.
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        status_code: int | None = None,
        after_first_token: bool = False,
    ) -> None:
        super().__init__(message, provider=provider, status_code=status_code)
        self.after_first_token = after_first_token


def mid_answer(error: ProviderError) -> ProviderError:
    """``error`` as what it is once the user has seen part of the answer: an
    interrupted stream, whatever broke it (a 5xx event, a reset, a stall)."""
    if isinstance(error, StreamInterrupted):
        return error
    return StreamInterrupted(
        f"stream broke off mid-answer: {error.message}",
        provider=error.provider,
        status_code=error.status_code,
        after_first_token=True,
    )


class MalformedResponse(TransientError):
    """The provider sent something that is not an OpenAI-compatible response."""


class ResponseTooLarge(MalformedResponse):
    """The response passed a size limit (bytes, one line, one tool call's arguments):
    a broken or hostile server is cut off before it exhausts memory."""


class PermanentError(ProviderError):
    """Retrying the same request on the same provider cannot succeed."""


class InsufficientQuota(PermanentError):
    """429 (or 403) saying the account's quota, credit or daily allowance is gone: not a
    rate limit, so never retried in a loop. The client marks the provider unavailable
    to the whole account until ``reset_in`` (``None``: the server did not say)."""

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        status_code: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(
            message, provider=provider, status_code=status_code, retry_after=retry_after
        )
        self.reset_in = retry_after


#: Codes that always mean the money or the allowance is gone (OpenAI's
#: ``insufficient_quota``: "You exceeded your current quota, please check your plan and
#: billing details").
_QUOTA_CODES = re.compile(r"insufficient_quota|billing|credits?_exhausted", re.I)
#: Words that say "quota" rather than "slow down". Gemini says them for its per-minute
#: quotas too (``RESOURCE_EXHAUSTED``, "Please retry in 37s"), so on a 429 they make a
#: quota only with a far or unknown reset (the client decides, knowing max_retry_after).
_QUOTA_TEXT = re.compile(
    r"quota|resource_exhausted|billing|credit balance|out of credits|payment required"
    r"|insufficient (?:balance|credits?|funds)",
    re.I,
)


def is_insufficient_quota(code: object) -> bool:
    """Whether an error code says the quota is gone whatever the reset (a 429's
    ``insufficient_quota``)."""
    return bool(_QUOTA_CODES.search(str(code or "")))


def says_quota(code: object, message: str) -> bool:
    """Whether a 429's or 403's code or message speaks of a quota, billing or credit."""
    return is_insufficient_quota(code) or bool(_QUOTA_TEXT.search(f"{code or ''} {message}"))


class AuthenticationError(PermanentError):
    """401 or 403: the key is missing, wrong, or not allowed this model."""


class NotFoundError(PermanentError):
    """404: the base URL or the model name is wrong."""


class Redirected(PermanentError):
    """3xx: the endpoint moved. Redirects are not followed (the request and its key
    would go to an address the user did not configure); ``base_url`` should change."""


class BadRequestError(PermanentError):
    """400 or 422: the request itself is at fault, so no provider will take it."""

    fail_over = False


class ContextLengthExceeded(BadRequestError):
    """The conversation is longer than the model's context window."""


class RequestTooLarge(PermanentError):
    """The request's estimated tokens exceed the provider's whole tokens-per-minute budget."""


class ProviderSetupError(PermanentError):
    """The provider cannot work as configured: a missing optional dependency, a missing
    or unreadable model file. Another provider may still answer."""


class CircuitOpenError(LLMError):
    """The provider's circuit breaker is open: it was skipped without a network call.

    Args:
        retry_in: seconds until the breaker lets a trial call through.
    """

    def __init__(self, message: str, *, provider: str | None = None, retry_in: float = 0.0) -> None:
        super().__init__(message, provider=provider)
        self.retry_in = retry_in


class ProviderUnavailable(LLMError):
    """The provider is cooling down after a 429 and was skipped without a network call.

    Args:
        retry_in: seconds until the cool-down ends.
    """

    def __init__(self, message: str, *, provider: str | None = None, retry_in: float = 0.0) -> None:
        super().__init__(message, provider=provider)
        self.retry_in = retry_in


class LocallyThrottled(LLMError):
    """Adaptive throttling refused the provider locally (it fails more than ``K`` times
    as often as it succeeds, account-wide): skipped without a network call.

    Args:
        chance: the probability the refusal was drawn with.
    """

    def __init__(self, message: str, *, provider: str | None = None, chance: float = 0.0) -> None:
        super().__init__(message, provider=provider)
        self.chance = chance


class RetryBudgetRefused(LLMError):
    """The provider was not tried again: its account's retry budget is spent."""


class NoProviderConfigured(LLMError):
    """The client was given no provider (none configured, or every one skipped)."""


@dataclass(frozen=True)
class ProviderFailure:
    """What one provider's last attempt ended with, for error reports."""

    provider: str
    error: LLMError


class AllProvidersFailed(LLMError):
    """No provider could answer after retries and failover.

    Args:
        failures: the last error of each provider that was tried or skipped.
        retry_after: the soonest any of them may be tried again, when they all said.
    """

    def __init__(
        self,
        message: str,
        failures: list[ProviderFailure],
        *,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.failures = failures
        self.retry_after = retry_after
        #: Set when no provider could take a retry (every breaker open): do not sleep.
        self.final = False

    def _providers(self) -> list[dict[str, str]]:
        return [{"name": f.provider, "error": f.error.message} for f in self.failures]

    @property
    def permanent(self) -> bool:
        """True when every provider failed for a reason retrying cannot fix."""
        return bool(self.failures) and all(
            isinstance(f.error, PermanentError) for f in self.failures
        )


class RateLimitExhausted(AllProvidersFailed):
    """Given up without sleeping: every provider that could answer asked us to wait longer
    than ``max_retry_after``. ``retry_after`` carries the shortest wait asked for."""


class BudgetWaitExceeded(AllProvidersFailed):
    """Given up waiting for an account's budget: ``provider``'s budget did not free
    within ``max_wait`` seconds (``[rate_limit] max_wait``, ``ask --max-wait``), or says
    it will free later than that. ``retry_after`` carries when it was expected to free.

    Args:
        provider: the provider whose budget was waited for.
        waited: seconds waited for it. max_wait: the bound.
        others: what the other providers ended with, for the message.
    """

    def __init__(
        self,
        failures: list[ProviderFailure],
        *,
        provider: str,
        waited: float,
        max_wait: float,
        retry_after: float | None = None,
        others: str = "",
    ) -> None:
        if waited >= max_wait:
            what = f"gave up waiting for {provider}'s budget after {waited:.0f}s (max_wait)"
        else:
            frees = "later" if retry_after is None else f"in {retry_after:.0f}s"
            what = f"{provider}'s budget frees {frees}, longer than max_wait ({max_wait:g}s)"
        hint = "try again later, or raise [rate_limit] max_wait (ask --max-wait)"
        super().__init__(
            f"{what}: {hint}" + (f" ({others})" if others else ""),
            failures,
            retry_after=retry_after,
        )
        #: Not ``provider``: that would prefix the message with the name it already says.
        self.waited_for = provider
        self.waited = waited
        self.max_wait = max_wait
        self.final = True


class RetryBudgetExhausted(AllProvidersFailed):
    """Failed without sleeping: a retry was wanted, but the retry budget of every
    account left is spent (retries are limited to a share of recent successes)."""


def _snake(name: str) -> str:
    out: list[str] = []
    for i, ch in enumerate(name):
        if ch.isupper() and i and not name[i - 1].isupper():
            out.append("_")
        out.append(ch.lower())
    return "".join(out)
