"""A resume: answered ids skipped, failed ones retried, another input's output refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qwen_dev_cli.batch.input import InputError, InputFile, Shard, digest_of
from qwen_dev_cli.batch.output import Answered, Checkpoint, OutputError
from qwen_dev_cli.batch.plan import make_plan


def source(tmp_path: Path, count: int = 6) -> InputFile:
    path = tmp_path / "in.jsonl"
    lines = [json.dumps({"id": f"p{i}", "prompt": f"question {i}"}) for i in range(count)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return InputFile(path, "in.jsonl")


def hash_of(i: int) -> str:
    return digest_of([{"role": "user", "content": f"question {i}"}])


def test_answered_ids_are_skipped_and_failed_ones_retried(tmp_path: Path) -> None:
    checkpoint = Checkpoint(
        {"p0": Answered(True, hash_of(0)), "p1": Answered(False, hash_of(1))}, 10, 10
    )
    plan = make_plan(source(tmp_path), checkpoint, None, output_name="out.jsonl")
    assert (plan.total, plan.skipped, plan.retrying, plan.todo) == (6, 1, 1, 5)
    assert [p.id for p in plan.prompts()] == ["p1", "p2", "p3", "p4", "p5"]


def test_an_output_with_ids_the_input_lacks_is_refused(tmp_path: Path) -> None:
    checkpoint = Checkpoint({"p0": Answered(True, hash_of(0)), "zz": Answered(True, "x")}, 1, 1)
    with pytest.raises(OutputError, match=r'1 id not in in.jsonl \(e.g. "zz"\)'):
        make_plan(source(tmp_path), checkpoint, None, output_name="out.jsonl")


def test_an_output_answering_other_questions_is_refused(tmp_path: Path) -> None:
    checkpoint = Checkpoint({"p3": Answered(True, hash_of(4))}, 1, 1)
    with pytest.raises(OutputError, match=r'different prompt .* "p3" \(in.jsonl:4\)'):
        make_plan(source(tmp_path), checkpoint, None, output_name="out.jsonl")


def test_each_shard_plans_only_its_ids_and_refuses_another_shards_output(
    tmp_path: Path,
) -> None:
    src = source(tmp_path, 40)
    plans = [make_plan(src, Checkpoint(), Shard(k, 3), output_name="o") for k in (1, 2, 3)]
    ids = [[p.id for p in plan.prompts()] for plan in plans]
    assert sorted(x for shard in ids for x in shard) == sorted(f"p{i}" for i in range(40))
    assert [plan.total for plan in plans] == [len(x) for x in ids]
    first = ids[0][0]
    other_shard = Checkpoint({first: Answered(True, hash_of(int(first[1:])))}, 1, 1)
    with pytest.raises(OutputError, match=r"not in shard 2/3 of in\.jsonl"):
        make_plan(src, other_shard, Shard(2, 3), output_name="o")


def test_an_input_changed_after_planning_is_not_sent(tmp_path: Path) -> None:
    src = source(tmp_path)
    plan = make_plan(src, Checkpoint(), None, output_name="o")
    src.path.write_text('{"id": "p0", "prompt": "something else"}\n', encoding="utf-8")
    with pytest.raises(InputError, match="changed since it was validated"):
        plan.prompts()
