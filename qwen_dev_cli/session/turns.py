"""A session's turns, read from its events: what ``/rewind`` lists and ``--at N`` opens.

The REPL, and a headless turn that may change files (``ask``, ``-p``, stream-json
input: ``ui/checkpointing.py``), records a ``turn_start`` event before each turn (its
number, the first line of the prompt, the checkpoint of the workspace taken then, or why
there is none), a ``checkpoint`` event before each approved command and at the turn's
end, and a ``rewind`` event when the conversation goes back (the view from then on, as
a compaction does). A file written before turns were recorded has a turn at each user
message instead, without checkpoints.

Turn N is the N-th turn start in the file, whatever was rewound since: numbers are
never reused. The turns *live* in the conversation are those not rewound away, and the
turn the conversation was last taken back to (its point "before" is where the
conversation now starts again, so ``/rewind`` can still bring the files there: what
``--resume ID --at N`` then ``/rewind`` does). The conversation before turn N is the
view replayed up to its start.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..core import Message


@dataclass
class TurnMark:
    """One turn of a session.

    Args:
        number: 1 for the first turn of the file, and so on.
        index: the position of its start in the file's events.
        ts: when it started (seconds since the epoch).
        prompt: the first line of the user's message.
        checkpoint: the workspace's checkpoint taken before it (``None``: none).
        unprotected: why there is no checkpoint, if there is none.
        end: the checkpoint at its end (``None``: not recorded).
        commands: the approved commands it ran, in order.
        rewound: the conversation was taken back to before this turn (its messages
            are gone from it; the point before it stays, for the files).
    """

    number: int
    index: int
    ts: float
    prompt: str
    checkpoint: str | None = None
    unprotected: str | None = None
    end: str | None = None
    commands: list[str] = field(default_factory=list)
    rewound: bool = False


def turn_marks(events: list[dict[str, Any]], *, live: bool = True) -> list[TurnMark]:
    """The turns of a session's events (the header first), oldest first; with ``live``
    only those still in the conversation (not rewound away)."""
    every: list[TurnMark] = []
    alive: list[TurnMark] = []
    started = False  # a turn_start waits for its user message
    for index, event in enumerate(events):
        kind = event.get("type")
        if kind == "turn_start":
            mark = TurnMark(
                number=len(every) + 1,
                index=index,
                ts=_seconds(event.get("ts")),
                prompt=str(event.get("prompt", "")),
                checkpoint=_text(event.get("checkpoint")),
                unprotected=_text(event.get("unprotected")),
            )
            every.append(mark)
            alive.append(mark)
            started = True
        elif kind == "message":
            message = event.get("message")
            if not isinstance(message, dict):
                continue
            is_user = message.get("role") == "user"
            if is_user and not started and isinstance(message.get("content"), str):
                mark = TurnMark(
                    len(every) + 1, index, _seconds(event.get("ts")), first_line(message)
                )
                every.append(mark)
                alive.append(mark)
            started = False
        elif kind == "checkpoint" and every:
            _attach(every, event)
        elif kind == "rewind" and isinstance(event.get("turn"), int):
            number = event["turn"]
            alive = [m for m in alive if m.number <= number]
            for mark in alive:
                mark.rewound = mark.number == number
    return alive if live else every


def view_before(events: list[dict[str, Any]], number: int) -> list[Message] | None:
    """The conversation as the model saw it just before turn ``number`` started
    (``None``: the file has no such turn)."""
    mark = next((m for m in turn_marks(events, live=False) if m.number == number), None)
    if mark is None:
        return None
    view: list[Message] = []
    for event in events[1 : mark.index]:
        kind = event.get("type")
        if kind == "message" and isinstance(event.get("message"), dict):
            view.append(event["message"])
        elif kind in ("compaction", "rewind") and isinstance(event.get("view"), list):
            view = [m for m in event["view"] if isinstance(m, dict)]
    return view


def first_line(message: Message) -> str:
    content = message.get("content")
    text = content if isinstance(content, str) else ""
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def _attach(marks: list[TurnMark], event: dict[str, Any]) -> None:
    number = event.get("turn")
    mark = next((m for m in reversed(marks) if m.number == number), None)
    if mark is None:
        return
    command = event.get("command")
    if isinstance(command, str):
        mark.commands.append(command)
    elif event.get("at") == "end":
        mark.end = _text(event.get("commit"))


def _seconds(value: object) -> float:
    """A time from the file; 0 when it is not one (a file edited by hand: a string,
    null, or a number no clock shows, which ``time.localtime`` refuses)."""
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value < 1e11:
        return float(value)
    return 0.0


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
