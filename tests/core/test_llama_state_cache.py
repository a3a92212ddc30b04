"""The prefix state files: what a later process finds, and what it refuses.

No model here: the store keeps bytes under a key; the real model's use of it is
tested in ``tests/test_offline_cache.py``."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from qwen_dev_cli.core.providers import llama_state_cache
from qwen_dev_cli.core.providers.llama_state_cache import (
    MAGIC,
    STALE_TEMP_SECONDS,
    PrefixKey,
    PrefixStateCache,
)

STATE = bytes(range(256)) * 400  # 100 KiB of "KV cells"


def key(tokens: tuple[int, ...] = (1, 2, 3), **changes: str) -> PrefixKey:
    fields = {"model": "/m.gguf|98362432|1", "runtime": "llama.cpp test", "context": "n_ctx=8192"}
    fields.update(changes)
    return PrefixKey(tokens=tokens, **fields)


@pytest.fixture
def cache(tmp_path: Path) -> PrefixStateCache:
    return PrefixStateCache(tmp_path / "home" / "cache" / "llama-state")


def test_a_stored_state_comes_back_in_a_private_folder(cache: PrefixStateCache) -> None:
    path = cache.store(key(), STATE)
    assert path is not None
    assert path.parent == cache.directory
    loaded = cache.load(key())
    assert loaded is not None
    assert bytes(loaded) == STATE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(cache.directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(cache.directory.parent.stat().st_mode) == 0o700  # cache/ too


def test_the_file_is_a_json_header_and_raw_bytes_not_a_pickle(cache: PrefixStateCache) -> None:
    path = cache.store(key(), STATE)
    assert path is not None
    data = path.read_bytes()
    assert data.startswith(MAGIC)
    length = int.from_bytes(data[len(MAGIC) : len(MAGIC) + 4], "big")
    header = json.loads(data[len(MAGIC) + 4 : len(MAGIC) + 4 + length])
    assert header["tokens"] == [1, 2, 3]
    assert header["state_bytes"] == len(STATE)
    assert data.endswith(STATE)


@pytest.mark.parametrize(
    "other",
    [
        key(tokens=(1, 2, 4)),
        key(model="/m.gguf|98362432|2"),  # the model file was replaced
        key(runtime="llama.cpp rebuilt"),
        key(context="n_ctx=4096"),
    ],
)
def test_a_different_key_is_a_miss(cache: PrefixStateCache, other: PrefixKey) -> None:
    cache.store(key(), STATE)
    assert cache.load(other) is None
    assert cache.load(key()) is not None


def test_an_entry_whose_header_disagrees_with_its_key_is_dropped(cache: PrefixStateCache) -> None:
    # A file under the right name but written for other tokens (a copied file, a
    # hash collision): the header is checked field by field, not trusted by name.
    path = cache.store(key(), STATE)
    other = cache.store(key(tokens=(9, 9, 9)), STATE)
    assert path is not None
    assert other is not None
    os.replace(other, path)
    assert cache.load(key()) is None
    assert not path.exists()


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[:-1],  # truncated
        lambda data: data[:-1000] + bytes(1000),  # torn write: zeros at the end
        lambda data: data[:-500] + bytes([data[-500] ^ 1]) + data[-499:],  # one bit flipped
        lambda data: b"not a cache file" + data[16:],  # bad magic
        lambda data: data[: len(MAGIC)] + (2**31).to_bytes(4, "big") + data[len(MAGIC) + 4 :],
        lambda data: data[: len(MAGIC) + 4] + b"(" + data[len(MAGIC) + 5 :],  # header not JSON
        lambda data: b"",
    ],
    ids=["truncated", "torn", "bit-flip", "magic", "header-length", "header-json", "empty"],
)
def test_a_damaged_entry_is_a_miss_and_is_deleted(
    cache: PrefixStateCache, damage: Callable[[bytes], bytes]
) -> None:
    path = cache.store(key(), STATE)
    assert path is not None
    path.write_bytes(damage(path.read_bytes()))
    assert cache.load(key()) is None
    assert not path.exists()
    # ...and the next store replaces it with a good one.
    cache.store(key(), STATE)
    loaded = cache.load(key())
    assert loaded is not None
    assert bytes(loaded) == STATE


def test_a_symlink_in_place_of_an_entry_is_not_followed(
    cache: PrefixStateCache, tmp_path: Path
) -> None:
    path = cache.store(key(), STATE)
    assert path is not None
    elsewhere = tmp_path / "elsewhere.kv"
    os.replace(path, elsewhere)
    path.symlink_to(elsewhere)
    assert cache.load(key()) is None
    assert not path.is_symlink()
    assert elsewhere.exists()  # only the link went


def test_a_fifo_in_place_of_an_entry_is_a_miss_not_a_hang(cache: PrefixStateCache) -> None:
    # Issue 22, finding 12: opening it waited for a writer that never came.
    path = cache.store(key(), STATE)
    assert path is not None
    path.unlink()
    os.mkfifo(path)
    assert cache.load(key()) is None
    assert not path.exists()


def test_a_header_nested_deep_is_dropped_not_a_traceback(cache: PrefixStateCache) -> None:
    # Issue 22, finding 12: json.loads' RecursionError escaped, on every run.
    path = cache.store(key(), STATE)
    assert path is not None
    bomb = b"[" * 500_000 + b"]" * 500_000
    path.write_bytes(MAGIC + len(bomb).to_bytes(4, "big") + bomb)
    assert cache.load(key()) is None
    assert not path.exists()


def test_a_folder_others_may_write_to_is_made_private(cache: PrefixStateCache) -> None:
    cache.directory.mkdir(parents=True)
    cache.directory.chmod(0o777)
    assert cache.store(key(), STATE) is not None
    assert stat.S_IMODE(cache.directory.stat().st_mode) == 0o700


def test_an_unwritable_folder_is_a_quiet_miss(cache: PrefixStateCache, tmp_path: Path) -> None:
    cache.directory.parent.mkdir(parents=True)
    cache.directory.write_text("a file where the folder should be")
    assert cache.store(key(), STATE) is None
    assert cache.load(key()) is None


def test_the_folder_stays_under_its_bound_oldest_first(tmp_path: Path) -> None:
    cache = PrefixStateCache(tmp_path / "states", max_bytes=3 * len(STATE) + 3000)
    paths = []
    for n in range(3):
        path = cache.store(key(tokens=(n,)), STATE)
        assert path is not None
        os.utime(path, (time.time() - 100 + n, time.time() - 100 + n))
        paths.append(path)
    assert cache.load(key(tokens=(0,))) is not None  # used: now the most recent
    cache.store(key(tokens=(3,)), STATE)
    remaining = {p.name for p in cache.directory.iterdir()}
    assert paths[1].name not in remaining  # the least recently used went
    assert {paths[0].name, paths[2].name} <= remaining
    total = sum(p.stat().st_size for p in cache.directory.iterdir())
    assert total <= cache.max_bytes


def test_a_state_larger_than_the_bound_is_not_stored(tmp_path: Path) -> None:
    cache = PrefixStateCache(tmp_path / "states", max_bytes=len(STATE) // 2)
    assert cache.store(key(), STATE) is None
    assert not cache.directory.exists() or not any(cache.directory.iterdir())


def test_temporary_files_of_a_dead_writer_are_cleaned_up(cache: PrefixStateCache) -> None:
    cache.store(key(), STATE)
    stale = cache.directory / ".tmp-dead.kv"
    fresh = cache.directory / ".tmp-writing.kv"
    stale.write_bytes(b"half")
    fresh.write_bytes(b"half")
    old = time.time() - STALE_TEMP_SECONDS - 60
    os.utime(stale, (old, old))
    cache.store(key(tokens=(7,)), STATE)
    assert not stale.exists()
    assert fresh.exists()  # may be another process, still writing


def test_processes_storing_the_same_entry_at_once_leave_a_valid_one(tmp_path: Path) -> None:
    directory = tmp_path / "states"
    script = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from qwen_dev_cli.core.providers.llama_state_cache import PrefixKey, PrefixStateCache
        cache = PrefixStateCache(Path({str(directory)!r}))
        key = PrefixKey(model="m", runtime="r", context="c", tokens=(1, 2, 3))
        state = bytes([int(sys.argv[1])]) * 3_000_000
        for _ in range(5):
            cache.store(key, state)
            got = cache.load(key)
            assert got is None or len(set(bytes(got))) == 1, "a mixed or torn state"
        """
    )
    writers = [
        subprocess.Popen([sys.executable, "-c", script, str(n)], cwd=Path.cwd()) for n in range(4)
    ]
    assert [w.wait(timeout=60) for w in writers] == [0, 0, 0, 0]
    cache = PrefixStateCache(directory)
    loaded = cache.load(PrefixKey(model="m", runtime="r", context="c", tokens=(1, 2, 3)))
    assert loaded is not None
    assert len(loaded) == 3_000_000
    assert len(set(bytes(loaded))) == 1
    assert [p.name for p in directory.iterdir() if p.name.startswith(".tmp-")] == []


