"""stream-json's hot path (issue 20 benchmarks): a delta's templated line is the JSON the
event would be, the uuids are version-4 UUIDs, and deltas of one moment leave together,
before anything that follows them."""

from __future__ import annotations

import asyncio
import io
import json
import uuid

from qwen_dev_cli.agent.turn import AssistantText
from qwen_dev_cli.ui.stream_json import StreamJson, fast_uuid4


def test_fast_uuids_are_version_4_and_distinct() -> None:
    made = {fast_uuid4() for _ in range(2000)}
    assert len(made) == 2000
    for text in list(made)[:50]:
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant) == (4, uuid.RFC_4122)
        assert str(parsed) == text


def test_a_delta_line_is_the_events_json() -> None:
    out = io.StringIO()
    stream = StreamJson(out, partial=True)
    stream.session_id = 'odd "id"'
    texts = ['say "hi"\n', "naïve ☃ \\ \t", "", "\u2028"]
    for text in texts:
        stream(AssistantText(text))  # no running loop: written at once
    lines = out.getvalue().splitlines(keepends=True)
    assert len(lines) == len(texts)
    for line, text in zip(lines, texts, strict=True):
        event = json.loads(line)
        expected = {
            "type": "stream_event",
            "event": {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": text},
            },
            "parent_tool_use_id": None,
            "session_id": 'odd "id"',
            "uuid": event["uuid"],
        }
        assert event == expected
        assert line == json.dumps(expected) + "\n"


async def test_deltas_of_one_moment_leave_in_one_write_before_what_follows() -> None:
    writes: list[str] = []

    class Out(io.StringIO):
        def write(self, text: str) -> int:
            writes.append(text)
            return len(text)

    stream = StreamJson(Out(), partial=True)
    stream(AssistantText("a"))
    stream(AssistantText("b"))
    assert writes == []  # not yet: this moment's work goes on
    await asyncio.sleep(0)
    assert len(writes) == 1
    assert [json.loads(line)["event"]["delta"]["text"] for line in writes[0].splitlines()] == [
        "a",
        "b",
    ]
    stream(AssistantText("c"))
    stream.notice("warning", "then this")  # written at once, the delta first
    assert [json.loads(line).get("type") for line in writes[1].splitlines()] == [
        "stream_event",
        "system",
    ]
    await asyncio.sleep(0)
    assert len(writes) == 2


def test_a_long_event_leaves_in_pieces_as_the_same_line() -> None:
    # Issue 22, finding 13: an answer of 64 MiB was copied whole twice to be written.
    writes: list[str] = []

    class Out(io.StringIO):
        def write(self, text: str) -> int:
            writes.append(text)
            return len(text)

    stream = StreamJson(Out(), partial=True)
    stream(AssistantText("a delta first"))
    long = 'naïve ☃ \\ "quoted"\n' * 20_000
    stream.notice("warning", long)
    assert len(writes) > 2  # in pieces: a 64 KiB slice escaped (up to six times longer)
    assert max(len(piece) for piece in writes) < 6 * 65_536 + 1000
    first, second = "".join(writes).splitlines(keepends=True)
    assert json.loads(first)["event"]["delta"]["text"] == "a delta first"
    event = json.loads(second)
    assert event["message"] == long
    assert second == json.dumps(event) + "\n"
