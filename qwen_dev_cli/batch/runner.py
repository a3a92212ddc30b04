"""Sends a batch's prompts through one client, as many at a time as the budget can take,
and writes each result.

Every request goes through the one :class:`LLMClient` (retries, failover, breakers)
and the account budgets of the shared state store, so the pace is the budget's. How
many prompts are in flight follows from it too (:mod:`.pacing`): what the account's
minute serves times the observed latency, under ``concurrency``, and never more than
the budget left now, so prompts do not pile up in the account's queue. What the client
gives up on only for *now* is waited out here instead of
failing the prompt: a Retry-After longer than the client's ``max_retry_after``
(:class:`RateLimitExhausted`), a budget that frees later than the client waits
(:class:`BudgetWaitExceeded`), or every provider cooling down or behind an open
breaker. A prompt waits at most ``max_wait`` seconds in all; past that it fails and the
batch stops sending (the rest would wait the same way: resume later). The batch also
stops when every provider refuses the key or the model, which no prompt can survive.

Ctrl-C (:meth:`BatchRunner.interrupt`): no new prompts; those in flight get
``grace`` seconds to finish (their results are written), then are dropped: nothing is
written for them, and a resume sends them again. Prompts still queueing for budget
(never sent) are dropped at once, and a second Ctrl-C drops the rest.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..core.dispatch import DEFAULT_COMPLETION_ESTIMATE
from ..core.errors import (
    AllProvidersFailed,
    AuthenticationError,
    BudgetWaitExceeded,
    CircuitOpenError,
    LLMError,
    NotFoundError,
    ProviderUnavailable,
    RateLimitExhausted,
)
from ..core.events import AttemptStarted, ClientEvent, RateLimitWait
from ..core.tokens import estimate_prompt_tokens
from .input import InputError, Prompt
from .output import answer_record, failure_record
from .pacing import Pacing
from .tally import Tally

if TYPE_CHECKING:
    from ..core import LLMClient
    from .output import CheckpointFile

#: Seconds prompts in flight may finish after Ctrl-C before they are dropped.
GRACE_SECONDS = 5.0
#: Shortest wait before trying a prompt again (a breaker about to half-open says 0).
MIN_WAIT = 0.25
#: Seconds between looks at the budget while prompts are held back for it.
BUDGET_RECHECK = 0.5


@dataclass
class _Asking:
    """One prompt's request as the client's events tell it: attempts made, and the
    tally's record of a wait for budget in progress."""

    tally: Tally
    get_time: Callable[[], float] = time.monotonic
    attempts: int = 0
    budget_wait: int | None = None
    #: When its latest attempt started (its latency, without waits for budget).
    attempt_at: float | None = None

    def on_event(self, event: ClientEvent) -> None:
        if isinstance(event, AttemptStarted):
            self.attempts += 1
            self.attempt_at = self.get_time()
            self.end_wait()
        elif isinstance(event, RateLimitWait):
            self.end_wait()
            reason = f"{event.provider}'s budget for this minute is spent"
            self.budget_wait = self.tally.wait_started(event.delay, reason)

    def end_wait(self) -> None:
        if self.budget_wait is not None:
            self.tally.wait_ended(self.budget_wait)
            self.budget_wait = None


#: The prompt whose request is running in this task (client listeners run in it).
_asking: contextvars.ContextVar[_Asking | None] = contextvars.ContextVar(
    "batch_asking", default=None
)


@dataclass(frozen=True)
class RequestOptions:
    """How each prompt is sent: ``system`` is prepended to prompts that have no system
    message of their own; ``max_tokens`` and ``temperature`` go with every request."""

    system: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None

    def messages(self, prompt: Prompt) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = [dict(m) for m in prompt.messages]
        if self.system and not any(m["role"] == "system" for m in messages):
            messages.insert(0, {"role": "system", "content": self.system})
        return messages


@dataclass(frozen=True)
class RunEnd:
    """How a run ended: ``interrupted`` (Ctrl-C), ``stopped`` (why the batch stopped
    sending early), ``error`` (the input changed or the output could not be written)."""

    interrupted: bool
    stopped: str | None
    error: Exception | None