# --- the longest saved prefix (a new workspace's prompt shares all but its end) ------

COMMON = tuple(range(100, 400))  # identity, rules and tool schemas
HERE = (*COMMON, 7, 7, 7)  # ...then this workspace's part
THERE = (*COMMON, 8, 8)


def test_a_key_without_an_entry_finds_the_one_sharing_its_longest_start(
    cache: PrefixStateCache,
) -> None:
    cache.store(key(tokens=(*COMMON[:50], 5, 5)), b"short")
    cache.store(key(tokens=THERE), STATE)
    found = cache.longest(key(tokens=HERE))
    assert found is not None
    other, shared = found
    assert other == key(tokens=THERE)
    assert shared == len(COMMON)
    loaded = cache.load(other)  # checked whole, under the key its file is named by
    assert loaded is not None
    assert bytes(loaded) == STATE


def test_too_short_a_shared_start_is_no_candidate(cache: PrefixStateCache) -> None:
    cache.store(key(tokens=THERE), STATE)
    assert cache.longest(key(tokens=HERE), minimum=len(COMMON) + 1) is None
    assert cache.longest(key(tokens=(1, 2, 3))) is None  # nothing shared
    assert PrefixStateCache(cache.directory / "missing").longest(key(tokens=HERE)) is None


@pytest.mark.parametrize(
    "other",
    [
        key(tokens=THERE, model="/m.gguf|98362432|2"),  # the model file was replaced
        key(tokens=THERE, runtime="llama.cpp rebuilt"),
        key(tokens=THERE, context="n_ctx=4096"),
    ],
)
def test_an_entry_of_another_model_build_or_context_is_no_candidate(
    cache: PrefixStateCache, other: PrefixKey
) -> None:
    cache.store(other, STATE)
    assert cache.longest(key(tokens=HERE)) is None


