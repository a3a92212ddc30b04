"""Saved llama.cpp states of a prompt prefix, on disk, shared by every process.

Every offline conversation starts with the same ~1,400 tokens (system prompt and tool
schemas): prefilling them costs seconds on a small machine, restoring their state
from a file costs tens of milliseconds. This module is the file store and knows
nothing of llama.cpp: it keeps bytes under a :class:`PrefixKey`.

One file per entry, ``<sha256 of the key>.kv``, in a folder of its own (0700)::

    MAGIC                     8 bytes
    header length             4 bytes, big-endian
    header                    UTF-8 JSON: format, the key's fields (tokens included),
                              state size and SHA-256
    state                     the raw bytes llama.cpp gave

No pickle: the header is JSON and checked field by field against the key asked for,
the state's size and digest are checked before llama.cpp ever sees it. A file that
fails a check (torn, truncated, from another build, tampered with) is deleted and
reported as a miss; the caller prefills as if there were no cache and stores a new
one. Files are written to a temporary name (0600) and renamed into place, so two
processes storing the same entry, or one reading while another writes, never see a
half-written file. The folder is kept under ``max_bytes``: least recently used
entries go first (a hit refreshes its file's mtime).

A key that has no entry of its own may still share most of its tokens with one (the
prompts of two workspaces differ only in their last part): :meth:`PrefixStateCache.
longest` finds the entry of the same model, build and context whose tokens share the
longest start with the key's, reading headers only, and the caller loads it by its own
key, so every check above applies to it unchanged. It is llama-cpp-python's
``LlamaDiskCache`` lookup (the longest token prefix among the saved keys) without its
pickles.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import stat
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

MAGIC = b"QWDKV\x00\x01\n"
FORMAT = 1
SUFFIX = ".kv"
TEMP_PREFIX = ".tmp-"
#: The folder's default bound: about seven prefixes of the default model.
DEFAULT_MAX_BYTES = 256 * 1024 * 1024
#: A header longer than this is not ours (the token list of a 64k-token prefix fits).
MAX_HEADER_BYTES = 1024 * 1024
#: Temporary files older than this were left by a process that died mid-write.
STALE_TEMP_SECONDS = 600.0
#: Entries whose headers a longest-prefix lookup reads, the most recently used first.
MAX_SCAN = 32

_HEADER_LENGTH = 4


@dataclass(frozen=True)
class PrefixKey:
    """Everything a saved state depends on.

    Args:
        model: the model file's identity (path, size, mtime).
        runtime: the llama-cpp-python and llama.cpp build.
        context: the context parameters that shape the state (``n_ctx``, batch, types).
        tokens: the prefix itself.
    """

    model: str
    runtime: str
    context: str
    tokens: tuple[int, ...]

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self._fields(), sort_keys=True).encode()).hexdigest()

    def same_origin(self, other: PrefixKey) -> bool:
        """Whether ``other``'s state was computed by the same model, build and context."""
        return (self.model, self.runtime, self.context) == (
            other.model,
            other.runtime,
            other.context,
        )

    def _fields(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "runtime": self.runtime,
            "context": self.context,
            "tokens": list(self.tokens),
        }


