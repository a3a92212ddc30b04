"""One attempt on one provider: what it tells the status bar, and how it is held to
its timeouts.

:class:`AttemptStatus` is the one writer of the client's :class:`~.status.Activity`
while an attempt runs (who is asked, who is being waited for, the tokens used) and
publishes :class:`~.events.AttemptStarted`. :class:`StreamGuard` holds a stream to its
:class:`~.watchdog.Timeouts` and turns how it ends (silence, the deadline, an end
without a reply) into errors. :func:`streamed` and :func:`completed` are the two kinds
of attempt.

Each attempt is one async generator that the dispatcher's round iterates directly: a
stream's tokens cross exactly one generator here, and the guard costs them nothing
beyond the watchdog's clock read.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from . import events as ev
from .errors import ProviderError, RequestTimeout, StreamInterrupted, mid_answer
from .types import ProviderReply, StreamRestart, TextDelta
from .watchdog import Watchdog

if TYPE_CHECKING:
    from .dispatch import Call
    from .providers.base import Provider
    from .status import Activity
    from .types import ChatRequest, ProviderChunk
    from .watchdog import Timeouts


class AttemptStatus:
    """What the status bar and the listeners learn of attempts.

    Args:
        activity: what ``LLMClient.status()`` shows; only this object writes it while
            an attempt runs.
        emit: publishes client events.
    """

    def __init__(self, activity: Activity, emit: Callable[[ev.ClientEvent], None]) -> None:
        self.activity = activity
        self.emit = emit

    def started(self, provider: str, model: str, number: int) -> None:
        """Attempt ``number`` of a call goes to ``provider``."""
        self.activity.active = (provider, model)
        self.activity.doing = None
        self.emit(ev.AttemptStarted(provider, model, number))

    def waiting(self, provider: str, since: float, limit: float) -> None:
        """A stream has not begun: ``provider`` has been waited for since ``since`` (its
        health clock), and may stay silent ``limit`` seconds."""
        self.activity.waiting = (provider, since, limit)

    def answering(self) -> None:
        """Nobody is being waited for any more: the stream began, or ended."""
        self.activity.waiting = None

    def used(self, reply: ProviderReply) -> None:
        """An attempt succeeded: count its tokens into the session's."""
        if reply.usage is not None:
            self.activity.session_tokens += reply.usage.total_tokens


class StreamGuard:
    """Holds one streamed attempt to its timeouts.

    Use as ``async with guard as dog:`` around the loop that reads ``chunks``: call
    ``dog.waiting()`` before each read (true: past the deadline, raise :meth:`too_long`)
    and ``dog.received()`` after (:class:`~.watchdog.Watchdog`). On the way out the
    guard closes the stream and tells the status nobody is waited for; a stream that
    ended without its reply leaves as :class:`StreamInterrupted`, silence the watchdog
    cut short as :class:`RequestTimeout`.

    Args:
        provider: the provider's name, for errors and the status.
        chunks: the provider's stream.
        timeouts: the client's; ``first_byte`` the provider's own first-byte limit
            (``None``: the silence allowed between chunks).
        status: told who is being waited for, and when the stream begins.
        clock: the provider's health clock, for the status.
    """

    def __init__(
        self,
        provider: str,
        chunks: AsyncIterator[ProviderChunk],
        timeouts: Timeouts,
        first_byte: float | None,
        status: AttemptStatus,
        clock: Callable[[], float],
    ) -> None:
        self.provider = provider
        self.chunks = chunks
        self.timeouts = timeouts
        self.first_byte = first_byte
        self.status = status
        self.clock = clock
        self._dog: Watchdog | None = None

    async def __aenter__(self) -> Watchdog:
        timeouts = self.timeouts
        dog = Watchdog(
            timeouts.attempt, timeouts.stream_deadline, self.first_byte, self.status.answering
        )
        self._dog = dog.__enter__()
        self.status.waiting(self.provider, self.clock(), dog.timeout)
        return dog

    async def __aexit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        dog = self._dog
        assert dog is not None, "entered first"
        # Before anything else: a cancellation that was the watchdog's is taken back.
        error: ProviderError | None = None
        if kind is not None and issubclass(kind, asyncio.CancelledError) and dog.expired():
            error = self._silence(dog)
        dog.__exit__()
        self.status.answering()
        await _close(self.chunks)
        if kind is not None and issubclass(kind, StopAsyncIteration):
            error = StreamInterrupted("stream ended without a final reply", provider=self.provider)
        if error is not None:
            raise error from None

    def too_long(self) -> RequestTimeout:
        """The error of a stream past its overall deadline."""
        seconds = self.timeouts.stream_deadline
        return RequestTimeout(f"the answer took longer than {seconds:g}s", provider=self.provider)

    def _silence(self, dog: Watchdog) -> RequestTimeout:
        if dog.first_pending:
            message = f"no answer began within {dog.timeout:g}s"
        else:
            message = f"no data for {dog.timeout:g}s"
        return RequestTimeout(message, provider=self.provider)


async def streamed(
    guard: StreamGuard, call: Call
) -> AsyncGenerator[TextDelta | StreamRestart | ProviderReply]:
    """A streamed attempt: its text as it comes, then its reply. A stream that fails
    after showing text first yields a :class:`StreamRestart` (the text shown is void),
    then raises the failure as an interrupted stream."""
    chunks = guard.chunks
    try:
        async with guard as dog:
            while True:
                if dog.waiting():
                    raise guard.too_long()
                chunk = await chunks.__anext__()
                dog.received()
                if not isinstance(chunk, TextDelta):
                    break
                # An empty delta is the provider saying it is alive (a tool call or
                # reasoning is streaming): it kept the watchdog quiet, no more.
                if chunk.text:
                    yield chunk
                    call.shown = True
                    call.streamed_chars += len(chunk.text)
    except ProviderError as error:
        if not call.shown:
            raise
        yield StreamRestart(guard.provider, error.message)
        raise mid_answer(error) from None
    yield chunk


async def completed(
    provider: Provider, request: ChatRequest, timeouts: Timeouts
) -> AsyncGenerator[ProviderReply]:
    """A non-streamed attempt: its reply, within the attempt timeout."""
    seconds = timeouts.attempt
    try:
        async with asyncio.timeout(seconds):
            reply = await provider.chat(request)
    except TimeoutError as exc:
        raise RequestTimeout(f"no answer within {seconds:g}s", provider=provider.name) from exc
    yield reply


async def _close(chunks: AsyncIterator[Any]) -> None:
    aclose = getattr(chunks, "aclose", None)
    if aclose is not None:
        await aclose()
