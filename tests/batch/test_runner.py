"""The runner with a real client over real HTTP (the fault server, in process): results
written whole, "not now" waited out, hopeless batches stopped, Ctrl-C clean.

Tests that interrupt a batch wait for a state (requests arrived at the server and held
there unanswered, a prompt queueing for budget), never for a length of time."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from faultserver import DEFAULT_TEXT, FaultServer, Outcome
from qwen_dev_cli.batch.input import Prompt, digest_of
from qwen_dev_cli.batch.output import CheckpointFile
from qwen_dev_cli.batch.pacing import Pacing
from qwen_dev_cli.batch.runner import BatchRunner, RequestOptions, RunEnd
from qwen_dev_cli.batch.tally import Tally
from qwen_dev_cli.core import BreakerPolicy, LLMClient, ProviderSettings, RetryPolicy, Timeouts
from qwen_dev_cli.core.events import ClientEvent, RateLimitWait

#: Seconds a test waits for a state before it fails (never reached when all is well).
PATIENCE = 10.0


@pytest.fixture
async def server() -> AsyncIterator[FaultServer]:
    async with FaultServer() as srv:
        yield srv


def prompts(count: int) -> Iterator[Prompt]:
    for i in range(count):
        messages = [{"role": "user", "content": f"question {i}"}]
        yield Prompt(f"p{i}", messages, digest_of(messages), i + 1)


FAST_RETRY = RetryPolicy(base_delay=0.01, max_delay=0.02, max_retries=1)


class Batch:
    def __init__(
        self,
        srv: FaultServer,
        tmp_path: Path,
        rpm: int | None = None,
        tpm: int | None = None,
        **client: Any,
    ):
        options: dict[str, Any] = {"retry": FAST_RETRY}
        options.update(client)
        provider = ProviderSettings("lab", "fault-model", base_url=srv.base_url, rpm=rpm, tpm=tpm)
        self.client = LLMClient([provider], **options)
        self.out = tmp_path / "out.jsonl"
        self.checkpoint = CheckpointFile(self.out, input_path=None)
        self.checkpoint.begin(self.checkpoint.scan())
        self.notes: list[str] = []
        self.queueing = asyncio.Event()  # a prompt waits for the budget of its minute
        self.client.subscribe(self._on_event)

    def _on_event(self, event: ClientEvent) -> None:
        if isinstance(event, RateLimitWait):
            self.queueing.set()

    async def run(self, count: int, **options: Any) -> tuple[RunEnd, Tally]:
        tally = Tally(count, 0)
        settings: dict[str, Any] = {"concurrency": 2, "max_wait": 10.0, "grace": 5.0}
        settings.update(options)
        runner = BatchRunner(
            self.client,
            self.checkpoint,
            tally,
            request=settings.pop("request", RequestOptions()),
            notify=self.notes.append,
            **settings,
        )
        self.runner = runner
        try:
            end = await runner.run(prompts(count))
        finally:
            self.checkpoint.close()
            await self.client.aclose()
        return end, tally

    def results(self) -> dict[str, dict[str, Any]]:
        lines = self.out.read_text(encoding="utf-8").splitlines()
        return {record["id"]: record for record in map(json.loads, lines)}


async def test_every_prompt_is_answered_once_with_its_attempts(
    server: FaultServer, tmp_path: Path
) -> None:
    server.script(Outcome.status(503))
    batch = Batch(server, tmp_path)
    end, tally = await batch.run(6, request=RequestOptions(system="be brief", max_tokens=50))
    assert end == RunEnd(False, None, None)
    results = batch.results()
    assert sorted(results) == [f"p{i}" for i in range(6)]
    assert all(r["ok"] and r["text"] == DEFAULT_TEXT for r in results.values())
    assert sorted(r["attempts"] for r in results.values()) == [1, 1, 1, 1, 1, 2]
    assert (tally.ok, tally.failed, tally.in_flight) == (6, 0, 0)
    sent = [r.json for r in server.requests]
    assert all(body["max_tokens"] == 50 for body in sent)
    assert all(body["messages"][0] == {"role": "system", "content": "be brief"} for body in sent)
    assert not any("tools" in body for body in sent)  # no tools in a batch


async def test_a_rejected_prompt_fails_alone(server: FaultServer, tmp_path: Path) -> None:
    server.script(Outcome.status(400, message="bad prompt"))
    batch = Batch(server, tmp_path)
    end, tally = await batch.run(4, concurrency=1)
    assert end.stopped is None
    failed = batch.results()["p0"]
    assert failed["ok"] is False
    assert failed["error"]["type"] == "bad_request_error"
    assert "bad prompt" in failed["error"]["message"]
    assert (tally.ok, tally.failed) == (3, 1)


async def test_a_retry_after_beyond_the_clients_cap_is_waited_out(
    server: FaultServer, tmp_path: Path
) -> None:
    server.script(Outcome.rate_limited(retry_after=None, retry_after_ms="700"))
    batch = Batch(server, tmp_path, retry=replace(FAST_RETRY, max_retry_after=0.2))
    started = asyncio.get_running_loop().time()
    end, _ = await batch.run(3, concurrency=1)
    assert end.stopped is None
    assert asyncio.get_running_loop().time() - started >= 0.6
    assert all(r["ok"] for r in batch.results().values())
    assert [r.outcome for r in server.requests] == ["status", "ok", "ok", "ok"]


async def test_a_wait_beyond_max_wait_fails_the_prompt_and_stops_the_batch(
    server: FaultServer, tmp_path: Path
) -> None:
    server.script(Outcome.rate_limited(retry_after="30"))
    batch = Batch(server, tmp_path, retry=replace(FAST_RETRY, max_retry_after=1))
    end, tally = await batch.run(5, concurrency=1, max_wait=5.0)
    assert end.stopped is not None
    assert "more than --max-wait 5s" in end.stopped
    results = batch.results()
    assert list(results) == ["p0"]
    assert results["p0"]["error"]["type"] == "rate_limit_exhausted"
    assert results["p0"]["error"]["retry_after"] == 30
    assert tally.remaining == 4  # left for a resume
    assert len(server.requests) == 1


async def test_a_batch_stops_when_every_provider_refuses_the_key(
    server: FaultServer, tmp_path: Path
) -> None:
    server.configure(default=Outcome.status(401))
    batch = Batch(server, tmp_path)
    end, _ = await batch.run(50, concurrency=2)
    assert end.stopped is not None
    assert "refused the key or the model" in end.stopped
    assert len(batch.results()) <= 2  # those in flight, not fifty failures
    assert len(server.requests) <= 2


async def test_interrupt_lets_in_flight_prompts_finish_then_sends_nothing_more(
    server: FaultServer, tmp_path: Path
) -> None:
    server.hold()
    batch = Batch(server, tmp_path)
    task = asyncio.create_task(batch.run(20, concurrency=3))
    await asyncio.wait_for(server.received(3), PATIENCE)  # three in flight
    batch.runner.interrupt()
    server.release()
    end, tally = await task
    assert end.interrupted
    assert len(batch.results()) == 3  # finished within the grace period and written
    assert tally.remaining == 17
    assert "letting 3 prompts in flight finish" in batch.notes[0]


async def test_interrupt_drops_prompts_queueing_for_budget_at_once(
    server: FaultServer, tmp_path: Path
) -> None:
    server.hold()
    batch = Batch(server, tmp_path, rpm=2)
    started = asyncio.get_running_loop().time()
    # Exactly three in flight, not paced by the budget (which would hold the third
    # back in the batch): the way a prompt ends up queueing when other processes spend
    # the budget it was started for.
    task = asyncio.create_task(batch.run(10, concurrency=3, pacing=Pacing(3)))
    # Two sent, the third queues for the next minute's budget.
    await asyncio.wait_for(server.received(2), PATIENCE)
    await asyncio.wait_for(batch.queueing.wait(), PATIENCE)
    batch.runner.interrupt()
    server.release()
    end, tally = await asyncio.wait_for(task, 10)
    assert asyncio.get_running_loop().time() - started < 2  # no 5 s grace for it
    assert end.interrupted
    assert len(batch.results()) == 2
    assert (tally.done, tally.remaining) == (2, 8)
    assert "letting 2 prompts in flight finish" in batch.notes[0]
    assert len(server.requests) == 2


async def test_prompts_still_in_flight_after_the_grace_are_dropped_cleanly(
    server: FaultServer, tmp_path: Path
) -> None:
    server.hold()  # never released: no answer comes within the grace
    batch = Batch(server, tmp_path, timeouts=Timeouts(attempt=30))
    task = asyncio.create_task(batch.run(20, concurrency=3, grace=0.2))
    await asyncio.wait_for(server.received(3), PATIENCE)
    batch.runner.interrupt()
    end, tally = await asyncio.wait_for(task, 3)
    assert end.interrupted
    assert batch.out.read_bytes() == b""  # nothing half-written
    assert (tally.done, tally.in_flight, tally.remaining) == (0, 0, 20)


async def test_open_breakers_are_waited_for_not_failed_through(
    server: FaultServer, tmp_path: Path
) -> None:
    server.script(Outcome.status(500), Outcome.status(500))
    batch = Batch(
        server,
        tmp_path,
        retry=replace(FAST_RETRY, max_retries=0),
        breaker=BreakerPolicy(failure_threshold=2, recovery_timeout=0.5, half_open_max_calls=1),
    )
    end, tally = await batch.run(6, concurrency=1)
    results = batch.results()
    assert [results[f"p{i}"]["ok"] for i in range(6)] == [False, False, True, True, True, True]
    assert (tally.ok, tally.failed) == (4, 2)  # not six failures while the breaker was open
    assert end.stopped is None
