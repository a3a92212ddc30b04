"""``qwen-dev batch``: the whole command once the CLI has parsed its options.

Validate the input and the output (exit 2, nothing sent), build the client on the shared
state store, run the prompts with a progress display, then print the summary (and, with
``--json``, the summary object on stdout). Exit 0 when every prompt is answered, 3 when
some failed or were left unsent, 130 when interrupted.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import signal
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TextIO

from .. import exit_codes
from ..plurals import plural
from .input import InputError, InputFile, Shard
from .output import CheckpointFile, OutputError
from .plan import Plan, make_plan
from .runner import BatchRunner, RequestOptions, RunEnd
from .tally import Tally, duration

if TYPE_CHECKING:
    from rich.console import Console

    from ..core import LLMClient
    from ..runtime import Runtime

#: Most prompts in flight by default (the budget may allow fewer: see :mod:`.pacing`).
DEFAULT_CONCURRENCY = 8


@dataclass(frozen=True)
class BatchOptions:
    """The options of ``qwen-dev batch`` (see ``qwen-dev batch --help``).

    Args:
        input: the input path, or ``-`` for stdin.
        output: the output path (the checkpoint).
        resume_command: the command line to print for resuming.
    """

    input: str
    output: Path
    resume_command: str
    concurrency: int | None = None
    json_output: bool = False
    shard: str | None = None
    max_wait: float = 600.0
    report_every: float = 30.0
    request: RequestOptions = field(default_factory=RequestOptions)


async def run_batch(
    runtime: Runtime,
    options: BatchOptions,
    *,
    stdin: IO[bytes] | None,
    out: TextIO,
    err: TextIO,
    err_console: Console | None = None,
    get_time: Callable[[], float] = time.monotonic,
) -> int:
    """Run the batch; return the exit code.

    Args:
        runtime: the settings, the home, and the shared state store every request's
            budget lives in (the caller opens and closes it).
        stdin: where ``-`` reads the input from.
        out: ``--json``'s summary goes here, and nothing else.
        err: notices, progress lines and the summary line.
        err_console: draw a live display there (a terminal); ``None``: plain lines.
    """
    command = _Command(runtime, options, out, err, err_console, get_time)
    try:
        with _prepared(options, stdin) as (plan, checkpoint):
            return await command.run(plan, checkpoint)
    except (InputError, OutputError) as exc:
        err.write(f"qwen-dev: {exc}\n")
        return exit_codes.USAGE_ERROR


@contextlib.contextmanager
def _prepared(
    options: BatchOptions, stdin: IO[bytes] | None
) -> Iterator[tuple[Plan, CheckpointFile]]:
    """The plan and the locked output file; both validated before anything is sent."""
    shard = Shard.parse(options.shard) if options.shard is not None else None
    source = InputFile.open(options.input, stdin)
    try:
        input_path = None if source.spooled else source.path
        checkpoint = CheckpointFile(options.output, input_path=input_path)
        try:
            plan = make_plan(source, checkpoint.scan(), shard, output_name=checkpoint.name)
            yield plan, checkpoint
        finally:
            checkpoint.close()
    finally:
        source.close()


@dataclass
class _Command:
    """One run of the command, from a validated plan to the exit code."""

    runtime: Runtime
    options: BatchOptions
    out: TextIO
    err: TextIO
    err_console: Console | None
    get_time: Callable[[], float]

    async def run(self, plan: Plan, checkpoint: CheckpointFile) -> int:
        from ..core import LLMError

        try:
            async with _waiting_max_wait(self.runtime, self.options.max_wait).open_client(
                self._warn, verbose=self.err_console is not None
            ) as client:
                checkpoint.begin(plan.checkpoint)
                tally = Tally(plan.total, plan.skipped, get_time=self.get_time)
                end = await self._send(plan, checkpoint, client, tally)
                summary = _summary(plan, tally, self.options, client.get_metrics())
                return self._finish(summary, end)
        except LLMError as exc:  # no provider left, or one that cannot be built
            self._warn(str(exc))
            return exit_codes.for_error(exc)

    async def _send(
        self, plan: Plan, checkpoint: CheckpointFile, client: LLMClient, tally: Tally
    ) -> RunEnd:
        concurrency = self.options.concurrency or DEFAULT_CONCURRENCY
        settings = self.runtime.settings.client
        paced = settings.rate_limit_enabled and all(p.rpm is not None for p in settings.providers)
        self._say(_announce(plan, self.options, concurrency, paced=paced))
        if plan.checkpoint.torn:
            self._say(
                f"dropped the torn last line of {self.options.output} (an interrupted "
                "write); its prompt is sent again"
            )
        if not plan.todo:
            return RunEnd(False, None, None)
        runner = BatchRunner(
            client,
            checkpoint,
            tally,
            concurrency=concurrency,
            max_wait=self.options.max_wait,
            request=self.options.request,
            notify=self._notify,
            get_time=self.get_time,
        )
        return await self._with_progress(runner, plan, tally, client)

    async def _with_progress(
        self, runner: BatchRunner, plan: Plan, tally: Tally, client: LLMClient
    ) -> RunEnd:
        """Run with Ctrl-C (and SIGTERM) handled by the runner, and progress shown."""
        from .progress import LiveProgress, PlainProgress

        loop = asyncio.get_running_loop()
        handled = []
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(signum, runner.interrupt)
                handled.append(signum)
        try:
            prompts = plan.prompts()
            if self.err_console is not None:
                with LiveProgress(tally, client.status, console=self.err_console) as live:
                    return await _beside(live.run(), runner.run(prompts))
            reporter = PlainProgress(
                tally, client.status, err=self.err, every=self.options.report_every
            )
            return await _beside(reporter.run(), runner.run(prompts))
        finally:
            for signum in handled:
                loop.remove_signal_handler(signum)

    def _finish(self, summary: dict[str, Any], end: RunEnd) -> int:
        """Print the summary; return the exit code."""
        options = self.options
        if end.error is not None or end.stopped is not None:
            self.err.write(f"qwen-dev: batch stopped: {end.error or end.stopped}\n")
        self._say(_summary_line(summary))
        if summary["failed"]:
            self._say(
                f'failed prompts have "ok": false in {options.output}; '
                "running the same command again retries them"
            )
        if end.interrupted or summary["pending"]:
            stdin = " (with the same input on stdin)" if options.input == "-" else ""
            self._say(f"to resume{stdin}:\n  {options.resume_command}")
        if options.json_output:
            self.out.write(json.dumps(summary) + "\n")
            self.out.flush()
        if end.interrupted:
            return exit_codes.INTERRUPTED
        if isinstance(end.error, InputError):
            return exit_codes.USAGE_ERROR
        if end.error is not None:
            return exit_codes.INTERNAL_ERROR
        if summary["failed"] or summary["pending"]:
            return exit_codes.PROVIDER_FAILURE
        return exit_codes.OK

    def _warn(self, text: str) -> None:
        self.err.write(f"qwen-dev: {text}\n")

    def _say(self, text: str) -> None:
        self.err.write(f"qwen-dev batch: {text}\n")
        self.err.flush()

    def _notify(self, text: str) -> None:
        """A notice while the batch runs: above the live display, if there is one."""
        if self.err_console is not None:
            self.err_console.print(f"qwen-dev batch: {text}", markup=False, highlight=False)
        else:
            self._say(text)


def _waiting_max_wait(runtime: Runtime, max_wait: float) -> Runtime:
    """``runtime`` whose clients wait for budget up to ``--max-wait`` (the batch's own
    bound) rather than ``[rate_limit] max_wait`` (a person's)."""
    client = runtime.settings.client
    bound = max(max_wait, 0.001)  # --max-wait 0: no waiting, yet a bound above 0
    client = dataclasses.replace(client, rate_limit_max_wait=bound)
    return dataclasses.replace(
        runtime, settings=dataclasses.replace(runtime.settings, client=client)
    )


async def _beside(display: Coroutine[Any, Any, None], work: Awaitable[RunEnd]) -> RunEnd:
    """``work``'s result, with ``display`` running as a task until it is done."""
    showing = asyncio.create_task(display)
    try:
        return await work
    finally:
        showing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await showing


def _announce(plan: Plan, options: BatchOptions, concurrency: int, *, paced: bool) -> str:
    where = plan.source.name if plan.shard is None else f"shard {plan.shard} of {plan.source.name}"
    parts = [f"{plan.total} prompt{'s' * (plan.total != 1)} in {where}"]
    if plan.skipped:
        parts.append(f"{plan.skipped} answered before (skipped)")
    if plan.retrying:
        parts.append(f"{plan.retrying} failed before (retried)")
    parts.append(
        f"up to {concurrency} at a time, as the budget allows"
        if paced
        else f"{concurrency} at a time"
    )
    parts.append(f"results in {options.output}")
    return ", ".join(parts)


def _summary(
    plan: Plan, tally: Tally, options: BatchOptions, metrics: dict[str, Any]
) -> dict[str, Any]:
    """The ``--json`` object: this run's ``ok`` and ``failed``, ``skipped`` (answered
    before), ``pending`` (not sent: interrupted or stopped)."""
    return {
        "total": plan.total,
        "ok": tally.ok,
        "failed": tally.failed,
        "skipped": plan.skipped,
        "pending": tally.remaining,
        "output": str(options.output),
        "elapsed_s": round(tally.elapsed, 3),
        "metrics": metrics,
    }


def _summary_line(summary: dict[str, Any]) -> str:
    pending, skipped, output = summary["pending"], summary["skipped"], summary["output"]
    if skipped == summary["total"]:
        return f"all {plural(skipped, 'prompt')} were answered before: nothing to send ({output})"
    parts = [f"{summary['ok']} answered", f"{summary['failed']} failed"]
    if pending:
        parts.append(f"{pending} not sent")
    if skipped:
        parts.append(f"{skipped} answered before")
    return f"{', '.join(parts)} in {duration(summary['elapsed_s'])}; results in {output}"
