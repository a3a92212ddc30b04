"""``run_command``: a shell command in the workspace, bounded in time and output.

The command runs in the OS sandbox (:mod:`.sandbox`) when this machine has one, in
its own process group (a new session, no terminal, stdin from /dev/null, so nothing
can stop to wait for input). When it ends, times out or the turn
is cancelled (Ctrl-C), the whole group is killed: background jobs it started do not
outlive it. Output (stdout and stderr interleaved) is kept up to a cap, the middle of
longer output elided, since the start and the end are what explain a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal

from .base import Arguments, CommandPlan, Tool, ToolContext, ToolError, schema
from .git_guard import redirect_snapshot, restore_redirects
from .private import private_places
from .risk import classify_command
from .sandbox import QUIET_ENV, Sandbox, detect_sandbox, sandbox_environment

#: The longest timeout a call may ask for, seconds.
MAX_TIMEOUT = 600.0
#: After the command ends, how long stragglers outside its group may hold the output open.
_DRAIN_GRACE = 2.0
_CHUNK = 65536


@dataclass(frozen=True)
class CommandResult:
    """How a command ended.

    Args:
        exit_code: its exit status; negative for a signal; ``None`` when it timed out.
        output: stdout and stderr, the middle elided beyond the cap.
        timed_out: it was killed at the timeout.
        elided: bytes of output left out.
    """

    exit_code: int | None
    output: str
    timed_out: bool = False
    elided: int = 0
    timeout: float = 0.0

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def for_model(self) -> str:
        if self.timed_out:
            head = (
                f"timed out after {self.timeout:g} s; the command and every process it "
                "started were killed"
            )
        else:
            head = f"exit code {self.exit_code}"
        return f"{head}\n{self.output}" if self.output else f"{head}\n(no output)"


class OutputBuffer:
    """Keeps the first and the last ``cap // 2`` bytes of a stream."""

    def __init__(self, cap: int) -> None:
        self.half = max(cap // 2, 1)
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def feed(self, data: bytes) -> None:
        self.total += len(data)
        room = self.half - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if data:
            self.tail += data
            if len(self.tail) > self.half:
                del self.tail[: len(self.tail) - self.half]

    @property
    def elided(self) -> int:
        return self.total - len(self.head) - len(self.tail)

    def text(self) -> str:
        head = self.head.decode("utf-8", errors="replace")
        tail = self.tail.decode("utf-8", errors="replace")
        if self.elided:
            return f"{head}\n[... {self.elided} bytes of output elided ...]\n{tail}"
        return head + tail


async def run_shell(
    command: str,
    cwd: Path,
    seconds: float,
    cap: int,
    hidden_env: frozenset[str] = frozenset(),
    *,
    writable: Path | None = None,
    network: bool = False,
    private: Sequence[Path] | None = None,
    sandbox: Sandbox | Literal["detect"] | None = "detect",
) -> CommandResult:
    """Run ``command`` with ``/bin/sh`` in ``cwd``; kill its process group at the end.

    With a sandbox (by default the one :func:`detect_sandbox` finds), the command may
    write only below ``writable`` (default ``cwd``; pass the workspace root), has no
    network unless ``network``, cannot read the ``private`` places (default: the home
    folder's credential stores; pass the workspace's), and sees only
    :func:`sandbox_environment`. Without one, it gets the assistant's environment minus
    the ``hidden_env`` variables.
    """
    if sandbox == "detect":
        sandbox = detect_sandbox().sandbox
    if private is None:
        private = private_places(Path.home())
    root = writable or cwd
    redirects = redirect_snapshot(root) if sandbox is not None else {}
    read_fd, write_fd = os.pipe()
    try:
        proc = await _spawn(command, cwd, write_fd, hidden_env, writable, network, private, sandbox)
    except BaseException:
        os.close(read_fd)
        raise
    finally:
        os.close(write_fd)
    buffer = OutputBuffer(cap)
    pipe = os.fdopen(read_fd, "rb", buffering=0)
    reader = asyncio.create_task(_drain(pipe, buffer))
    timed_out = False
    try:
        async with asyncio.timeout(seconds):
            await proc.wait()
    except TimeoutError:
        timed_out = True
    finally:
        kill_process_group(proc.pid)
        try:
            await _finish(proc, reader)
        finally:
            pipe.close()
    output = buffer.text().rstrip("\n")
    if sandbox is not None:
        notes = restore_redirects(root, redirects)
        output = "\n".join([output, *notes]) if notes else output
    return CommandResult(
        exit_code=None if timed_out else proc.returncode,
        output=output,
        timed_out=timed_out,
        elided=buffer.elided,
        timeout=seconds,
    )


async def _spawn(
    command: str,
    cwd: Path,
    output: int,
    hidden_env: frozenset[str],
    writable: Path | None,
    network: bool,
    private: Sequence[Path],
    sandbox: Sandbox | None,
) -> asyncio.subprocess.Process:
    # Our own pipe rather than asyncio's: asyncio's wait() also waits for the pipes to
    # close, which a background job holding them open would postpone indefinitely.
    streams: dict[str, Any] = {
        "cwd": cwd,
        "stdin": asyncio.subprocess.DEVNULL,
        "stdout": output,
        "stderr": asyncio.subprocess.STDOUT,
        "start_new_session": True,
    }
    if sandbox is not None:
        argv = sandbox.argv(
            command, cwd=cwd, writable=writable or cwd, network=network, private=private
        )
        env = sandbox_environment(os.environ)
        return await asyncio.create_subprocess_exec(*argv, env=env, **streams)
    env = {name: value for name, value in os.environ.items() if name not in hidden_env}
    env.update(QUIET_ENV)
    return await asyncio.create_subprocess_shell(command, env=env, **streams)


async def _drain(pipe: BinaryIO, buffer: OutputBuffer) -> None:
    """Read the pipe to its end into ``buffer``."""
    loop = asyncio.get_running_loop()
    stream = asyncio.StreamReader()
    transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stream), pipe)
    try:
        while chunk := await stream.read(_CHUNK):
            buffer.feed(chunk)
    finally:
        transport.close()


