"""Retry-After, x-should-retry and x-ratelimit-* as servers really send them, odd ones too."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import format_datetime

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qwen_dev_cli.core.headers import (
    parse_duration,
    parse_rate_limit_headers,
    parse_retry_after,
    parse_retry_hint,
    parse_should_retry,
)
from qwen_dev_cli.core.types import RateLimitHeaders

NOW = 1_700_000_000.0
YEAR = 365 * 24 * 3600.0
HeaderBox = Callable[[dict[str, str]], Mapping[str, str]]
BOXES: list[HeaderBox] = [dict, httpx.Headers]


def at_now() -> float:
    return NOW


def http_date(ts: float) -> str:
    return format_datetime(datetime.fromtimestamp(ts, UTC), usegmt=True)


def retry_after(headers: Mapping[str, str]) -> float | None:
    return parse_retry_after(headers, now=at_now)


# --- parse_retry_after ---------------------------------------------------------------


def test_retry_after_ms_is_milliseconds() -> None:
    assert retry_after({"retry-after-ms": "1500"}) == 1.5


@pytest.mark.parametrize(("raw", "seconds"), [("7", 7.0), ("2.5", 2.5), (" 3 ", 3.0)])
def test_retry_after_seconds(raw: str, seconds: float) -> None:
    assert retry_after({"retry-after": raw}) == seconds


def test_retry_after_http_date_in_future_is_seconds_from_now() -> None:
    assert retry_after({"retry-after": http_date(NOW + 30)}) == 30.0


def test_retry_after_http_date_in_past_is_zero() -> None:
    assert retry_after({"retry-after": http_date(NOW - 3600)}) == 0.0


def test_retry_after_http_date_uses_injected_clock() -> None:
    header = {"retry-after": http_date(NOW + 30)}
    assert parse_retry_after(header, now=lambda: NOW + 10) == 20.0


def test_retry_after_ms_wins_over_seconds() -> None:
    assert retry_after({"retry-after": "10", "retry-after-ms": "250"}) == 0.25


def test_unusable_retry_after_ms_falls_back_to_retry_after() -> None:
    assert retry_after({"retry-after-ms": "soon", "retry-after": "3"}) == 3.0


def test_retry_after_zero_means_retry_now() -> None:
    assert retry_after({"retry-after": "0"}) == 0.0
    assert retry_after({"retry-after-ms": "0"}) == 0.0


def test_no_retry_after_is_none() -> None:
    assert retry_after({"content-type": "application/json"}) is None


@pytest.mark.parametrize(
    "raw", ["-1", "-0.5", "nan", "NaN", "-inf", "garbage", "", "   ", "1.2.3", "5 seconds"]
)
@pytest.mark.parametrize("name", ["retry-after", "retry-after-ms"])
def test_unusable_retry_after_is_ignored(name: str, raw: str) -> None:
    assert retry_after({name: raw}) is None


@pytest.mark.parametrize("raw", ["inf", "Infinity", "1e400", "99999999999", "9" * 40])
@pytest.mark.parametrize("name", ["retry-after", "retry-after-ms"])
def test_huge_retry_after_is_clamped_to_a_year(name: str, raw: str) -> None:
    # Still a wait, and longer than any sane max_retry_after: the client fails over.
    assert retry_after({name: raw}) == YEAR


def test_far_future_http_date_is_clamped_to_a_year() -> None:
    assert retry_after({"retry-after": "Fri, 31 Dec 9999 23:59:59 GMT"}) == YEAR


@pytest.mark.parametrize("box", BOXES)
@pytest.mark.parametrize("name", ["retry-after", "Retry-After", "RETRY-AFTER", "rEtRy-AfTeR"])
def test_retry_after_header_name_is_case_insensitive(name: str, box: HeaderBox) -> None:
    assert retry_after(box({name: "4"})) == 4.0


@pytest.mark.parametrize("box", BOXES)
@pytest.mark.parametrize("name", ["Retry-After-Ms", "RETRY-AFTER-MS", "retry-after-MS"])
def test_retry_after_ms_header_name_is_case_insensitive(name: str, box: HeaderBox) -> None:
    assert retry_after(box({name: "400", "Retry-After": "9"})) == 0.4


# --- parse_should_retry --------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("true", True),
        ("True", True),
        (" TRUE ", True),
        ("false", False),
        ("False", False),
        ("1", None),
        ("yes", None),
        ("", None),
    ],
)
def test_should_retry(raw: str, expected: bool | None) -> None:
    assert parse_should_retry({"x-should-retry": raw}) is expected


def test_should_retry_absent_is_none() -> None:
    assert parse_should_retry({}) is None


@pytest.mark.parametrize("box", BOXES)
def test_should_retry_header_name_is_case_insensitive(box: HeaderBox) -> None:
    assert parse_should_retry(box({"X-Should-Retry": "false"})) is False


# --- parse_duration ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [
        ("1s", 1.0),
        ("6m0s", 360.0),
        ("250ms", 0.25),
        ("1h2m3.5s", 3723.5),
        ("20", 20.0),
        ("0.5", 0.5),
        (" 2s ", 2.0),
        ("1ms1s", 1.001),
    ],
)
def test_parse_duration(raw: str, seconds: float) -> None:
    assert parse_duration(raw) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "raw", [None, "", "garbage", "s", "1x", "1m 2s", "-1s", "nan", "1s!", ".5s", "m1"]
)
def test_parse_duration_rejects_garbage(raw: str | None) -> None:
    assert parse_duration(raw) is None


def test_parse_duration_huge_is_clamped_to_a_year() -> None:
    assert parse_duration("99999999h") == YEAR


# --- parse_rate_limit_headers --------------------------------------------------------

OPENAI_STYLE = {
    "x-ratelimit-remaining-requests": "59",
    "x-ratelimit-remaining-tokens": "149984",
    "x-ratelimit-reset-requests": "1s",
    "x-ratelimit-reset-tokens": "6m0s",
}


@pytest.mark.parametrize("box", BOXES)
def test_rate_limit_headers_openai_style(box: HeaderBox) -> None:
    assert parse_rate_limit_headers(box(OPENAI_STYLE)) == RateLimitHeaders(59, 149984, 1.0, 360.0)


@pytest.mark.parametrize("box", BOXES)
def test_rate_limit_headers_in_canonical_capitalisation(box: HeaderBox) -> None:
    headers = {
        "X-RateLimit-Remaining-Requests": "3",
        "X-RateLimit-Reset-Requests": "20",
    }
    assert parse_rate_limit_headers(box(headers)) == RateLimitHeaders(3, None, 20.0, None)


def test_rate_limit_headers_without_remaining_is_none() -> None:
    assert parse_rate_limit_headers({"x-ratelimit-reset-requests": "1s"}) is None
    assert parse_rate_limit_headers({}) is None


def test_rate_limit_headers_tokens_only() -> None:
    parsed = parse_rate_limit_headers({"x-ratelimit-remaining-tokens": "100"})
    assert parsed == RateLimitHeaders(None, 100, None, None)


@pytest.mark.parametrize("raw", ["-1", "1.5", "lots", "", "1" * 19])
def test_rate_limit_bad_counts_are_absent(raw: str) -> None:
    headers = {"x-ratelimit-remaining-requests": raw, "x-ratelimit-remaining-tokens": "5"}
    parsed = parse_rate_limit_headers(headers)
    assert parsed is not None
    assert parsed.remaining_requests is None


def test_rate_limit_latin1_digit_from_the_wire_does_not_raise() -> None:
    # httpx decodes a stray 0xB2 byte as "²", which str.isdigit() accepts and int() refuses.
    headers = httpx.Headers([(b"x-ratelimit-remaining-requests", b"\xb2")])
    assert parse_rate_limit_headers(headers) is None


# --- properties: every parser is total -----------------------------------------------


def usable_wait(value: float | None) -> bool:
    return value is None or (math.isfinite(value) and value >= 0)


date_words = st.sampled_from(
    ["Wed,", "21", "Oct", "2015", "07:28:00", "GMT", "-0000", "+9999", "Feb", "30", "99999"]
)
header_text = st.one_of(
    st.text(max_size=40),
    st.text(alphabet="0123456789²³¹١٢ .-+eEinfINF:msh", max_size=12),
    st.lists(date_words, max_size=7).map(" ".join),
    st.from_regex(r"-?[0-9]{0,400}(\.[0-9]*)?(e-?[0-9]{1,4})?", fullmatch=True),
)


@settings(max_examples=200, deadline=None)
@given(seconds=header_text, millis=st.one_of(st.none(), header_text))
def test_retry_after_never_raises_and_is_finite(seconds: str, millis: str | None) -> None:
    headers = {"retry-after": seconds}
    if millis is not None:
        headers["retry-after-ms"] = millis
    assert usable_wait(retry_after(headers))


@settings(max_examples=200, deadline=None)
@given(raw=header_text)
def test_parse_duration_never_raises_and_is_finite(raw: str) -> None:
    assert usable_wait(parse_duration(raw))


@settings(max_examples=200, deadline=None)
@given(raw=st.text(max_size=20))
def test_should_retry_never_raises(raw: str) -> None:
    assert parse_should_retry({"x-should-retry": raw}) in (True, False, None)


@settings(max_examples=200, deadline=None)
@given(values=st.lists(header_text, min_size=4, max_size=4))
def test_rate_limit_headers_never_raise(values: list[str]) -> None:
    parsed = parse_rate_limit_headers(dict(zip(OPENAI_STYLE, values, strict=True)))
    if parsed is None:
        return
    for count in (parsed.remaining_requests, parsed.remaining_tokens):
        assert count is None or count >= 0
    assert usable_wait(parsed.reset_requests)
    assert usable_wait(parsed.reset_tokens)


@pytest.mark.parametrize(
    ("body", "seconds"),
    [
        ('{"error": {"details": [{"retryDelay": "37s"}]}}', 37.0),
        ('{"error": {"details": [{"@type": "RetryInfo", "retryDelay" : "2.5s"}]}}', 2.5),
        ("Quota exceeded for metric ... Please retry in 37.5s.", 37.5),
        ("Rate limit reached. Please try again in 250ms.", 0.25),
        ("nothing to see", None),
        ("", None),
    ],
)
def test_a_429s_body_may_say_when_to_come_back(body: str, seconds: float | None) -> None:
    assert parse_retry_hint(body) == seconds
    assert parse_retry_hint(body.encode()) == seconds
