"""The stdio transport: a server process, its messages framed one per line.

The SDK's ``stdio_client`` joins each chunk to everything unread before splitting it
into lines, so one long line costs time quadratic in its length (a 50 MB result took
70 s and 670 MB here) and has no bound at all: a hostile or broken server could stall
qwen-dev and fill its memory with a single message. This transport does the same job
(the messages are still the SDK's ``JSONRPCMessage``, the session is the SDK's
``ClientSession``: nothing of the protocol is written here) with framing that is linear
in the bytes read and bounded: a message longer than ``max_message`` bytes is skipped
unread, the request it answered gets an error saying so (the server stays connected),
and ``on_problem`` is told. An answer holding too many values to read
(:func:`~.messages.crowded`) is not read either, and one the SDK cannot read (not
JSON, no JSON-RPC message, nested too deep) is its request's error at once too, not a
call waiting its timeout.

On the way out, as the SDK does it: stdin is closed and the server given
:data:`GRACE` seconds to leave; then its whole process group (it runs in a session of
its own) gets SIGTERM, then SIGKILL, so nothing it started outlives qwen-dev.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import signal
import subprocess
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Final, Protocol

import anyio
from mcp.shared.message import SessionMessage
from mcp.types import (
    INTERNAL_ERROR,
    ErrorData,
    JSONRPCError,
    JSONRPCMessage,
    JSONRPCRequest,
    JSONRPCResponse,
)
from pydantic import ValidationError

from ..tools.executables import absolute_path
from .breaker import MAX_MESSAGE
from .messages import LISTS, MAX_LIST_VALUES, MAX_VALUES, crowded, many, why

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from anyio.abc import Process
    from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

#: Seconds a server has to leave after its stdin is closed, and after SIGTERM.
GRACE: Final = 2.0

#: Bytes kept of a message too long to read: enough to find the id it answers.
_HEAD: Final = 4096
_ID: Final = re.compile(rb'"id"\s*:\s*(-?\d+|"(?:[^"\\]|\\.)*")')
_METHOD: Final = re.compile(rb'"method"\s*:')


class StderrSink(Protocol):
    """Where a server's stderr goes, as it comes (:class:`~.server.StderrLog`)."""

    def write(self, data: bytes, /) -> object: ...


Streams = tuple[
    "MemoryObjectReceiveStream[SessionMessage | Exception]",
    "MemoryObjectSendStream[SessionMessage]",
]


def _program(command: str, env: dict[str, str]) -> str:
    """``command``'s absolute path when it is a bare name, found on the absolute entries
    of the server's ``PATH`` only: a relative entry (a stray ':') is the current folder,
    the workspace, and a cloned repository's own ``npx`` would start in its place."""
    if os.sep in command:
        return command
    found = shutil.which(command, path=absolute_path(env))
    if found is None:
        said = f"{command} is not found on PATH (its absolute folders)"
        raise FileNotFoundError(errno.ENOENT, said, command)
    return found


@asynccontextmanager
async def stdio_transport(
    command: str,
    args: list[str],
    *,
    env: dict[str, str],
    cwd: str | None,
    errlog: StderrSink,
    on_problem: Callable[[str], None],
    on_exit: Callable[[], None] = lambda: None,
    max_message: int = MAX_MESSAGE,
) -> AsyncIterator[Streams]:
    """The server's message streams while the block runs (``env`` is its whole
    environment); ``on_exit`` is called when its output ends (it stopped, or is being
    stopped). Raises :class:`OSError` when the command cannot be started."""
    command = _program(command, env)
    incoming_writer, incoming = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    outgoing, outgoing_reader = anyio.create_memory_object_stream[SessionMessage](0)
    try:
        process = await anyio.open_process(
            [command, *args],
            env=env,
            cwd=cwd,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except OSError:
        for stream in (incoming_writer, incoming, outgoing, outgoing_reader):
            await stream.aclose()
        raise

    #: The ids of requests whose answers may hold more values (tools/list).
    lists: set[object] = set()

    async def read() -> None:
        assert process.stdout is not None
        async with incoming_writer:
            pending = bytearray()
            #: The start of a message too long to keep, while the rest of it is skipped.
            skipped: bytes | None = None
            try:
                async for chunk in process.stdout:
                    lines = bytes(chunk).split(b"\n")
                    for index, line in enumerate(lines):
                        if skipped is None:
                            pending += line
                            if len(pending) > max_message:
                                skipped = bytes(pending[:_HEAD])
                                pending = bytearray()
                        if index == len(lines) - 1:
                            break  # the line goes on in the next chunk
                        if skipped is not None:
                            await _refuse(skipped, max_message, incoming_writer, on_problem)
                            skipped = None
                        else:
                            await _deliver(pending, incoming_writer, lists)
                            pending = bytearray()
            except anyio.ClosedResourceError:
                await anyio.lowlevel.checkpoint()
                return
        on_exit()

    async def write() -> None:
        assert process.stdin is not None
        try:
            async with outgoing_reader:
                async for message in outgoing_reader:
                    root = message.message.root
                    if isinstance(root, JSONRPCRequest) and root.method in LISTS:
                        lists.add(root.id)
                    text = message.message.model_dump_json(by_alias=True, exclude_none=True)
                    await process.stdin.send((text + "\n").encode())
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            await anyio.lowlevel.checkpoint()

    async def copy_stderr() -> None:
        # Through a pipe, not into the file: what is kept of it stays bounded
        # (errlog sets the file aside as it grows), however much the server writes.
        assert process.stderr is not None
        with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):
            async for chunk in process.stderr:
                errlog.write(bytes(chunk))

    async with anyio.create_task_group() as tasks, process:
        tasks.start_soon(read)
        tasks.start_soon(write)
        tasks.start_soon(copy_stderr)
        try:
            yield incoming, outgoing
        finally:
            await _end(process)
            tasks.cancel_scope.cancel()
            for stream in (incoming, outgoing, incoming_writer, outgoing_reader):
                await stream.aclose()


