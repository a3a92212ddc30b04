"""Threat: a hostile server's usage counts. JSON takes integers of thousands of digits;
one of 400 (as a prompt's or an answer's tokens) raised OverflowError where the
context's scale divides by it (``ask`` and the REPL) and where a batch paces itself on
what a request costs: a traceback, and every answer of the batch lost. A count no float
holds is read as no count."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from faultserver import DEFAULT_TEXT, FaultServer, Outcome
from tests.test_cli_ask import qwen_dev, write_config

pytestmark = pytest.mark.slow  # real processes

HUGE = 10**400


async def test_ask_survives_a_usage_count_of_400_digits(tmp_path: Path) -> None:
    async with FaultServer(
        default=Outcome.ok(usage={"prompt_tokens": HUGE, "total_tokens": HUGE})
    ) as srv:
        config = write_config(tmp_path / "c.toml", srv, provider_extra="tpm = 100000")
        run = await qwen_dev("ask", "--json", "--config", str(config), "hi")
    assert run.code == 0, run.err
    assert "Traceback" not in run.err
    answer = run.json()
    assert answer["text"] == DEFAULT_TEXT
    assert answer["usage"]["prompt_tokens"] == 0  # not believed: no count


async def test_a_batch_survives_a_usage_count_of_400_digits(tmp_path: Path) -> None:
    async with FaultServer(default=Outcome.ok(usage={"total_tokens": HUGE})) as srv:
        config = write_config(tmp_path / "c.toml", srv, provider_extra="tpm = 100000")
        prompts = tmp_path / "in.jsonl"
        lines = (json.dumps({"id": f"p{i}", "prompt": "q"}) + "\n" for i in range(3))
        prompts.write_text("".join(lines), encoding="utf-8")
        output = tmp_path / "out.jsonl"
        run = await qwen_dev("batch", str(prompts), "-o", str(output), "--config", str(config))
    assert run.code == 0, run.err
    assert "Traceback" not in run.err
    records = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert sorted(record["id"] for record in records) == ["p0", "p1", "p2"]
    assert all(record["ok"] and record["text"] == DEFAULT_TEXT for record in records)