class BatchRunner:
    """Runs prompts ``concurrency`` at a time and appends each result to the checkpoint.

    Args:
        client: the one client every request goes through.
        checkpoint: the output file, ready to append to.
        tally: the counts the displays read.
        concurrency: prompts in flight at most (fewer when the budget takes fewer).
        max_wait: seconds one prompt may wait in all for providers to accept requests.
        request: how each prompt is sent.
        notify: tells the user something (Ctrl-C received...).
        grace: seconds in-flight prompts may finish after Ctrl-C.
        get_time: the clock latencies are measured with.
        pacing: how many prompts may be in flight (default: from the providers'
            budgets and the latency observed, under ``concurrency``).
    """

    def __init__(
        self,
        client: LLMClient,
        checkpoint: CheckpointFile,
        tally: Tally,
        *,
        concurrency: int,
        max_wait: float,
        request: RequestOptions,
        notify: Callable[[str], None],
        grace: float = GRACE_SECONDS,
        get_time: Callable[[], float] = time.monotonic,
        pacing: Pacing | None = None,
    ) -> None:
        self._client = client
        self._checkpoint = checkpoint
        self._tally = tally
        self._concurrency = concurrency
        self._max_wait = max_wait
        self._request = request
        self._notify = notify
        self._grace = grace
        self._get_time = get_time
        self._stopping = asyncio.Event()
        self._in_flight: dict[asyncio.Task[dict[str, Any] | None], _Asking] = {}
        self._interrupted = False
        self._stopped: str | None = None
        self._error: Exception | None = None
        self._grace_timer: asyncio.TimerHandle | None = None
        self.pacing = pacing or Pacing.of(concurrency, client.status().providers)
        #: Set when a prompt finishes: a held-back worker looks at the budget again.
        self._finished = asyncio.Event()

    async def run(self, prompts: Iterator[Prompt]) -> RunEnd:
        """Send ``prompts`` until there are none left, or the batch stops."""
        unsubscribe = self._client.subscribe(_on_client_event)
        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(self._concurrency):
                    group.create_task(self._worker(prompts))
        finally:
            unsubscribe()
            if self._grace_timer is not None:
                self._grace_timer.cancel()
            await self._drop_in_flight()
        return RunEnd(self._interrupted, self._stopped, self._error)

    def interrupt(self) -> None:
        """Ctrl-C: the first stops sending and gives in-flight prompts ``grace``
        seconds (those still queueing for budget, never sent, are dropped at once);
        the next drops them all."""
        if self._interrupted:
            self._notify("dropping the prompts in flight")
            self._cancel_in_flight()
            return
        self._interrupted = True
        self._stopping.set()
        for task, asking in self._in_flight.items():
            if asking.budget_wait is not None:
                task.cancel()
        count = sum(not task.cancelling() for task in self._in_flight)
        if count:
            self._tally.note = (
                f"interrupted: letting {count} prompt{'s' * (count != 1)} in flight finish "
                f"(up to {self._grace:g}s; Ctrl-C again to drop them)"
            )
            self._notify(self._tally.note)
        self._grace_timer = asyncio.get_running_loop().call_later(
            self._grace, self._cancel_in_flight
        )

    def stop(self, reason: str) -> None:
        """Send nothing more; prompts waiting for providers are dropped (left for a resume)."""
        if self._stopped is None and not self._interrupted:
            self._stopped = reason
            self._tally.note = f"stopping: {reason}"
            self._notify(self._tally.note)
        self._stopping.set()

    # --- workers ---------------------------------------------------------------------

    async def _worker(self, prompts: Iterator[Prompt]) -> None:
        while not self._stopping.is_set():
            if not await self._until_the_budget_takes_one():
                return
            try:
                prompt = next(prompts, None)
            except InputError as exc:  # the input changed under us
                self._fail(exc)
                return
            if prompt is None:
                return
            asking = _Asking(self._tally, self._get_time)
            task = asyncio.create_task(self._answer(prompt, asking))
            self._in_flight[task] = asking
            self._tally.prompt_started()
            try:
                await asyncio.wait({task})
            finally:
                del self._in_flight[task]
                self._finished.set()
            record = None if task.cancelled() else task.result()
            if record is None:
                self._tally.prompt_dropped()
                continue
            try:
                await self._checkpoint.append(record)
            except OSError as exc:
                self._tally.prompt_dropped()
                self._fail(exc)
                return
            usage = record["usage"]
            self._tally.prompt_finished(
                ok=record["ok"], tokens=usage["total_tokens"] if usage else 0
            )

    async def _until_the_budget_takes_one(self) -> bool:
        """Wait until one more prompt may be in flight: under the pacing's limit, and
        within the budget the accounts have left now (prompts started and not yet
        admitted count against it). With none in flight, one is always let go: it
        waits in the client, bounded, and says how long the budget needs. ``False``
        once the batch stops."""
        while not self._stopping.is_set():
            if not self._in_flight:
                return True
            if len(self._in_flight) < self.pacing.limit():
                # The budget as the store says now: other processes spend it too.
                paced = self.pacing.rate is not None
                providers = (await self._client.refresh_status()).providers if paced else []
                unadmitted = sum(1 for a in self._in_flight.values() if a.attempts == 0)
                if self.pacing.allows(len(self._in_flight), unadmitted, providers):
                    return True
            self._finished.clear()
            stopping = asyncio.ensure_future(self._stopping.wait())
            finished = asyncio.ensure_future(self._finished.wait())
            try:
                await asyncio.wait(
                    {stopping, finished},
                    timeout=BUDGET_RECHECK,
                    return_when=asyncio.FIRST_COMPLETED,
                )
            finally:
                stopping.cancel()
                finished.cancel()
        return False

    async def _answer(self, prompt: Prompt, asking: _Asking) -> dict[str, Any] | None:
        """The result line of one prompt, or ``None`` when it was dropped."""
        _asking.set(asking)
        try:
            return await self._ask(prompt, asking)
        finally:
            asking.end_wait()

    async def _ask(self, prompt: Prompt, asking: _Asking) -> dict[str, Any] | None:
        started = self._get_time()
        waited = 0.0
        messages = self._request.messages(prompt)
        self.pacing.reserving(self._reservation(messages))
        while True:
            try:
                result = await self._client.chat(
                    messages,
                    None,
                    max_tokens=self._request.max_tokens,
                    temperature=self._request.temperature,
                )
            except LLMError as exc:
                pause = wait_for(exc)
                if pause is not None:
                    seconds, reason = max(pause[0], MIN_WAIT), pause[1]
                    if waited + seconds <= self._max_wait:
                        if not await self._wait(seconds, reason):
                            return None
                        waited += seconds
                        continue
                    self.stop(_gave_up(waited, seconds, reason, self._max_wait))
                elif refuses_everyone(exc):
                    self.stop(f"every provider refused the key or the model ({exc})")
                latency = (self._get_time() - started) * 1000
                return failure_record(
                    prompt, exc.to_dict(), attempts=asking.attempts, latency_ms=latency
                )
            now = self._get_time()
            if asking.attempt_at is not None:
                self.pacing.observe(now - asking.attempt_at, result.usage.total_tokens)
            latency = (now - started) * 1000
            return answer_record(prompt, result, attempts=asking.attempts, latency_ms=latency)

    def _reservation(self, messages: list[dict[str, Any]]) -> int:
        """What the client reserves from ``tpm`` for ``messages``: the prompt's
        estimate and the answer's room (the largest a provider would give it)."""
        rooms = [
            self._request.max_tokens or p.max_tokens or DEFAULT_COMPLETION_ESTIMATE
            for p in self._client.providers
        ]
        return estimate_prompt_tokens(messages) + max(rooms, default=DEFAULT_COMPLETION_ESTIMATE)

    async def _wait(self, seconds: float, reason: str) -> bool:
        """Wait ``seconds``; ``False`` if the batch stopped meanwhile."""
        key = self._tally.wait_started(seconds, reason)
        try:
            async with asyncio.timeout(seconds):
                await self._stopping.wait()
            return False
        except TimeoutError:
            return True
        finally:
            self._tally.wait_ended(key)

    def _fail(self, error: Exception) -> None:
        if self._error is None:
            self._error = error
        self._stopping.set()

    def _cancel_in_flight(self) -> None:
        for task in self._in_flight:
            task.cancel()

    async def _drop_in_flight(self) -> None:
        self._cancel_in_flight()
        if self._in_flight:
            await asyncio.gather(*list(self._in_flight), return_exceptions=True)