async def _refuse(
    head: bytes,
    limit: int,
    writer: MemoryObjectSendStream[SessionMessage | Exception],
    on_problem: Callable[[str], None],
) -> None:
    """A message over ``limit`` was skipped unread: the request it answered (its id is
    near the start) gets an error instead, and the server stays connected."""
    problem = f"its answer was over {limit:,} bytes and was not read"
    on_problem(problem)
    await _answer(head, problem, writer)


async def _answer(
    head: bytes, problem: str, writer: MemoryObjectSendStream[SessionMessage | Exception]
) -> bool:
    """Whether the request a message answered (its id near the start, ``head``) could be
    given ``problem`` as its error."""
    request = _request_of(head)
    if request is None:
        return False
    error = JSONRPCError(
        jsonrpc="2.0", id=request, error=ErrorData(code=INTERNAL_ERROR, message=problem)
    )
    await writer.send(SessionMessage(JSONRPCMessage(error)))
    return True


def _request_of(head: bytes) -> str | int | None:
    """The id near the start of a message (``None``: none, or one JSON does not take)."""
    found = _ID.search(head)
    if found is None:
        return None
    try:
        request = json.loads(found.group(1))
    except ValueError:
        return None
    return request if isinstance(request, str | int) else None


async def _deliver(
    line: bytearray,
    writer: MemoryObjectSendStream[SessionMessage | Exception],
    lists: set[object],
) -> None:
    """One line, read (``lists``: the ids of requests whose answers may hold more
    values; one answered leaves it)."""
    if not line.strip():
        return
    if many(line):
        head = bytes(line[:_HEAD])
        answered = _request_of(head)
        limit = MAX_LIST_VALUES if answered in lists else MAX_VALUES
        lists.discard(answered)
        problem = crowded(line, limit)
        if problem is not None:  # not read: as one too long
            if _METHOD.search(head) is None and await _answer(head, problem, writer):
                return
            await writer.send(ValueError(f"a message from the server: {problem}"))
            return
    try:
        message = JSONRPCMessage.model_validate_json(line)
    except ValidationError as exc:
        # An answer the SDK cannot read (not JSON, no JSON-RPC message, nested too
        # deep) is its request's error at once: the session would only log it, and the
        # call wait its whole timeout. Anything else (no id; a request or notification
        # of the server's) the session hears of, as before.
        head = bytes(line[:_HEAD])
        if _METHOD.search(head) is None and await _answer(head, why(exc, line), writer):
            return
        await writer.send(exc)
        return
    except Exception as exc:  # garbage from the server: the session hears of it
        await writer.send(exc)
        return
    if lists and isinstance(message.root, JSONRPCResponse | JSONRPCError):
        lists.discard(message.root.id)
    await writer.send(SessionMessage(message))


async def _end(process: Process) -> None:
    """Stdin closed and a grace period; then the process group (whatever the server
    started too) SIGTERM, a grace period for the server, and SIGKILL."""
    if process.stdin is not None:
        with contextlib.suppress(Exception):
            await process.stdin.aclose()
    with anyio.move_on_after(GRACE):
        await process.wait()
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        if process.returncode is None:
            with anyio.move_on_after(GRACE):
                await process.wait()
