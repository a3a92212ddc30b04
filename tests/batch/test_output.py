"""The output file as a checkpoint: whole lines, a torn tail cut away, the last line of
an id wins, and paths that would surprise the user refused."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from qwen_dev_cli.batch.input import Prompt, digest_of
from qwen_dev_cli.batch.output import (
    Answered,
    CheckpointFile,
    OutputError,
    encode,
    failure_record,
)


def prompt(prompt_id: str, text: str = "hi") -> Prompt:
    messages = [{"role": "user", "content": text}]
    return Prompt(prompt_id, messages, digest_of(messages), 1)


def line(prompt_id: str, *, ok: bool = True, digest: str | None = "d") -> str:
    return json.dumps({"id": prompt_id, "ok": ok, "prompt_hash": digest}) + "\n"


def failed(prompt_id: str) -> dict[str, Any]:
    return failure_record(
        prompt(prompt_id), {"type": "x", "message": "y"}, attempts=1, latency_ms=1.0
    )


async def test_a_new_file_is_private_and_gets_whole_lines(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    checkpoint = CheckpointFile(out, input_path=None)
    checkpoint.begin(checkpoint.scan())
    await checkpoint.append(failed("a"))
    await checkpoint.append(failed("b"))
    checkpoint.close()
    assert out.stat().st_mode & 0o777 == 0o600
    lines = out.read_text(encoding="utf-8").splitlines()
    assert [json.loads(x)["id"] for x in lines] == ["a", "b"]
    assert json.loads(lines[0])["error"] == {"type": "x", "message": "y"}


async def test_a_torn_last_line_is_cut_before_appending(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_text(line("a") + line("b", ok=False) + '{"id": "c", "ok": tr', encoding="utf-8")
    checkpoint = CheckpointFile(out, input_path=None)
    found = checkpoint.scan()
    assert found.torn
    assert found.results == {"a": Answered(True, "d"), "b": Answered(False, "d")}
    checkpoint.begin(found)
    assert out.read_bytes().endswith(b"\n")  # cut at once, whatever follows
    await checkpoint.append(failed("c"))
    checkpoint.close()
    lines = out.read_text(encoding="utf-8").splitlines()
    assert [json.loads(x)["id"] for x in lines] == ["a", "b", "c"]  # every line parses


def test_the_last_line_of_an_id_wins(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_text(line("a", ok=False) + line("b") + line("a", ok=True), encoding="utf-8")
    checkpoint = CheckpointFile(out, input_path=None)
    assert checkpoint.scan().results["a"].ok is True
    checkpoint.close()


def test_an_existing_file_keeps_its_mode(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_text(line("a"), encoding="utf-8")
    out.chmod(0o644)
    checkpoint = CheckpointFile(out, input_path=None)
    checkpoint.begin(checkpoint.scan())
    checkpoint.close()
    assert out.stat().st_mode & 0o777 == 0o644


def test_a_file_that_is_not_a_batch_output_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "notes.txt"
    out.write_text("my precious notes\n", encoding="utf-8")
    with pytest.raises(OutputError, match=r"notes.txt:1 is not a qwen-dev batch result"):
        CheckpointFile(out, input_path=None).scan()
    assert out.read_text(encoding="utf-8") == "my precious notes\n"


def test_the_input_file_cannot_be_the_output(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"id": "a", "prompt": "x"}\n', encoding="utf-8")
    with pytest.raises(OutputError, match="is the INPUT file"):
        CheckpointFile(tmp_path / "." / "in.jsonl", input_path=source)
    os.link(source, tmp_path / "hard.jsonl")
    with pytest.raises(OutputError, match="is the INPUT file"):
        CheckpointFile(tmp_path / "hard.jsonl", input_path=source)


def test_a_symlinked_output_is_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.jsonl"
    link = tmp_path / "out.jsonl"
    link.symlink_to(target)
    with pytest.raises(OutputError, match="symbolic link"):
        CheckpointFile(link, input_path=None)
    assert not target.exists()


@pytest.mark.parametrize("name", ["-", "missing-folder/out.jsonl"])
def test_unusable_output_paths_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(OutputError):
        CheckpointFile(Path(name) if name == "-" else tmp_path / name, input_path=None)


def test_a_folder_is_not_an_output_file(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="not a regular file"):
        CheckpointFile(tmp_path, input_path=None)


def test_two_batches_cannot_write_one_output(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    first = CheckpointFile(out, input_path=None)
    first.begin(first.scan())
    try:
        with pytest.raises(OutputError, match="another qwen-dev batch"):
            CheckpointFile(out, input_path=None)
    finally:
        first.close()
    CheckpointFile(out, input_path=None).close()  # free again once the first is done


def test_text_that_utf8_cannot_hold_is_escaped_not_lost() -> None:
    record = {"id": "a", "text": "caf\u00e9 \ud800"}
    data = encode(record)
    assert data.endswith(b"\n")
    assert json.loads(data) == record
    assert "café".encode() in encode({"id": "b", "text": "café"})


@pytest.mark.parametrize(
    "content",
    [
        b"my notes, one line, no newline",  # would have been cut to nothing
        b"\n\nnotes after blank lines",
        b"\n",  # blank lines only: batch never writes one
        line("a").encode() + b"\n" + line("b").encode(),  # a blank line among results
        line("a").encode() + b"a last line that is not a result",
        # A line without its prompt's hash would skip that id on every resume.
        b'{"id": "a", "ok": true}\n',
    ],
)
def test_a_file_that_is_not_a_batch_output_is_refused_whatever_its_shape(
    tmp_path: Path, content: bytes
) -> None:
    out = tmp_path / "notes.txt"
    out.write_bytes(content)
    checkpoint = CheckpointFile(out, input_path=None)
    with pytest.raises(OutputError, match="is not a qwen-dev batch result"):
        checkpoint.scan()
    checkpoint.close()
    assert out.read_bytes() == content  # untouched