async def _finish(proc: asyncio.subprocess.Process, reader: asyncio.Task[None]) -> None:
    """Reap the shell and collect the last output, even while being cancelled."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(reader), _DRAIN_GRACE)
    reader.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await reader
    if proc.returncode is None:
        await proc.wait()


def kill_process_group(pgid: int) -> None:
    """SIGKILL every process of the group (the shell is its leader)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _plan_run_command(args: Arguments, ctx: ToolContext) -> CommandPlan:
    command = args.string("command", "cmd", allow_empty=False).strip()
    if not command:
        raise ToolError("run_command: the command is empty")
    cwd = ctx.workspace.resolve(args.string("cwd", "workdir", default=".") or ".")
    if not cwd.is_dir():
        raise ToolError(f"run_command: {ctx.workspace.display(cwd)} is not a directory")
    requested = args.number("timeout")
    timeout = ctx.command_timeout if requested is None or requested <= 0 else requested
    risk = classify_command(command, cwd=cwd, workspace=ctx.workspace.root, home=ctx.home)
    return CommandPlan(
        command=command,
        cwd=cwd,
        display_cwd=ctx.workspace.display(cwd),
        timeout=min(timeout, MAX_TIMEOUT),
        risk=risk,
    )


RUN_COMMAND = Tool(
    name="run_command",
    kind="command",
    description=(
        "Run a shell command (sh) in the workspace and return its exit code and output "
        "(stdout and stderr together; long output keeps its start and end). No input "
        "can be given to it. Default timeout 120 s. Background processes are stopped "
        "when the command ends. It usually runs in a sandbox: it can write only inside "
        "the workspace (and a private /tmp), with no network access and a minimal "
        "environment. The user may have to approve the command first."
    ),
    parameters=schema(
        {
            "command": {"type": "string", "description": "The shell command."},
            "cwd": {"type": "string", "description": "Folder to run in (default: root)."},
            "timeout": {"type": "number", "description": "Seconds before it is killed."},
        },
        ["command"],
    ),
    planner=_plan_run_command,
)
