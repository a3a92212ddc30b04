"""How long an attempt may take (:class:`Timeouts`), and the watchdog that holds a
stream read inside an async generator to it.

``asyncio.timeout`` cancels whatever the task is doing when it fires; inside an async
generator that yields each token to its consumer, that can be the consumer's own code.
The watchdog cancels the task only while it waits on the provider (between
:meth:`Watchdog.waiting` and :meth:`Watchdog.received`), and costs a clock read and two
attribute writes per token: its timer is re-armed lazily, when it fires.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from dataclasses import dataclass

#: Seconds a streamed attempt may take in all, at least, when no deadline is given.
MIN_STREAM_DEADLINE = 600.0


@dataclass(frozen=True)
class Timeouts:
    """How long one attempt on one provider may take: ``LLMClient(timeouts=Timeouts(...))``.

    Args:
        attempt: seconds a non-streamed attempt may take, and a stream may stay silent
            between two chunks, whatever the provider's own timeouts.
        first_byte: seconds a stream from a provider passed as an object may take to
            begin (``None``: ``attempt``); a provider passed as settings has its own
            (:meth:`~.settings.ProviderSettings.first_byte_deadline`).
        deadline: seconds a streamed attempt may take in all, however steadily it
            trickles (``None``: ten times ``attempt``, and at least ten minutes).
    """

    attempt: float = 60.0
    first_byte: float | None = None
    deadline: float | None = None

    def __post_init__(self) -> None:
        for name in ("attempt", "first_byte", "deadline"):
            value = getattr(self, name)
            if value is not None and not value > 0:  # NaN included
                raise ValueError(
                    f"Timeouts.{name} must be a positive number of seconds, not {value!r}"
                )

    @property
    def stream_deadline(self) -> float:
        """Seconds a streamed attempt may take in all."""
        if self.deadline is not None:
            return self.deadline
        return max(MIN_STREAM_DEADLINE, 10 * self.attempt)


class Watchdog:
    """Fires when the provider has been silent for ``timeout`` seconds of waiting.

    Use as ``with Watchdog(timeout) as dog:`` around the reading loop; call
    ``dog.waiting()`` before each await on the provider and ``dog.received()`` after;
    on ``CancelledError`` ask :meth:`expired` whether it was the watchdog's doing.

    Args:
        timeout: seconds of silence allowed between two chunks.
        deadline: seconds the whole stream may take, however lively.
        first: seconds of silence allowed before the first chunk (``None``: ``timeout``).
            A person is waiting: a provider that has not started to answer by then is
            better left for another than waited for a whole ``timeout``.
        on_first: called when the first chunk is received.
    """

    def __init__(
        self,
        timeout: float,
        deadline: float = math.inf,
        first: float | None = None,
        on_first: Callable[[], None] | None = None,
    ) -> None:
        self.steady_timeout = timeout
        #: The silence allowed now: ``first`` until the first chunk, then ``timeout``.
        self.timeout = timeout if first is None else min(first, timeout)
        #: Whether nothing has been received yet.
        self.first_pending = True
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        self._since = self._loop.time()
        #: Past this loop time the whole stream has taken too long, however lively.
        self._deadline = self._since + deadline
        self._armed = False
        self._fired = False
        self._handle: asyncio.TimerHandle | None = None
        self._on_first = on_first

    def __enter__(self) -> Watchdog:
        self._handle = self._loop.call_at(self._since + self.timeout, self._check)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def waiting(self) -> bool:
        """About to wait for the provider: silence counts from now. Returns whether the
        stream is past its overall deadline (a server trickling a token now and then
        would otherwise keep it alive for ever)."""
        self._since = now = self._loop.time()
        self._armed = True
        return now > self._deadline

    def received(self) -> None:
        """The provider answered; time spent until the next :meth:`waiting` is not its."""
        self._armed = False
        if self.first_pending:
            self.first_pending = False
            self.timeout = self.steady_timeout
            if self._on_first is not None:
                self._on_first()

    def expired(self) -> bool:
        """Whether the watchdog cancelled the task (and, if so, take that cancellation
        back, so it becomes a timeout rather than an abort)."""
        if not self._fired:
            return False
        self._fired = False
        # Someone else cancelled too (Ctrl-C, an interrupt) meanwhile: theirs wins, as
        # asyncio.timeout lets it; that is not a timeout but an abort.
        return self._task is None or self._task.uncancel() == 0

    def _check(self) -> None:
        now = self._loop.time()
        if self._armed and now - self._since >= self.timeout:
            self._fired = True
            self._handle = None
            if self._task is not None:
                self._task.cancel()
            return
        # Not silent long enough (or the consumer is busy): look again later.
        start = self._since if self._armed else now
        self._handle = self._loop.call_at(start + self.timeout, self._check)