class PrefixStateCache:
    """Prefix states in ``directory``, at most ``max_bytes`` in all.

    Never raises on a file system problem: a cache that cannot be read or written is a
    miss, logged, and the answer goes on without it.

    Args:
        directory: the folder (created 0700); typically ``QWEN_DEV_HOME/cache/llama-state``.
        max_bytes: the bound on the folder's entries; least recently used go first.
    """

    def __init__(self, directory: Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.directory = directory
        self.max_bytes = max_bytes

    def path_of(self, key: PrefixKey) -> Path:
        return self.directory / f"{key.digest()}{SUFFIX}"

    # --- reading ------------------------------------------------------------------

    def load(self, key: PrefixKey) -> memoryview | None:
        """The state saved under ``key``, checked; None when missing or unusable (an
        unusable file is deleted). A writable view, so llama.cpp can take it uncopied."""
        path = self.path_of(key)
        try:
            data = _read_own_file(path, limit=self.max_bytes + MAX_HEADER_BYTES)
        except FileNotFoundError:
            return None
        except (OSError, _Invalid) as exc:
            self._drop(path, f"unreadable: {exc}")
            return None
        try:
            offset = _check(data, key)
        except _Invalid as exc:
            self._drop(path, str(exc))
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # least recently used goes first
        return memoryview(data)[offset:]

    def longest(self, key: PrefixKey, *, minimum: int = 1) -> tuple[PrefixKey, int] | None:
        """The saved entry that shares the longest start with ``key``'s tokens, and how
        many tokens it shares (at least ``minimum``); None if none does.

        Only headers are read, of the :data:`MAX_SCAN` most recently used entries; an
        entry is a candidate only if its header is well formed, of the same origin
        (model, build, context) as ``key``, and the file is named by the digest of the
        key it declares. Nothing is trusted yet: the caller loads the entry with
        :meth:`load` under the key returned, which checks it whole (header, size,
        digest). Files that fail are left to :meth:`load` and :meth:`trim`."""
        try:
            listing = list(os.scandir(self.directory))
        except OSError:
            return None
        named: list[tuple[float, str]] = []
        for item in listing:
            if not item.name.endswith(SUFFIX) or item.name.startswith(TEMP_PREFIX):
                continue
            try:
                info = item.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISREG(info.st_mode):
                named.append((info.st_mtime, item.path))
        best: tuple[PrefixKey, int] | None = None
        for _, name in sorted(named, reverse=True)[:MAX_SCAN]:
            path = Path(name)
            try:
                candidate = _declared_key(_read_own_header(path))
            except (OSError, _Invalid):
                continue
            if not candidate.same_origin(key) or path.name != self.path_of(candidate).name:
                continue
            shared = common_length(candidate.tokens, key.tokens)
            if shared >= minimum and (best is None or shared > best[1]):
                best = (candidate, shared)
        return best

    def discard(self, key: PrefixKey, reason: str) -> None:
        """Remove an entry that passed the checks but that llama.cpp refused."""
        self._drop(self.path_of(key), reason)

    # --- writing ------------------------------------------------------------------

    def store(self, key: PrefixKey, state: bytes | bytearray | memoryview) -> Path | None:
        """Save ``state`` under ``key`` (atomically), then trim the folder to its bound.
        The path written, or None when it could not be (or would not fit)."""
        view = memoryview(state).cast("B")
        header = json.dumps(
            {
                "format": FORMAT,
                **key._fields(),
                "state_bytes": view.nbytes,
                "state_sha256": hashlib.sha256(view).hexdigest(),
            },
            separators=(",", ":"),
        ).encode()
        size = len(MAGIC) + _HEADER_LENGTH + len(header) + view.nbytes
        if size > self.max_bytes or len(header) > MAX_HEADER_BYTES:
            log.info("prefix state of %d bytes exceeds the cache's bound; not saved", size)
            return None
        path = self.path_of(key)
        try:
            self._ensure_directory()
            fd, temp = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=SUFFIX, dir=self.directory)
        except OSError as exc:
            log.info("cannot write the prefix cache in %s: %s", self.directory, exc)
            return None
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(MAGIC)
                out.write(len(header).to_bytes(_HEADER_LENGTH, "big"))
                out.write(header)
                out.write(view)
            os.replace(temp, path)
        except OSError as exc:
            log.info("cannot write the prefix cache entry %s: %s", path, exc)
            _unlink(Path(temp))
            return None
        self.trim(keep=path)
        return path

    def trim(self, keep: Path | None = None) -> None:
        """Delete least recently used entries until the folder fits ``max_bytes``, and
        temporary files left by dead writers."""
        entries: list[tuple[float, int, Path]] = []
        now = time.time()
        try:
            listing = list(os.scandir(self.directory))
        except OSError:
            return
        for item in listing:
            try:
                info = item.stat(follow_symlinks=False)
            except OSError:
                continue
            if item.name.startswith(TEMP_PREFIX):
                if now - info.st_mtime > STALE_TEMP_SECONDS:
                    _unlink(Path(item.path))
                continue
            if item.name.endswith(SUFFIX):
                entries.append((info.st_mtime, info.st_size, Path(item.path)))
        total = sum(size for _, size, _ in entries)
        for _, size, path in sorted(entries, key=lambda e: e[0]):
            if total <= self.max_bytes:
                break
            if path == keep:
                continue
            log.debug("prefix cache: evicting %s", path.name)
            _unlink(path)
            total -= size

    # --- the folder ---------------------------------------------------------------

    def _ensure_directory(self) -> None:
        """Create the folder 0700 (and its missing parents); tighten it if others may
        write to it; refuse one that belongs to someone else."""
        missing = []
        folder = self.directory
        while not folder.exists():
            missing.append(folder)
            folder = folder.parent
        for path in reversed(missing):
            with contextlib.suppress(FileExistsError):
                path.mkdir(mode=0o700)
        info = self.directory.stat()
        if not stat.S_ISDIR(info.st_mode):
            raise NotADirectoryError(f"{self.directory} is not a folder")
        if info.st_uid != os.getuid():
            raise PermissionError(f"{self.directory} belongs to another user")
        if stat.S_IMODE(info.st_mode) != 0o700:
            self.directory.chmod(0o700)

    def _drop(self, path: Path, reason: str) -> None:
        log.info("prefix cache entry %s dropped: %s", path.name, reason)
        _unlink(path)


