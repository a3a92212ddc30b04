"""One MCP server's connection, kept by a background task for the whole session.

The SDK's transports and sessions are async context managers whose cancel scopes must
be entered and left by one task, so each server has its own task: it starts the
transport, initialises, lists the tools, says it is ready, and holds the connection
until :meth:`McpServer.stop`. Tool calls from the agent's task go through the session.

A stdio server (:mod:`.stdio`) gets only its configured ``env`` plus PATH, HOME, LANG
and TERM: never the providers' API keys or anything else of the user's environment. Its
stderr goes to a log file under ``QWEN_DEV_HOME``, not the terminal; it runs in its own
process group, which is ended on the way out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Final, Literal

from ..tools.sandbox import PASSED_ENV
from .expand import expand, missing
from .results import result_text

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from mcp import ClientSession
    from mcp.types import Tool as McpTool

    from ..config.mcp_servers import McpServerSettings

log = logging.getLogger(__name__)

#: Tools one server may offer (a hostile one could list millions).
MAX_TOOLS: Final = 500
#: Times a server that stopped by itself is started again before it is failed.
MAX_RESTARTS: Final = 1
#: A server's stderr log is set aside (one old file kept) whenever it passes this, at
#: a start or while the server runs.
MAX_LOG_BYTES: Final = 8 << 20
#: Pages of ``tools/list`` read (a server could page forever).
MAX_PAGES: Final = 20
#: Times a read-only or idempotent tool call is sent again after a transient failure
#: of an HTTP server (no connection, a connection lost, a 5xx), and the pauses before.
CALL_RETRIES: Final = 2
CALL_RETRY_DELAYS: Final = (0.5, 1.5)
#: A call's ``timeout`` starts again at each progress notification, up to this many
#: times ``timeout`` in all (a server sending progress forever must end some time).
MAX_CALL_TIMEOUTS: Final = 10

#: The code the SDK's streamable-HTTP client answers a request with when the server
#: says (404) it no longer knows the session.
_SESSION_TERMINATED: Final = 32600

ServerState = Literal["starting", "ready", "failed", "stopped"]


class ServerFailed(Exception):
    """A server could not be started or used; the message is for the user."""


class _Transient(ServerFailed):
    """A call that failed before or while reaching the server: one the server's
    annotations say is read-only or idempotent may be sent again."""


@dataclass(frozen=True)
class CallResult:
    ok: bool
    text: str


class McpServer:
    """A configured server, connected in the background.

    Args:
        settings: its ``[mcp.servers.NAME]`` table.
        log_path: where its stderr goes.
        env: the environment ``${VAR}`` expands from.
    """

    def __init__(self, settings: McpServerSettings, log_path: Path, env: Mapping[str, str]) -> None:
        self.settings = settings
        self.log_path = log_path
        self._env = env
        self.state: ServerState = "starting"
        self.error: str | None = None
        self.tools: tuple[McpTool, ...] = ()
        self._session: ClientSession | None = None
        self._ready = asyncio.Event()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        #: What the transport saw go wrong (a message too long), for the failure's message.
        self._problems: list[str] = []
        #: Set when the connection is lost (the process ended): the holding task
        #: restarts it once.
        self._lost = asyncio.Event()
        #: Times it was restarted after it stopped by itself.
        self.restarts = 0
        #: Seconds from its start to ready or failed (``None`` while starting).
        self.startup_seconds: float | None = None
        #: How many times it was (re)started: tools built for an earlier connection are
        #: built again.
        self.generation = 0
        from .breaker import MAX_MESSAGE, Breaker

        #: An HTTP server's circuit breaker (kept across reconnections, reset by restart).
        self.breaker = Breaker()
        #: The longest message read from an HTTP server, in bytes.
        self.max_message = MAX_MESSAGE

    @property
    def name(self) -> str:
        return self.settings.name

    def start(self) -> None:
        """Start connecting in the background."""
        if self._task is None:
            self._task = asyncio.create_task(self._hold(), name=f"mcp server {self.name}")

    async def restart(self) -> None:
        """End the connection (if any) and connect again in the background."""
        await self.stop()
        self._ready = asyncio.Event()
        self._stop = asyncio.Event()
        self._task = None
        self._session = None
        self._problems = []
        self._lost = asyncio.Event()
        self.restarts = 0
        self.state = "starting"
        self.error = None
        self.tools = ()
        self.startup_seconds = None
        self.generation += 1
        self.breaker.reset()
        self.start()

    async def wait_ready(self) -> None:
        """Until the server is ready or has failed (its own startup_timeout bounds this)."""
        await self._ready.wait()

    async def stop(self) -> None:
        """End the connection (and a stdio server's process group)."""
        self._stop.set()
        if self._task is not None:
            try:
                await self._task
            except BaseException as exc:  # a broken close must not end the session's exit
                log.info("closing MCP server %s: %r", self.name, exc)
        if self.state != "failed":
            self.state = "stopped"

    async def call(self, tool: str, arguments: dict[str, Any]) -> CallResult:
        """Call ``tool``; a timeout, a dead server or a protocol error is a failed call.

        A call an HTTP server's annotations say is read-only or idempotent is sent again
        (:data:`CALL_RETRIES` times) after a transient failure; any other is sent once.
        """
        retries = CALL_RETRIES if self.settings.kind != "stdio" and self._repeatable(tool) else 0
        for attempt in range(retries + 1):
            try:
                return await self._call_once(tool, arguments)
            except _Transient as exc:
                if attempt == retries:
                    tried = f" (tried {attempt + 1} times)" if attempt else ""
                    raise ServerFailed(f"{exc}{tried}") from exc
                log.info("MCP server %s: %s; %s sent again", self.name, exc, tool)
                await asyncio.sleep(CALL_RETRY_DELAYS[min(attempt, len(CALL_RETRY_DELAYS) - 1)])
        raise AssertionError("unreachable")  # pragma: no cover

    def _repeatable(self, tool: str) -> bool:
        """Whether the server says ``tool`` is read-only or idempotent."""
        offered = next((t for t in self.tools if t.name == tool), None)
        hints = None if offered is None else offered.annotations
        return hints is not None and bool(hints.readOnlyHint or hints.idempotentHint)

    async def _call_once(self, tool: str, arguments: dict[str, Any]) -> CallResult:
        if self.state == "starting":  # restarting after it stopped: its startup_timeout
            await self.wait_ready()
        session = self._session
        if session is None or self.state != "ready":
            raise ServerFailed(self.unavailable())
        from mcp import McpError

        from .http import TRANSIENT

        timeout = self.settings.timeout
        loop = asyncio.get_running_loop()
        try:
            # The call's timeout starts again at each progress notification; the SDK's
            # own (a fixed one) is only the bound on all of them together.
            async with asyncio.timeout(timeout) as deadline:

                async def progress(
                    progress: float, total: float | None, message: str | None
                ) -> None:
                    deadline.reschedule(loop.time() + timeout)

                result = await session.call_tool(
                    tool,
                    arguments,
                    read_timeout_seconds=timedelta(seconds=timeout * MAX_CALL_TIMEOUTS),
                    progress_callback=progress,
                )
        except TimeoutError as exc:
            raise ServerFailed(
                f"MCP server {self.name}: no answer or progress within {timeout:g} s"
            ) from exc
        except Exception as exc:
            if _connection_lost(exc):
                # The holding task restarts it once; after that its tools are offered no
                # more, and the user hears why with the next notice.
                self._lost.set()
                why = self._problems[-1] if self._problems else _say(exc)
                then = (
                    "it is being restarted"
                    if self.restarts < MAX_RESTARTS
                    else "it is not restarted again"
                )
                raise ServerFailed(
                    f"MCP server {self.name}: it stopped ({why}); {then}{self._last_stderr()}"
                ) from exc
            code = exc.error.code if isinstance(exc, McpError) else None
            if code == _SESSION_TERMINATED and self.settings.kind == "http":
                # The server forgot the session (it restarted): the protocol says start
                # a new one, so it is connected again (its one restart) and a repeatable
                # call sent again on the new session.
                self._lost.set()
                raise _Transient(
                    f"MCP server {self.name}: it ended the session (restarted?); connecting again"
                ) from exc
            kind = _Transient if code == TRANSIENT else ServerFailed
            raise kind(f"MCP server {self.name}: {_say(exc)}") from exc
        return CallResult(not result.isError, result_text(result))

    def unavailable(self) -> str:
        """Why its tools cannot be called now."""
        return f"MCP server {self.name} is not available ({self.state}): {self.error or ''}"

    def _last_stderr(self, lines: int = 3) -> str:
        """The end of its stderr log, for a failure's message."""
        if self.settings.kind != "stdio":
            return ""
        try:
            with self.log_path.open("rb") as log_file:
                log_file.seek(0, os.SEEK_END)
                log_file.seek(max(0, log_file.tell() - 2000))
                text = log_file.read().decode("utf-8", "replace")
            tail = [" ".join(line.split()) for line in text.splitlines() if line.strip()]
            tail = tail[-lines:]
        except OSError:
            return ""
        from ..safe_text import printable

        return f"; its last stderr: {printable(' | '.join(tail)[:300])}" if tail else ""

    # --- the background task ---------------------------------------------------------

    async def _hold(self) -> None:
        """Connect, and hold the connection until :meth:`stop`; a server whose
        connection is lost once it was ready is started again, once."""
        began = time.monotonic()
        # The SDK takes half a second to import: in a thread, so the event loop (the
        # REPL's prompt, the other servers) goes on meanwhile.
        await asyncio.to_thread(_import_sdk, self.settings.kind)
        if self._stop.is_set():  # the session ended first: start nothing
            self._ready.set()
            return
        while await self._hold_once(began):
            # (The lost connection left the state "starting" and a new _ready event,
            # which calls wait on until the next connection is ready or has failed.)
            if self._stop.is_set():
                self._ready.set()
                return
            if self.restarts >= MAX_RESTARTS:
                self.state = "failed"
                why = self._problems[-1] if self._problems else "its process ended"
                self.error = f"it stopped again ({why}); not restarted{self._last_stderr()}"
                log.info("MCP server %s: %s", self.name, self.error)
                self._ready.set()
                return
            self.restarts += 1
            log.info("MCP server %s stopped; restarting it", self.name)
            self._lost = asyncio.Event()
            self._problems = []
            self.tools = ()
            self.generation += 1

    async def _hold_once(self, began: float) -> bool:
        """One connection, held until :meth:`stop` or until it is lost; whether it was
        lost (the process ended, the stream closed) once it was ready."""
        errlog: StderrLog | None = None
        connected = False
        try:
            async with AsyncExitStack() as stack:
                if self.settings.kind == "stdio":
                    errlog = self._open_log()
                # asyncio.timeout, not wait_for: the transport's cancel scopes must be
                # entered and left by this one task.
                async with asyncio.timeout(self.settings.startup_timeout):
                    session = await self._connect(stack, errlog)
                self._session = session
                self.state = "ready"
                connected = True
                if self.startup_seconds is None:
                    self.startup_seconds = time.monotonic() - began
                self._ready.set()
                await _either(self._stop, self._lost)
                self._session = None
                if self._lost.is_set() and not self._stop.is_set():
                    # From now on a call waits for the next connection (or hears that
                    # there is none), not for this one to finish closing.
                    self.state = "starting"
                    self._ready = asyncio.Event()
            return self._lost.is_set()
        except BaseException as exc:
            if connected and self._lost.is_set() and isinstance(exc, Exception):
                return True  # closing what was already lost can fail: it was lost all the same
            self.state = "failed"
            if isinstance(_innermost(exc), TimeoutError):
                self.error = f"did not start within {self.settings.startup_timeout:g} s"
            else:
                self.error = _say(exc)
            if not isinstance(exc, Exception):
                raise
            return False
        finally:
            self._session = None
            if self.startup_seconds is None:
                self.startup_seconds = time.monotonic() - began
            if self.state != "starting":  # (starting: lost, _hold connects again)
                self._ready.set()
            if errlog is not None:
                errlog.close()

    async def _connect(self, stack: AsyncExitStack, errlog: StderrLog | None) -> ClientSession:
        from mcp import ClientSession

        streams = await stack.enter_async_context(await self._transport(stack, errlog))
        session = await stack.enter_async_context(
            ClientSession(
                streams[0],
                streams[1],
                read_timeout_seconds=timedelta(seconds=self.settings.timeout),
            )
        )
        await session.initialize()
        self.tools = await self._list_tools(session)
        return session

    async def _transport(
        self, stack: AsyncExitStack, errlog: StderrLog | None
    ) -> contextlib.AbstractAsyncContextManager[Any]:
        settings = self.settings
        texts = [*settings.args, *settings.env.values(), *settings.headers.values()]
        if settings.url is not None:
            texts.append(settings.url)
        unset = missing(texts, self._env)
        if unset:
            raise ServerFailed(f"{', '.join(unset)} not set (used in its settings)")
        if settings.kind == "stdio":
            from .stdio import stdio_transport

            assert settings.command is not None
            assert errlog is not None
            env = {name: os.environ[name] for name in PASSED_ENV if name in os.environ}
            env.update({k: expand(v, self._env) for k, v in settings.env.items()})
            return stdio_transport(
                expand(settings.command, self._env),
                [expand(arg, self._env) for arg in settings.args],
                env=env,
                cwd=None if settings.cwd is None else expand(settings.cwd, self._env),
                errlog=errlog,
                on_problem=self._problems.append,
                on_exit=self._lost.set,
            )
        assert settings.url is not None
        url = expand(settings.url, self._env)
        if not url.startswith(("http://", "https://")):
            raise ServerFailed(f"url {url!r} is not an http:// or https:// URL")
        headers = {k: expand(v, self._env) for k, v in settings.headers.items()}
        # Asked uncompressed: a small gzip body could inflate without bound above the
        # transport that bounds what the server sends.
        headers = {"accept-encoding": "identity", **headers}
        import httpx

        from .http import GuardedTransport

        # The SDK's own timeouts (a server may hold a response stream open for minutes).
        timeout = httpx.Timeout(30.0, read=300.0)

        def client(
            headers: dict[str, str] | None = None,
            timeout: httpx.Timeout | None = timeout,
            auth: httpx.Auth | None = None,
        ) -> httpx.AsyncClient:
            return httpx.AsyncClient(
                headers=headers,
                timeout=timeout,
                auth=auth,
                transport=GuardedTransport(
                    self.breaker,
                    self.max_message,
                    answers_in_body=settings.kind == "http",
                    idle=settings.timeout,
                    total=settings.timeout * MAX_CALL_TIMEOUTS,
                ),
            )

        if settings.kind == "sse":
            from mcp.client.sse import sse_client

            return sse_client(url, headers=headers, httpx_client_factory=client)
        from mcp.client.streamable_http import streamable_http_client

        # Ours to close: the transport closes only a client it made itself.
        made = await stack.enter_async_context(client(headers))
        return streamable_http_client(url, http_client=made)

    async def _list_tools(self, session: ClientSession) -> tuple[McpTool, ...]:
        tools: list[McpTool] = []
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            page = await session.list_tools(cursor)
            tools.extend(page.tools)
            cursor = page.nextCursor
            if cursor is None or len(tools) >= MAX_TOOLS:
                break
        if len(tools) > MAX_TOOLS:
            log.warning("MCP server %s: the first %d of its tools kept", self.name, MAX_TOOLS)
        return tuple(tools[:MAX_TOOLS])

    def _open_log(self) -> StderrLog:
        return StderrLog(self.log_path, MAX_LOG_BYTES)


class StderrLog:
    """A stdio server's stderr, copied into ``path`` as it comes (the server writes into
    a pipe, never into the file), and set aside (one old file, ``path.1``, kept) each
    time it would pass ``limit`` bytes: a server writing its stderr without end, in one
    session or over many, keeps at most about twice ``limit`` on disk. A file set aside
    while the server runs leaves a note as the new file's first line (what came before
    it is in ``path.1``, anything older is gone)."""

    def __init__(self, path: Path, limit: int = MAX_LOG_BYTES) -> None:
        self.path = path
        self.limit = limit
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("ab")
        self._size = self._file.tell()
        if self._size > limit:
            self._set_aside()

    def write(self, data: bytes) -> None:
        if self._size + len(data) > self.limit and self._size:
            self._set_aside()
            self._file.write(self._note())
        self._file.write(data)
        self._file.flush()  # read back for a failure's message, and tailed by the user
        self._size += len(data)

    def _set_aside(self) -> None:
        self._file.close()
        with contextlib.suppress(OSError):
            self.path.replace(self.path.with_name(self.path.name + ".1"))
        self._file = self.path.open("ab")
        self._size = self._file.tell()

    def _note(self) -> bytes:
        """The line that says output was cut (counted in the file's size)."""
        when = time.strftime("%Y-%m-%d %H:%M:%S")
        note = (
            f"[qwen-dev {when}: this server's stderr passed {self.limit:,} bytes; what came"
            f" just before this line is in {self.path.name}.1, anything older was cut]\n"
        ).encode()
        self._size += len(note)
        return note

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> StderrLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _import_sdk(kind: str) -> None:
    """Load the SDK's modules a server of this transport needs."""
    import importlib

    transport = {
        "stdio": "qwen_dev_cli.mcp.stdio",
        "sse": "mcp.client.sse",
    }.get(kind, "mcp.client.streamable_http")
    http = () if kind == "stdio" else ("qwen_dev_cli.mcp.http",)
    for module in ("mcp.client.session", "mcp.types", transport, *http):
        importlib.import_module(module)


async def _either(first: asyncio.Event, second: asyncio.Event) -> None:
    """Until one of two events is set."""
    waiters = [asyncio.ensure_future(first.wait()), asyncio.ensure_future(second.wait())]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


def _connection_lost(exc: BaseException) -> bool:
    import anyio

    inner = _innermost(exc)
    if isinstance(inner, anyio.ClosedResourceError | anyio.BrokenResourceError):
        return True
    return "connection closed" in str(inner).lower()


def _innermost(exc: BaseException) -> BaseException:
    """The first exception a task group wrapped, or ``exc``."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _say(exc: BaseException) -> str:
    """An exception in a few words (task groups wrap the interesting one), safe to
    print: a server's error text could carry escape sequences for the terminal."""
    from ..safe_text import printable

    exc = _innermost(exc)
    if isinstance(exc, FileNotFoundError):
        return f"command not found: {exc.filename or exc}"
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):  # (str() renders every error: maybe millions)
        return f"its answer was not a valid {exc.title}: {exc.error_count():,} problems"
    text = printable((str(exc).strip().splitlines() or [type(exc).__name__])[0])
    return text if len(text) <= 300 else text[:300] + "..."
