"""The output of ``qwen-dev batch``, which is also its checkpoint.

One JSON line per prompt as it finishes, written whole, flushed and synced before the
prompt counts as done, so a crash (even SIGKILL) loses at most the prompts in flight.
Running the same command again resumes: :meth:`CheckpointFile.scan` reads what is
there, ids answered ``ok`` are skipped, failed ones retried (their old line stays; the
*last* line of an id is the one that counts), and a torn last line (no newline: the
process died mid-write) is cut away before anything is appended.

Each line carries ``prompt_hash``, the hash of what its prompt asked (see
:func:`~qwen_dev_cli.batch.input.digest_of`). That is how a resume knows the output
belongs to this input: an id the input does not have, or an id that now asks
something else, is refused rather than silently mixed in. Adding prompts to the input
between runs is fine: the new ids are simply not answered yet.

While a batch writes the file it holds an exclusive ``flock`` on it, so two batches
cannot interleave their lines. A new file is created with mode 0600 (answers may
quote private prompts, like session files); an existing file keeps its mode.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import json
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..core.types import ChatResult
    from .input import Prompt

#: Longest result line read back when resuming (answers can be long).
MAX_RESULT_LINE = 64 * 1024 * 1024


class OutputError(Exception):
    """The output file cannot be used as this batch's checkpoint, and why."""


@dataclass(frozen=True)
class Answered:
    """What the checkpoint says of one id: its last line's ``ok`` and prompt hash."""

    ok: bool
    digest: str


@dataclass
class Checkpoint:
    """What an earlier run left in the output file.

    Args:
        results: the last line of each id.
        keep: bytes of complete lines; anything after is a torn line.
        size: the file's size when read.
    """

    results: dict[str, Answered] = field(default_factory=dict)
    keep: int = 0
    size: int = 0

    @property
    def torn(self) -> bool:
        return self.size > self.keep


class CheckpointFile:
    """The output file: checked, locked, read back, then appended to.

    Args:
        path: the output path as the user gave it.
        input_path: the input file, which the output must not be.

    Raises:
        OutputError: ``-``, a symbolic link (the link is not followed: give the real
            path to write there), not a regular file, a missing folder, the input file
            itself, or a file another batch is writing.
    """

    def __init__(self, path: Path, *, input_path: Path | None) -> None:
        self.path = path
        self.name = str(path)
        self._fd: int | None = None
        self._end = 0
        self._written = 0
        self._synced = 0
        self._sync_lock = asyncio.Lock()
        found = _check_path(path, input_path)
        if found:
            self._fd = _open(path, os.O_RDWR)

    def scan(self) -> Checkpoint:
        """Read every result line; refuse a file that is not a batch output."""
        checkpoint = Checkpoint()
        if self._fd is None:
            return checkpoint
        offset = 0
        os.lseek(self._fd, 0, os.SEEK_SET)
        with open(self._fd, "rb", closefd=False) as handle:
            for number, line in enumerate(_lines(handle, self.name), start=1):
                if not line.endswith(b"\n"):
                    # Cut only what a batch began to write: any other file's last line
                    # (a one-line note without a newline) is not ours to drop.
                    if not (line.startswith(_LINE_START) or _LINE_START.startswith(line)):
                        raise self._not_ours(number)
                    checkpoint.size = offset + len(line)
                    break
                offset += len(line)
                checkpoint.keep = checkpoint.size = offset
                if not line.strip():
                    raise self._not_ours(number)  # batch writes no blank line
                prompt_id, answered = self._parse(line, number)
                checkpoint.results[prompt_id] = answered
        checkpoint.size = max(checkpoint.size, os.fstat(self._fd).st_size)
        return checkpoint

    def begin(self, checkpoint: Checkpoint) -> None:
        """Get ready to append: create the file (0600) if new, cut a torn last line."""
        if self._fd is None:
            self._fd = _open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL)
        if checkpoint.torn:
            os.ftruncate(self._fd, checkpoint.keep)
            os.fsync(self._fd)
        self._end = checkpoint.keep

    async def append(self, record: dict[str, Any]) -> None:
        """Write one result line whole, then sync it (syncs of lines finished together
        are shared). Raises :class:`OSError` (disk full...) with nothing half-written."""
        assert self._fd is not None, "begin() first"
        data = encode(record)
        start = self._end
        try:
            done = 0
            while done < len(data):
                done += os.pwrite(self._fd, data[done:], start + done)
        except OSError:
            os.ftruncate(self._fd, start)
            raise
        self._end = start + len(data)
        self._written += 1
        await self._sync(self._written)

    async def _sync(self, upto: int) -> None:
        async with self._sync_lock:
            if self._synced >= upto:
                return
            target = self._written
            assert self._fd is not None
            await asyncio.to_thread(os.fsync, self._fd)
            self._synced = target

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # releases the lock
            self._fd = None

    def _not_ours(self, number: int) -> OutputError:
        return OutputError(
            f"{self.name}:{number} is not a qwen-dev batch result: is {self.name} "
            "the right output file? (it is also the checkpoint a rerun resumes from)"
        )

    def _parse(self, line: bytes, number: int) -> tuple[str, Answered]:
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            record = None
        # Every line batch writes names its prompt by hash: one without it was not
        # written by batch, and trusting it would skip that id on every resume.
        if (
            not isinstance(record, dict)
            or not isinstance(record.get("id"), str)
            or not isinstance(record.get("ok"), bool)
            or not isinstance(record.get("prompt_hash"), str)
        ):
            raise self._not_ours(number)
        return record["id"], Answered(record["ok"], record["prompt_hash"])


