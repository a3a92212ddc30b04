"""Input validation: every problem is named with file:line before anything is sent."""

from __future__ import annotations

import io
import json
import tracemalloc
from pathlib import Path

import pytest

from qwen_dev_cli.batch.input import (
    MAX_LINE_BYTES,
    InputError,
    InputFile,
    Prompt,
    digest_of,
    read_prompts,
    scan,
)


def write(path: Path, *lines: str | bytes) -> InputFile:
    data = b"".join((x if isinstance(x, bytes) else x.encode()) + b"\n" for x in lines)
    path.write_bytes(data)
    return InputFile(path, "in.jsonl")


def prompts_of(source: InputFile) -> list[Prompt]:
    found: list[Prompt] = []
    scan(source, found.append)
    return found


def problem(tmp_path: Path, *lines: str | bytes) -> str:
    with pytest.raises(InputError) as caught:
        prompts_of(write(tmp_path / "in.jsonl", *lines))
    return str(caught.value)


def test_prompt_and_messages_lines_become_messages(tmp_path: Path) -> None:
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    source = write(
        tmp_path / "in.jsonl",
        json.dumps({"id": "a", "prompt": "hello", "meta": {"x": [1, 2]}}),
        "",
        "   ",
        json.dumps({"id": "b", "messages": messages}),
    )
    found = prompts_of(source)
    assert [(p.id, p.line) for p in found] == [("a", 1), ("b", 4)]
    assert found[0].messages == [{"role": "user", "content": "hello"}]
    assert found[1].messages == messages


def test_the_same_question_has_the_same_digest_either_way(tmp_path: Path) -> None:
    as_prompt = prompts_of(write(tmp_path / "a", json.dumps({"id": "1", "prompt": "x"})))
    as_messages = prompts_of(
        write(
            tmp_path / "b", json.dumps({"id": "1", "messages": [{"content": "x", "role": "user"}]})
        )
    )
    assert as_prompt[0].digest == as_messages[0].digest
    assert digest_of([{"role": "user", "content": "y"}]) != as_prompt[0].digest


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("{not json", "in.jsonl:2: not valid JSON"),
        ('["id", "prompt"]', "in.jsonl:2: expected an object"),
        ('{"prompt": "hi"}', 'in.jsonl:2: missing "id"'),
        ('{"id": 7, "prompt": "hi"}', 'in.jsonl:2: "id" must be a string, not a number'),
        ('{"id": "", "prompt": "hi"}', 'in.jsonl:2: "id" is empty'),
        ('{"id": "x"}', 'in.jsonl:2: needs "prompt" or "messages"'),
        ('{"id": "x", "prompt": "  "}', 'in.jsonl:2: "prompt" is empty'),
        ('{"id": "x", "prompt": ["hi"]}', '"prompt" must be a string, not an array'),
        ('{"id": "x", "prompt": "a", "messages": []}', 'both "prompt" and "messages"'),
        ('{"id": "x", "messages": "hi"}', '"messages" must be a list of {role, content}'),
        ('{"id": "x", "messages": []}', "not empty"),
        ('{"id": "x", "messages": ["hi"]}', '"messages"[0] must be a {role, content} object'),
        ('{"id": "x", "messages": [{"role": "user"}]}', '"content" must be a string, not null'),
        ('{"id": "x", "messages": [{"role": "tool", "content": "a"}]}', '"role" must be one of'),
        (
            '{"id": "x", "messages": [{"role": "user", "content": "a", "tool_calls": []}]}',
            '"messages"[0] has "tool_calls"',
        ),
    ],
)
def test_a_bad_line_is_named_with_what_is_wrong(tmp_path: Path, line: str, expected: str) -> None:
    message = problem(tmp_path, '{"id": "ok", "prompt": "fine"}', line)
    assert expected in message
    assert "nothing was sent" in message


def test_duplicate_ids_name_both_lines(tmp_path: Path) -> None:
    message = problem(
        tmp_path,
        '{"id": "a", "prompt": "1"}',
        '{"id": "b", "prompt": "2"}',
        '{"id": "a", "prompt": "3"}',
    )
    assert 'in.jsonl:3: duplicate id "a" (first on line 1)' in message


