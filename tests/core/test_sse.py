"""The SSE decoder gives the same events however the network cuts the bytes."""

from __future__ import annotations

import itertools
import tracemalloc
from collections.abc import Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qwen_dev_cli.core.sse import PACK_LINES, SSEDecoder, SSEEvent


def fed(chunks: Iterable[bytes]) -> list[SSEEvent]:
    """Events ``feed`` returns for ``chunks``, before the stream ends."""
    decoder = SSEDecoder()
    return [event for chunk in chunks for event in decoder.feed(chunk)]


def decoded(chunks: Iterable[bytes]) -> list[SSEEvent]:
    """Every event of a stream delivered as ``chunks``, ``flush`` included."""
    decoder = SSEDecoder()
    events = [event for chunk in chunks for event in decoder.feed(chunk)]
    return events + decoder.flush()


def byte_by_byte(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


def split(data: bytes, cuts: Iterable[int]) -> list[bytes]:
    points = [0, *sorted(set(cuts)), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(points)]


RICH_STREAM = (
    b": keep-alive\r\n"
    b"\r\n"
    b"event: delta\r\n"
    b"id: 1\r\n"
    b'data: {"text": "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80"}\r\n'
    b"\r\n"
    b"data:no-space\rdata: two\r\r"
    b"data: a\n"
    b"data: b\n"
    b"\n"
    b"data: [DONE]\n\n"
)
RICH_EVENTS = [
    SSEEvent('{"text": "héllo € 😀"}', "delta", "1"),
    SSEEvent("no-space\ntwo", None, "1"),
    SSEEvent("a\nb", None, "1"),
    SSEEvent("[DONE]", None, "1"),
]


def test_one_event() -> None:
    assert decoded([b"data: hello\n\n"]) == [SSEEvent("hello")]


def test_data_with_and_without_space() -> None:
    assert decoded([b"data:tight\n\ndata: spaced\n\ndata:  two\n\n"]) == [
        SSEEvent("tight"),
        SSEEvent("spaced"),
        SSEEvent(" two"),  # only one leading space belongs to the syntax
    ]


def test_multi_line_data_is_joined_with_newlines() -> None:
    assert decoded([b"data: a\ndata:\ndata: c\n\n"]) == [SSEEvent("a\n\nc")]


def test_event_and_id_fields() -> None:
    stream = b"event: delta\nid: 7\ndata: x\n\ndata: y\n\n"
    # The event type is per event; the last event id carries over, as browsers do.
    assert decoded([stream]) == [SSEEvent("x", "delta", "7"), SSEEvent("y", None, "7")]


def test_id_with_nul_is_ignored() -> None:
    assert decoded([b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n"])[-1].id == "1"


def test_comments_are_ignored() -> None:
    stream = b": keep-alive\n\n:\n\ndata: x\n: between lines\ndata: y\n\n"
    assert decoded([stream]) == [SSEEvent("x\ny")]


def test_event_without_data_is_not_dispatched() -> None:
    assert decoded([b"event: ping\n\nretry: 100\n\nunknown: 1\n\n"]) == []


def test_field_name_alone_is_an_empty_value() -> None:
    assert decoded([b"data\n\n"]) == [SSEEvent("")]


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"])
def test_line_endings(eol: bytes) -> None:
    stream = eol.join([b"event: e", b"data: a", b"data: b", b"", b"data: c", b"", b""])
    assert decoded([stream]) == [SSEEvent("a\nb", "e"), SSEEvent("c")]


def test_crlf_split_across_chunks_is_one_line_break() -> None:
    # Were "\r" and "\n" two breaks, the blank line between would end the event early.
    assert decoded([b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"]) == [SSEEvent("a\nb")]


def test_event_is_returned_as_soon_as_its_blank_line_arrives() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n") == []
    assert decoder.feed(b"\n") == [SSEEvent("a")]


def test_cr_only_event_is_returned_when_its_closing_cr_arrives() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r\r") == [SSEEvent("a")]
    assert decoder.feed(b"\ndata: b\r\r") == [SSEEvent("b")]


def test_event_ended_by_cr_at_chunk_end_is_not_held_back_by_next_chunk() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n\r") == [SSEEvent("a")]
    assert decoder.feed(b"data: b") == []
    assert decoder.flush() == [SSEEvent("b")]


def test_multibyte_utf8_split_across_chunks() -> None:
    text = "data: é € 😀 中文\n\n"
    assert fed(byte_by_byte(text.encode())) == [SSEEvent("é € 😀 中文")]


def test_invalid_utf8_is_replaced() -> None:
    assert decoded([b"data: \xff\xfe ok \xe2\x82\n\n"]) == [SSEEvent("\ufffd\ufffd ok \ufffd")]


def test_flush_returns_final_event_without_blank_line() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: one\n\ndata: last") == [SSEEvent("one")]
    assert decoder.flush() == [SSEEvent("last")]


def test_flush_after_last_data_line_without_blank_line() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: last\n") == []
    assert decoder.flush() == [SSEEvent("last")]


def test_flush_of_complete_stream_is_empty() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"data: x\n\n")
    assert decoder.flush() == []


def test_flush_completes_truncated_utf8_with_replacement() -> None:
    assert decoded([b"data: \xe2\x82"]) == [SSEEvent("\ufffd")]


def test_rich_stream_whole() -> None:
    assert decoded([RICH_STREAM]) == RICH_EVENTS


def test_rich_stream_byte_by_byte() -> None:
    assert decoded(byte_by_byte(RICH_STREAM)) == RICH_EVENTS


def test_rich_stream_split_at_every_boundary() -> None:
    for cut in range(len(RICH_STREAM) + 1):
        assert decoded(split(RICH_STREAM, [cut])) == RICH_EVENTS, cut


def test_rich_stream_split_at_every_pair_of_boundaries() -> None:
    n = len(RICH_STREAM)
    for a in range(0, n + 1, 3):
        for b in range(a, n + 1, 5):
            assert decoded(split(RICH_STREAM, [a, b])) == RICH_EVENTS, (a, b)


# --- properties ----------------------------------------------------------------------

sse_bytes = st.lists(
    st.one_of(
        st.sampled_from(
            [b"data:", b"data: ", b"event: ", b"id: ", b": ", b"\n", b"\r", b"\r\n", b"\x00"]
        ),
        st.sampled_from(["é", "€", "😀", "x"]).map(str.encode),
        st.binary(max_size=6),
    ),
    max_size=40,
).map(b"".join)


@st.composite
def chunked(draw: st.DrawFn) -> tuple[bytes, list[bytes]]:
    data = draw(sse_bytes)
    cuts = draw(st.lists(st.integers(0, len(data)), max_size=12))
    return data, split(data, cuts)


@settings(max_examples=200, deadline=None)
@given(case=chunked())
def test_chunking_never_changes_events(case: tuple[bytes, list[bytes]]) -> None:
    data, chunks = case
    assert fed(chunks) == fed([data])
    assert decoded(chunks) == decoded([data])


@settings(max_examples=200, deadline=None)
@given(data=sse_bytes)
def test_byte_by_byte_equals_whole(data: bytes) -> None:
    assert decoded(byte_by_byte(data)) == decoded([data])


@pytest.mark.parametrize("lines", [PACK_LINES - 1, PACK_LINES, PACK_LINES + 1, 3 * PACK_LINES + 7])
@pytest.mark.parametrize("eol", [b"\n", b"\r\n"])
def test_an_event_of_many_data_lines_is_the_lines_joined(lines: int, eol: bytes) -> None:
    values = [f"line {n}" if n % 5 else "" for n in range(lines)]
    # An empty value as the field's name alone: that line goes through _line.
    body = b"".join((b"data: " + v.encode() if v else b"data") + eol for v in values)
    body += eol + b"data: next" + eol  # the last event ended by the stream (flush)
    expected = [SSEEvent("\n".join(values)), SSEEvent("next")]
    assert decoded([body]) == expected
    assert decoded([*byte_by_byte(body[:300]), body[300:]]) == expected


def test_millions_of_short_data_lines_are_not_held_one_by_one() -> None:
    """A hostile server's event of two million ``data:xy`` lines (16 MB, well within a
    response's 64 MiB) was held as two million strings before it was joined."""
    decoder = SSEDecoder()
    block = b"data:xy\n" * 8192  # 64 KiB, as the network delivers it
    tracemalloc.start()
    try:
        for _ in range(256):
            assert decoder.feed(block) == []
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    (event,) = decoder.feed(b"\n")
    assert len(event.data) == 2 * 8192 * 256 + (8192 * 256 - 1)
    assert peak < 24 << 20  # the joined text is 6 MB; one string per line was 100+ MB