class _Invalid(Exception):
    """A cache file that is not a valid entry for the key asked for."""


def _open_own(path: Path) -> tuple[int, os.stat_result]:
    """``path`` opened for reading if it is a regular file of ours, not a link (the
    caller closes the descriptor); :class:`_Invalid` otherwise."""
    # Non-blocking: a FIFO put in a cache file's place must not hang the answer.
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _Invalid("not a regular file")
        if info.st_uid != os.getuid():
            raise _Invalid("owned by another user")
    except BaseException:
        os.close(fd)
        raise
    return fd, info


def _read_own_file(path: Path, *, limit: int) -> bytearray:
    """The bytes of ``path``: a regular file of ours, not a link, at most ``limit``."""
    fd, info = _open_own(path)
    try:
        if info.st_size > limit:
            raise _Invalid(f"{info.st_size} bytes, larger than the cache's bound")
        data = bytearray(info.st_size)
        view = memoryview(data)
        done = 0
        while done < len(data):
            got = os.readv(fd, [view[done:]])
            if got == 0:
                raise _Invalid("shorter than its size")
            done += got
        return data
    finally:
        os.close(fd)


def _read_own_header(path: Path) -> bytes:
    """The header of the entry ``path`` (at most :data:`MAX_HEADER_BYTES`), opened as
    :func:`_read_own_file` opens it: a regular file of ours, not a link."""
    fd, _ = _open_own(path)
    try:
        start = _read_exactly(fd, len(MAGIC) + _HEADER_LENGTH)
        if start[: len(MAGIC)] != MAGIC:
            raise _Invalid("not a prefix state file")
        length = int.from_bytes(start[len(MAGIC) :], "big")
        if length > MAX_HEADER_BYTES:
            raise _Invalid("bad header length")
        return _read_exactly(fd, length)
    finally:
        os.close(fd)


def _read_exactly(fd: int, size: int) -> bytes:
    chunks: list[bytes] = []
    left = size
    while left > 0:
        chunk = os.read(fd, left)
        if not chunk:
            raise _Invalid("shorter than its header says")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _declared_key(raw: bytes) -> PrefixKey:
    """The key a header declares, if it is well formed."""
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # nesting: a bomb
        raise _Invalid(f"bad header: {type(exc).__name__}") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise _Invalid("unknown format")
    model, runtime, context = (header.get(name) for name in ("model", "runtime", "context"))
    tokens = header.get("tokens")
    if not (isinstance(model, str) and isinstance(runtime, str) and isinstance(context, str)):
        raise _Invalid("bad key")
    # `type(...) is int`: a JSON true is not a token.
    if not isinstance(tokens, list) or not all(type(token) is int for token in tokens):
        raise _Invalid("bad tokens")
    return PrefixKey(model=model, runtime=runtime, context=context, tokens=tuple(tokens))


def common_length(a: Sequence[int], b: Sequence[int]) -> int:
    """How many tokens ``a`` and ``b`` share from their start."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _check(data: bytearray, key: PrefixKey) -> int:
    """Where the state starts in ``data``, once the header matches ``key`` and the state
    its size and digest."""
    start = len(MAGIC) + _HEADER_LENGTH
    if len(data) < start or data[: len(MAGIC)] != MAGIC:
        raise _Invalid("not a prefix state file")
    length = int.from_bytes(data[len(MAGIC) : start], "big")
    if length > MAX_HEADER_BYTES or start + length > len(data):
        raise _Invalid("bad header length")
    try:
        header = json.loads(bytes(data[start : start + length]))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # nesting: a bomb
        raise _Invalid(f"bad header: {type(exc).__name__}") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise _Invalid("unknown format")
    for name, expected in key._fields().items():
        if header.get(name) != expected:
            raise _Invalid(f"{name} differs (stale entry)")
    offset = start + length
    size = len(data) - offset
    if header.get("state_bytes") != size:
        raise _Invalid(f"state is {size} bytes, header says {header.get('state_bytes')}")
    digest = hashlib.sha256(memoryview(data)[offset:]).hexdigest()
    if header.get("state_sha256") != digest:
        raise _Invalid("state digest mismatch (corrupt)")
    return offset


def _unlink(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


def token_digest(tokens: Sequence[int]) -> str:
    """A short name for a token sequence, for logs."""
    return hashlib.sha256(json.dumps(list(tokens)).encode()).hexdigest()[:12]
