"""Shards: a stable hash of the id splits one input exactly, on any machine."""

from __future__ import annotations

import hashlib

import pytest

from qwen_dev_cli.batch.input import InputError, Shard, shard_of


@pytest.mark.parametrize("count", [1, 2, 3, 7, 16])
def test_every_id_falls_in_exactly_one_shard(count: int) -> None:
    ids = [f"prompt-{i}" for i in range(2000)]
    shards = [Shard(k, count) for k in range(1, count + 1)]
    for prompt_id in ids:
        assert sum(prompt_id in shard for shard in shards) == 1
    sizes = [sum(prompt_id in shard for prompt_id in ids) for shard in shards]
    assert min(sizes) > 0.7 * len(ids) / count  # roughly even


def test_the_hash_is_sha256_of_the_id_not_pythons_hash() -> None:
    # Pinned: a machine with another Python (or PYTHONHASHSEED) must agree.
    assert [shard_of(x, 4) for x in ["a", "b", "c", "prompt-1", "日本"]] == [3, 3, 3, 2, 4]
    digest = hashlib.sha256(b"prompt-1").digest()
    assert shard_of("prompt-1", 1000) == int.from_bytes(digest[:8], "big") % 1000 + 1


@pytest.mark.parametrize("text", ["1/1", "2/4", " 4/4 "])
def test_valid_shards_parse(text: str) -> None:
    shard = Shard.parse(text)
    assert f" {shard} " in f" {text.strip()} "


@pytest.mark.parametrize("text", ["0/4", "5/4", "1/0", "2", "a/b", "1/2/3", "-1/2", ""])
def test_invalid_shards_are_refused(text: str) -> None:
    with pytest.raises(InputError, match="--shard takes K/N"):
        Shard.parse(text)