def test_hostile_lines_are_refused_not_obeyed(tmp_path: Path) -> None:
    deep = '{"id": "d", "prompt": "x", "meta": ' + "[" * 100_000 + "]" * 100_000 + "}"
    message = problem(
        tmp_path,
        b'{"id": "bin", "prompt": "\xff\xfe"}',
        deep,
        "\x00\x01\x02",
    )
    assert "in.jsonl:1: not valid UTF-8 (byte 26)" in message
    assert "in.jsonl:2: JSON nested too deeply" in message
    assert "in.jsonl:3: not valid JSON" in message


def test_a_line_over_the_cap_is_refused_without_reading_it_whole(tmp_path: Path) -> None:
    huge = '{"id": "h", "prompt": "' + "x" * (MAX_LINE_BYTES + 10) + '"}'
    message = problem(tmp_path, huge, '{"id": "after", "prompt": "still read"}', "{bad")
    assert "in.jsonl:1: line longer than 10 MiB" in message
    assert "in.jsonl:3: not valid JSON" in message  # numbering continues past it


def test_problems_are_listed_up_to_ten_then_counted(tmp_path: Path) -> None:
    message = problem(tmp_path, *[f'{{"id": {i}, "prompt": "x"}}' for i in range(25)])
    assert message.count('"id" must be a string') == 10
    assert "... and 15 more" in message


def test_a_byte_order_mark_on_the_first_line_is_accepted(tmp_path: Path) -> None:
    source = write(tmp_path / "in.jsonl", b'\xef\xbb\xbf{"id": "a", "prompt": "hi"}')
    assert [p.id for p in prompts_of(source)] == ["a"]


def test_prompts_are_read_again_lazily_and_filtered(tmp_path: Path) -> None:
    source = write(tmp_path / "in.jsonl", *[f'{{"id": "p{i}", "prompt": "{i}"}}' for i in range(5)])
    lazy = read_prompts(source, lambda p: p.id != "p2")
    assert next(lazy).id == "p0"
    assert [p.id for p in lazy] == ["p1", "p3", "p4"]


def test_an_input_changed_after_validation_is_not_sent(tmp_path: Path) -> None:
    source = write(
        tmp_path / "in.jsonl", '{"id": "a", "prompt": "1"}', '{"id": "b", "prompt": "2"}'
    )
    prompts_of(source)
    source.path.write_text('{"id": "a", "prompt": "1"}\n{broken\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"in\.jsonl:2 changed while the batch ran"):
        list(read_prompts(source, lambda p: True))


def test_stdin_is_spooled_to_a_private_file_and_removed(tmp_path: Path) -> None:
    data = b'{"id": "a", "prompt": "from a pipe"}\n'
    source = InputFile.open("-", io.BytesIO(data))
    try:
        assert source.name == "<stdin>"
        assert source.path.read_bytes() == data
        assert source.path.stat().st_mode & 0o777 == 0o600
        assert [p.id for p in prompts_of(source)] == ["a"]
    finally:
        source.close()
    assert not source.path.exists()


def test_missing_or_unreadable_input_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        InputFile.open(str(tmp_path / "nope.jsonl"), None)
    with pytest.raises(InputError, match="a folder"):
        InputFile.open(str(tmp_path), None)


def test_validating_many_long_ids_holds_a_digest_each_not_the_ids(tmp_path: Path) -> None:
    # Issue 22, finding 12: 200,000 ids of 1,000 characters held whole took 261 MB.
    count, pad = 20_000, "i" * 990
    path = tmp_path / "in.jsonl"
    with path.open("w", encoding="utf-8") as out:
        for n in range(count):
            out.write(json.dumps({"id": f"{pad}{n:08d}", "prompt": "p"}) + "\n")
    source = InputFile(path, "in.jsonl")
    tracemalloc.start()
    try:
        assert scan(source, lambda prompt: None) == count
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < count * 1000 // 4  # the ids themselves are 20 MB