def test_an_entry_under_another_name_than_its_key_is_no_candidate(
    cache: PrefixStateCache,
) -> None:
    # Its header declares tokens its name does not stand for (copied or planted):
    # load() under the declared key would open another file, so it is not offered.
    path = cache.store(key(tokens=THERE), STATE)
    assert path is not None
    os.replace(path, cache.directory / f"{'0' * 64}.kv")
    assert cache.longest(key(tokens=HERE)) is None


def test_an_offered_entry_whose_state_was_tampered_with_fails_its_load(
    cache: PrefixStateCache,
) -> None:
    path = cache.store(key(tokens=THERE), STATE)
    assert path is not None
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF  # the header still matches: only the digest can tell
    path.write_bytes(bytes(data))
    found = cache.longest(key(tokens=HERE))
    assert found is not None
    assert cache.load(found[0]) is None
    assert not path.exists()


@pytest.mark.parametrize(
    "header",
    [
        b"(",  # not JSON
        b"[" * 100_000 + b"]" * 100_000,  # nested deep
        json.dumps({"format": 99}).encode(),
        json.dumps(
            {"format": 1, "model": 1, "runtime": "r", "context": "c", "tokens": []}
        ).encode(),
        json.dumps(
            {"format": 1, **{f: key()._fields()[f] for f in ("model", "runtime", "context")}}
            | {"tokens": [100, True, "x"]}
        ).encode(),
    ],
    ids=["not-json", "nested", "format", "model-type", "token-types"],
)
def test_a_malformed_header_is_skipped_by_the_lookup(
    cache: PrefixStateCache, header: bytes
) -> None:
    good = cache.store(key(tokens=THERE), STATE)
    assert good is not None
    bad = cache.directory / f"{'1' * 64}.kv"
    bad.write_bytes(MAGIC + len(header).to_bytes(4, "big") + header + STATE)
    found = cache.longest(key(tokens=HERE))
    assert found is not None
    assert found[0] == key(tokens=THERE)
    assert bad.exists()  # left to trim(): the lookup deletes nothing


def test_links_fifos_and_torn_files_do_not_stop_the_lookup(
    cache: PrefixStateCache, tmp_path: Path
) -> None:
    good = cache.store(key(tokens=THERE), STATE)
    assert good is not None
    elsewhere = cache.store(key(tokens=(*COMMON, 7)), STATE)  # would be the best...
    assert elsewhere is not None
    outside = tmp_path / "outside.kv"
    os.replace(elsewhere, outside)
    elsewhere.symlink_to(outside)  # ...but it is a link
    os.mkfifo(cache.directory / f"{'2' * 64}.kv")
    (cache.directory / f"{'3' * 64}.kv").write_bytes(MAGIC + (500).to_bytes(4, "big") + b"{")
    found = cache.longest(key(tokens=HERE))
    assert found is not None
    assert found[0] == key(tokens=THERE)


def test_the_lookup_reads_only_the_most_recently_used_entries(
    cache: PrefixStateCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(llama_state_cache, "MAX_SCAN", 2)
    best = cache.store(key(tokens=THERE), STATE)
    assert best is not None
    os.utime(best, (time.time() - 100, time.time() - 100))
    for n in range(2):
        cache.store(key(tokens=(*COMMON[:10], n)), b"newer")
    found = cache.longest(key(tokens=HERE))
    assert found is not None
    assert found[1] == 10  # the best entry was the least recently used: not read
    assert cache.load(key(tokens=THERE)) is not None  # used: now among the newest
    found = cache.longest(key(tokens=HERE))
    assert found is not None
    assert found[0] == key(tokens=THERE)