def wait_for(exc: LLMError) -> tuple[float, str] | None:
    """How long to wait before trying again, when ``exc`` only says "not now": a
    Retry-After beyond ``max_retry_after``, or every provider cooling down or behind an
    open breaker. ``None`` for a real failure."""
    if isinstance(exc, RateLimitExhausted) and exc.retry_after is not None:
        return exc.retry_after, "rate limited"
    if isinstance(exc, BudgetWaitExceeded) and exc.retry_after is not None:
        return exc.retry_after, f"{exc.waited_for}'s budget for this minute is spent"
    if not isinstance(exc, AllProvidersFailed) or not exc.failures:
        return None
    errors = [failure.error for failure in exc.failures]
    waits = []
    for error in errors:
        if not isinstance(error, ProviderUnavailable | CircuitOpenError):
            return None
        waits.append(error.retry_in)
    if any(isinstance(error, ProviderUnavailable) for error in errors):
        return min(waits), "providers cooling down after a 429"
    return min(waits), "circuit breakers open"


def refuses_everyone(exc: LLMError) -> bool:
    """Whether every provider refused the key or the model: no prompt can succeed."""
    if isinstance(exc, AuthenticationError | NotFoundError):
        return True
    return (
        isinstance(exc, AllProvidersFailed)
        and bool(exc.failures)
        and all(isinstance(f.error, AuthenticationError | NotFoundError) for f in exc.failures)
    )


def _gave_up(waited: float, seconds: float, reason: str, max_wait: float) -> str:
    if waited == 0:
        return f"{reason}: asked to wait {seconds:.0f}s, more than --max-wait {max_wait:g}s"
    return f"{reason} for more than --max-wait {max_wait:g}s"


def _on_client_event(event: ClientEvent) -> None:
    # Listeners run in the task that made the request: the prompt's own record.
    asking = _asking.get()
    if asking is not None:
        asking.on_event(event)
