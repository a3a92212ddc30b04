"""`qwen-dev batch` end to end: real processes against the fault server on loopback."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pexpect
import pytest

from faultserver import DEFAULT_TEXT, FaultServer, FaultServerProcess, Outcome
from tests.test_cli_ask import Run, write_config
from tests.test_cli_ask import qwen_dev as run_qwen_dev

pytestmark = pytest.mark.slow

SUMMARY_KEYS = {"total", "ok", "failed", "skipped", "pending", "output", "elapsed_s", "metrics"}
RESULT_KEYS = {"id", "ok", "text", "provider", "model", "usage", "attempts", "latency_ms", "error"}


@pytest.fixture
async def server() -> AsyncIterator[FaultServer]:
    async with FaultServer() as srv:
        yield srv


def write_input(path: Path, count: int, *, start: int = 0, text: str = "question") -> Path:
    lines = [json.dumps({"id": f"p{i}", "prompt": f"{text} {i}"}) for i in range(start, count)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "qwen_dev_cli", "batch", *args]


async def qwen_dev(*args: str, stdin: bytes | None = None) -> Run:
    """``qwen-dev batch ARGS`` in a real process."""
    return await run_qwen_dev("batch", *args, stdin=stdin)


def results(path: Path) -> list[dict[str, Any]]:
    data = path.read_bytes()
    assert not data or data.endswith(b"\n"), "a torn last line"
    return [json.loads(line) for line in data.decode().splitlines()]


def last_by_id(path: Path) -> dict[str, dict[str, Any]]:
    return {record["id"]: record for record in results(path)}


def chats(srv: FaultServer) -> list[str]:
    return [r.outcome for r in srv.requests if r.path.endswith("/chat/completions")]


class Files:
    def __init__(self, tmp_path: Path, srv: FaultServer, extra: str = "") -> None:
        self.config = write_config(tmp_path / "c.toml", srv, extra)
        self.input = tmp_path / "in.jsonl"
        self.output = tmp_path / "out.jsonl"

    def args(self, *more: str) -> list[str]:
        return [str(self.input), "-o", str(self.output), "--config", str(self.config), *more]


@pytest.fixture
def files(tmp_path: Path, server: FaultServer) -> Files:
    return Files(tmp_path, server)


async def test_every_prompt_is_answered_and_summarised(server: FaultServer, files: Files) -> None:
    write_input(files.input, 20)
    run = await qwen_dev(*files.args("--json"))
    assert run.code == 0, run.err
    summary = run.json()
    assert set(summary) == SUMMARY_KEYS
    assert (summary["total"], summary["ok"], summary["failed"], summary["skipped"]) == (
        20,
        20,
        0,
        0,
    )
    assert summary["output"] == str(files.output)
    assert summary["metrics"]["total_requests"] == 20
    records = results(files.output)
    assert sorted(r["id"] for r in records) == sorted(f"p{i}" for i in range(20))
    assert all(set(r) >= RESULT_KEYS and r["ok"] and r["text"] == DEFAULT_TEXT for r in records)
    assert files.output.stat().st_mode & 0o777 == 0o600
    assert len(chats(server)) == 20
    assert "20 answered, 0 failed" in run.err


async def test_failed_prompts_exit_3_then_a_rerun_retries_only_them(
    server: FaultServer, files: Files
) -> None:
    write_input(files.input, 10)
    server.script(Outcome.status(400), Outcome.status(400))
    first = await qwen_dev(*files.args("--json"))
    assert first.code == 3, first.err
    assert (first.json()["ok"], first.json()["failed"]) == (8, 2)
    assert "2 failed" in first.err
    failed = sorted(r["id"] for r in results(files.output) if not r["ok"])
    assert len(failed) == 2

    server.reset()
    again = await qwen_dev(*files.args("--json"))
    assert again.code == 0, again.err
    summary = again.json()
    assert (summary["ok"], summary["failed"], summary["skipped"]) == (2, 0, 8)
    assert len(chats(server)) == 2  # only the failed ones were sent again
    sent = sorted(r.json["messages"][-1]["content"] for r in server.requests)
    assert sent == sorted(f"question {i[1:]}" for i in failed)
    assert len(results(files.output)) == 12  # the old failure lines stay...
    assert all(r["ok"] for r in last_by_id(files.output).values())  # ...the last line wins


async def test_a_torn_last_line_is_dropped_and_its_prompt_sent_again(
    server: FaultServer, files: Files
) -> None:
    write_input(files.input, 6)
    assert (await qwen_dev(*files.args())).code == 0
    lines = files.output.read_bytes().splitlines(keepends=True)
    files.output.write_bytes(b"".join(lines[:3]) + lines[3][:25])  # died mid-write
    server.reset()
    run = await qwen_dev(*files.args())
    assert run.code == 0, run.err
    assert "torn last line" in run.err
    assert len(chats(server)) == 3
    records = results(files.output)
    assert len(records) == 6
    assert Counter(r["id"] for r in records) == Counter(f"p{i}" for i in range(6))


async def test_a_bad_line_exits_2_naming_it_and_sends_nothing(
    server: FaultServer, files: Files
) -> None:
    write_input(files.input, 5)
    with files.input.open("a", encoding="utf-8") as handle:
        handle.write('{"id": "p9", "messages": [{"role": "user"}]}\n')
    run = await qwen_dev(*files.args("--json"))
    assert run.code == 2
    assert f"{files.input}:6:" in run.err
    assert '"content" must be a string' in run.err
    assert run.out == ""
    assert chats(server) == []
    assert not files.output.exists()


async def test_duplicate_ids_exit_2(server: FaultServer, files: Files) -> None:
    write_input(files.input, 3)
    with files.input.open("a", encoding="utf-8") as handle:
        handle.write('{"id": "p1", "prompt": "again"}\n')
    run = await qwen_dev(*files.args())
    assert run.code == 2
    assert 'duplicate id "p1" (first on line 2)' in run.err
    assert chats(server) == []


async def test_an_output_of_another_input_is_refused(server: FaultServer, files: Files) -> None:
    write_input(files.input, 4)
    assert (await qwen_dev(*files.args())).code == 0
    before = files.output.read_bytes()
    server.reset()
    write_input(files.input, 4, text="something else")  # same ids, other questions
    changed = await qwen_dev(*files.args())
    assert changed.code == 2
    assert "belongs to another input" in changed.err
    write_input(files.input, 9, start=5)  # other ids
    other = await qwen_dev(*files.args())
    assert other.code == 2
    assert "not in" in other.err
    assert chats(server) == []
    assert files.output.read_bytes() == before


async def test_output_and_input_must_differ(server: FaultServer, files: Files) -> None:
    write_input(files.input, 2)
    run = await qwen_dev(str(files.input), "-o", str(files.input), "--config", str(files.config))
    assert run.code == 2
    assert "is the INPUT file" in run.err
    assert len(files.input.read_text(encoding="utf-8").splitlines()) == 2


async def test_prompts_can_come_from_stdin(server: FaultServer, files: Files) -> None:
    data = "".join(json.dumps({"id": f"s{i}", "prompt": "hi"}) + "\n" for i in range(3))
    args = ["-", "-o", str(files.output), "--config", str(files.config)]
    run = await qwen_dev(*args, stdin=data.encode())
    assert run.code == 0, run.err
    assert sorted(last_by_id(files.output)) == ["s0", "s1", "s2"]


async def test_shards_partition_the_ids_exactly(server: FaultServer, tmp_path: Path) -> None:
    files = Files(tmp_path, server)
    write_input(files.input, 60)
    outputs = [tmp_path / f"out-{k}.jsonl" for k in (1, 2, 3)]
    runs = await asyncio.gather(
        *(
            qwen_dev(
                str(files.input), "-o", str(out), "--shard", f"{k}/3", "--config", str(files.config)
            )
            for k, out in zip((1, 2, 3), outputs, strict=True)
        )
    )
    assert [r.code for r in runs] == [0, 0, 0], [r.err for r in runs]
    ids = [set(last_by_id(out)) for out in outputs]
    assert all(ids)
    assert sum(len(x) for x in ids) == 60
    assert set().union(*ids) == {f"p{i}" for i in range(60)}
    assert len(chats(server)) == 60
    bad = await qwen_dev(*files.args("--shard", "4/3"))
    assert bad.code == 2
    assert "--shard takes K/N" in bad.err


async def test_a_long_retry_after_is_waited_out_not_failed(
    server: FaultServer, tmp_path: Path
) -> None:
    files = Files(tmp_path, server, extra="max_retry_after = 1")
    write_input(files.input, 4)
    server.script(Outcome.rate_limited(retry_after="2"))
    started = time.monotonic()
    run = await qwen_dev(*files.args("--concurrency", "2", "--json"))
    assert run.code == 0, run.err
    assert time.monotonic() - started >= 2
    assert run.json()["ok"] == 4
    assert all(r["ok"] for r in results(files.output))
    assert chats(server).count("ok") == 4


async def test_progress_on_a_pipe_is_plain_lines(server: FaultServer, files: Files) -> None:
    write_input(files.input, 12)
    server.configure(default=Outcome.ok(delay=0.15))
    run = await qwen_dev(*files.args("--concurrency", "2", "--report-every", "0.2"))
    assert run.code == 0, run.err
    progress = [line for line in run.err.splitlines() if " done: " in line]
    assert len(progress) >= 3
    assert all(line.startswith("qwen-dev batch: ") and "/12 (" in line for line in progress)
    assert "\x1b[" not in run.err  # no terminal codes into a log


async def test_sigint_stops_cleanly_and_says_how_to_resume(
    server: FaultServer, files: Files
) -> None:
    write_input(files.input, 200)
    server.configure(default=Outcome.ok(delay=0.1))
    proc = await asyncio.create_subprocess_exec(
        *command(*files.args("--concurrency", "4")),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    await wait_for_lines(files.output, 8)
    proc.send_signal(signal.SIGINT)
    _, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode == 130, err.decode()
    stderr = err.decode()
    assert "to resume:" in stderr
    assert f"qwen-dev batch {files.input} -o {files.output} --config {files.config}" in stderr
    done = results(files.output)  # every line whole
    assert 8 <= len(done) < 200
    server.reset()
    server.configure(default=Outcome.ok())
    resumed = await qwen_dev(*files.args("--json"))
    assert resumed.code == 0
    assert resumed.json()["skipped"] == len(done)
    assert len(chats(server)) == 200 - len(done)


async def test_sigkill_halfway_then_resume_answers_each_id_once(
    server: FaultServer, files: Files
) -> None:
    total, concurrency = 200, 4
    write_input(files.input, total)
    server.configure(default=Outcome.ok(delay=0.02))
    proc = await asyncio.create_subprocess_exec(
        *command(*files.args("--concurrency", str(concurrency))),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    await wait_for_lines(files.output, total // 2)
    proc.kill()
    await proc.wait()
    run = await qwen_dev(*files.args("--concurrency", str(concurrency), "--json"))
    assert run.code == 0, run.err
    answered = Counter(r["id"] for r in results(files.output) if r["ok"])
    assert answered == Counter(f"p{i}" for i in range(total))  # each id exactly once
    assert chats(server).count("ok") <= total + concurrency


def lines_in(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


async def wait_for_lines(path: Path, count: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if lines_in(path) >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{path} did not reach {count} lines")


@pytest.fixture
def slow_server() -> Iterator[FaultServerProcess]:
    with FaultServerProcess(default=Outcome.ok(delay=0.2)) as srv:
        yield srv


def test_the_live_display_on_a_terminal_shows_done_of_total(
    slow_server: FaultServerProcess, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "c.toml", slow_server)
    source = write_input(tmp_path / "in.jsonl", 16)
    child = pexpect.spawn(
        sys.executable,
        [
            "-m",
            "qwen_dev_cli",
            "batch",
            str(source),
            "-o",
            str(tmp_path / "o.jsonl"),
            "--config",
            str(config),
            "--concurrency",
            "2",
        ],
        env=dict(os.environ, COLUMNS="120", LINES="30"),
        dimensions=(30, 120),
        encoding="utf-8",
        timeout=30,
    )
    child.expect(r"\d+/16 \(\d+%\)")
    child.expect("in flight")
    child.expect(r"lab\S*\s+\S*CLOSED")
    child.expect("16 answered, 0 failed")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


async def test_no_usable_provider_names_each_skipped_one_and_its_variable(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('provider_order = ["sambanova"]\n', encoding="utf-8")  # no key set
    source = write_input(tmp_path / "in.jsonl", 2)
    run = await qwen_dev(str(source), "-o", str(tmp_path / "out.jsonl"), "--config", str(config))
    assert run.code == 2, run.err
    assert "sambanova skipped: SAMBANOVA_API_KEY is not set" in run.err
    assert "Traceback" not in run.err