def answer_record(
    prompt: Prompt, result: ChatResult, *, attempts: int, latency_ms: float
) -> dict[str, Any]:
    """The output line of an answered prompt."""
    return {
        "id": prompt.id,
        "ok": True,
        "text": result.text,
        "provider": result.provider,
        "model": result.model,
        "usage": result.usage.to_dict(),
        "attempts": attempts,
        "latency_ms": round(latency_ms),
        "error": None,
        "finish_reason": result.finish_reason,
        "prompt_hash": prompt.digest,
    }


def failure_record(
    prompt: Prompt, error: dict[str, Any], *, attempts: int, latency_ms: float
) -> dict[str, Any]:
    """The output line of a prompt that failed; ``error`` holds at least type and message."""
    return {
        "id": prompt.id,
        "ok": False,
        "text": None,
        "provider": None,
        "model": None,
        "usage": None,
        "attempts": attempts,
        "latency_ms": round(latency_ms),
        "error": error,
        "finish_reason": None,
        "prompt_hash": prompt.digest,
    }


#: How every line :func:`encode` writes begins (records start with their id).
_LINE_START = b'{"id": '


def encode(record: dict[str, Any]) -> bytes:
    """One line of UTF-8 JSON; all-ASCII escapes if the text holds lone surrogates."""
    try:
        return (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
    except UnicodeEncodeError:
        return (json.dumps(record) + "\n").encode("ascii")


def _check_path(path: Path, input_path: Path | None) -> bool:
    """Refuse an unusable output path; return whether the file exists."""
    if str(path) == "-":
        raise OutputError("OUTPUT must be a file: it is also the checkpoint a rerun resumes from")
    try:
        found = os.lstat(path)
    except FileNotFoundError:
        found = None
    except OSError as exc:
        raise OutputError(f"cannot use {path} as OUTPUT: {exc.strerror or exc}") from exc
    if found is not None and stat.S_ISLNK(found.st_mode):
        raise OutputError(
            f"{path} is a symbolic link (to {os.readlink(path)}); it is not followed: "
            "give the path it points to, if that is where results should go"
        )
    if found is not None and not stat.S_ISREG(found.st_mode):
        raise OutputError(f"{path} is not a regular file")
    if found is None and not path.parent.is_dir():
        raise OutputError(f"cannot create {path}: folder {path.parent} does not exist")
    if found is not None and input_path is not None:
        try:
            same = os.path.samefile(path, input_path)
        except OSError:
            same = False
        if same:
            raise OutputError(f"OUTPUT {path} is the INPUT file: choose another output file")
    return found is not None


def _open(path: Path, flags: int) -> int:
    """Open (or create, 0600) without following a symlink, and lock it for this batch."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except FileExistsError as exc:
        raise OutputError(f"{path} appeared meanwhile: is another batch writing it?") from exc
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise OutputError(f"{path} is being written by another qwen-dev batch") from exc
        raise OutputError(f"cannot lock {path}: {exc.strerror or exc}") from exc
    return fd


def _lines(handle: IO[bytes], name: str) -> Iterator[bytes]:
    """Lines with their newline; one over :data:`MAX_RESULT_LINE` is refused."""
    while True:
        line = handle.readline(MAX_RESULT_LINE + 1)
        if not line:
            return
        if len(line) > MAX_RESULT_LINE:
            raise OutputError(f"a line of {name} is longer than {MAX_RESULT_LINE >> 20} MiB")
        yield line
