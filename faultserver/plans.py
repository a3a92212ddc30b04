"""What the server does with a chat request: a scripted :class:`Outcome` (an answer,
an error status, a reset, a hang, a stream cut or garbled...), or one drawn at random
from a :class:`ChaosMix`. Both have a JSON form, for the control API and the command
line.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from .http11 import JsonDict

KINDS = frozenset(
    {"ok", "status", "reset", "hang", "slow_first_byte", "stream_cut", "garbage", "stream_error"}
)
GARBAGE_THEN = frozenset({"continue", "close", "reset"})


@dataclass(frozen=True)
class Outcome:
    """What the server does with one chat request. Build with the classmethods or directly.

    JSON form: ``{"kind": "status", "status": 503, "headers": {"retry-after": "2"}}``
    (``status`` is the JSON name of ``status_code``, ``type`` of ``error_type``).
    """

    kind: str = "ok"
    text: str | None = None  # answer text; None = the server's text (or no content with tools)
    delay: float = 0.0  # seconds before the first byte (ok, slow_first_byte)
    tool_calls: list[dict[str, Any]] | None = None  # [{"name": ..., "arguments": "<json>"}]
    headers: dict[str, str] | None = None  # extra response headers
    usage: dict[str, int] | None = None  # merged over the computed usage
    chunk_size: int | None = None  # stream: content delta size in chars (None = per word)
    split_utf8: bool = False  # stream: split a multi-byte character across two writes
    keepalive: bool = False  # stream: ": keep-alive" comments between events
    crlf: bool = False  # stream: \r\n line endings
    no_space: bool = False  # stream: "data:{...}" without the space
    omit_done: bool = False  # stream: no "data: [DONE]"
    chunk_delay: float = 0.0  # stream: seconds between events
    finish_reason: str | None = None  # ok: instead of "stop" / "tool_calls" (e.g. "length")
    status_code: int = 500  # status
    message: str | None = None  # status / stream_error: error message
    code: str | int | None = None  # status / stream_error: error code
    error_type: str | None = None  # status / stream_error: error type
    after: int = 0  # stream_cut / garbage / stream_error: deltas sent before the fault
    then: str = "close"  # garbage: "continue" | "close" | "reset" after the bad event

    _ALIASES: ClassVar[dict[str, str]] = {"status": "status_code", "type": "error_type"}

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown outcome kind {self.kind!r}; expected one of {sorted(KINDS)}")
        if self.then not in GARBAGE_THEN:
            raise ValueError(f"then must be one of {sorted(GARBAGE_THEN)}, not {self.then!r}")

    # -- JSON

    @classmethod
    def from_json(cls, data: Outcome | str | Mapping[str, Any]) -> Outcome:
        """Accept an Outcome, a bare kind name, or a JSON dict."""
        if isinstance(data, Outcome):
            return data
        if isinstance(data, str):
            return cls(kind=data)
        known = {f.name for f in dataclasses.fields(cls)}
        kwargs: JsonDict = {}
        for key, value in data.items():
            name = cls._ALIASES.get(key, key)
            if name not in known:
                raise ValueError(f"unknown outcome option {key!r}")
            kwargs[name] = value
        return cls(**kwargs)

    def to_json(self) -> JsonDict:
        reverse = {v: k for k, v in self._ALIASES.items()}
        out: JsonDict = {"kind": self.kind}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name != "kind" and value != f.default:
                out[reverse.get(f.name, f.name)] = value
        return out

    # -- convenience constructors

    @classmethod
    def ok(
        cls,
        text: str | None = None,
        *,
        delay: float = 0.0,
        tool_calls: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        usage: dict[str, int] | None = None,
        chunk_size: int | None = None,
        split_utf8: bool = False,
        keepalive: bool = False,
        crlf: bool = False,
        no_space: bool = False,
        omit_done: bool = False,
        chunk_delay: float = 0.0,
        finish_reason: str | None = None,
    ) -> Outcome:
        return cls(
            "ok",
            finish_reason=finish_reason,
            text=text,
            delay=delay,
            tool_calls=tool_calls,
            headers=headers,
            usage=usage,
            chunk_size=chunk_size,
            split_utf8=split_utf8,
            keepalive=keepalive,
            crlf=crlf,
            no_space=no_space,
            omit_done=omit_done,
            chunk_delay=chunk_delay,
        )

    @classmethod
    def status(
        cls,
        status: int,
        *,
        message: str | None = None,
        code: str | int | None = None,
        error_type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Outcome:
        return cls(
            "status",
            status_code=status,
            message=message,
            code=code,
            error_type=error_type,
            headers=headers,
        )

    @classmethod
    def rate_limited(
        cls,
        retry_after: str | None = "1",
        *,
        retry_after_ms: str | None = None,
        headers: dict[str, str] | None = None,
        message: str | None = None,
    ) -> Outcome:
        merged = dict(headers or {})
        if retry_after is not None:
            merged["retry-after"] = retry_after
        if retry_after_ms is not None:
            merged["retry-after-ms"] = retry_after_ms
        return cls.status(429, message=message, code="rate_limit_exceeded", headers=merged)

    @classmethod
    def context_length_exceeded(cls) -> Outcome:
        return cls.status(
            400,
            message="This model's maximum context length is 8192 tokens.",
            code="context_length_exceeded",
        )

    @classmethod
    def reset(cls) -> Outcome:
        return cls("reset")

    @classmethod
    def hang(cls) -> Outcome:
        return cls("hang")

    @classmethod
    def slow_first_byte(cls, delay: float, text: str | None = None) -> Outcome:
        return cls("slow_first_byte", delay=delay, text=text)

    @classmethod
    def stream_cut(
        cls,
        after: int = 1,
        *,
        text: str | None = None,
        chunk_size: int | None = None,
        chunk_delay: float = 0.0,
    ) -> Outcome:
        return cls(
            "stream_cut", after=after, text=text, chunk_size=chunk_size, chunk_delay=chunk_delay
        )

    @classmethod
    def garbage(
        cls,
        after: int = 0,
        *,
        then: str = "close",
        text: str | None = None,
        chunk_size: int | None = None,
    ) -> Outcome:
        return cls("garbage", after=after, then=then, text=text, chunk_size=chunk_size)

    @classmethod
    def stream_error(
        cls,
        after: int = 0,
        *,
        message: str | None = None,
        text: str | None = None,
        chunk_size: int | None = None,
    ) -> Outcome:
        return cls("stream_error", after=after, message=message, text=text, chunk_size=chunk_size)


OK = Outcome()


@dataclass(frozen=True)
class ChaosMix:
    """Random outcomes by probability; the unlisted probability mass is a plain ``ok``."""

    p429: float = 0.0
    p503: float = 0.0
    preset: float = 0.0  # connection reset
    p500: float = 0.0
    p529: float = 0.0
    retry_after: str = "1"  # retry-after header of the drawn 429s
    seed: int | None = None

    def __post_init__(self) -> None:
        probabilities = self._probabilities()
        if any(not 0.0 <= p <= 1.0 for p in probabilities) or sum(probabilities) > 1.0 + 1e-9:
            raise ValueError(f"chaos probabilities must be in [0, 1] and sum to <= 1: {self}")

    def _probabilities(self) -> tuple[float, ...]:
        return (self.p429, self.p503, self.preset, self.p500, self.p529)

    def draw(self, rng: random.Random) -> Outcome:
        roll = rng.random()
        for probability, make in zip(self._probabilities(), self._makers(), strict=True):
            if roll < probability:
                return make()
            roll -= probability
        return OK

    def _makers(self) -> tuple[Callable[[], Outcome], ...]:
        return (
            lambda: Outcome.rate_limited(self.retry_after),
            lambda: Outcome.status(503),
            Outcome.reset,
            lambda: Outcome.status(500),
            lambda: Outcome.status(529),
        )

    @classmethod
    def from_json(cls, data: Mapping[str, Any], seed: int | None = None) -> ChaosMix:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown chaos options {sorted(unknown)}")
        mix = cls(**data)
        return mix if seed is None else dataclasses.replace(mix, seed=seed)

    def to_json(self) -> JsonDict:
        return dataclasses.asdict(self)
