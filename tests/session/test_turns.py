"""A session's turns read back from its file, rewinds, and resuming before a turn."""

from __future__ import annotations

from pathlib import Path

import pytest

from qwen_dev_cli.session.store import SessionError, SessionStore
from qwen_dev_cli.session.turns import turn_marks, view_before


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


def three_turns(store: SessionStore, tmp_path: Path) -> str:
    session = store.create(tmp_path)
    for n in (1, 2, 3):
        session.note("turn_start", turn=n, prompt=f"question {n}", checkpoint=f"c{n}")
        session.append(user(f"question {n}\nmore"))
        if n == 2:
            session.note("checkpoint", turn=2, commit="x", command="sed -i s/a/b/ f")
        session.append(assistant(f"answer {n}"))
        session.note("checkpoint", turn=n, commit=f"e{n}", at="end")
    session.close()
    return session.id


def test_turns_are_read_with_their_checkpoints_and_commands(tmp_path: Path) -> None:
    store = SessionStore(tmp_path / "sessions")
    session_id = three_turns(store, tmp_path)
    marks = turn_marks(store.load(session_id).events)
    assert [(m.number, m.prompt, m.checkpoint, m.end) for m in marks] == [
        (1, "question 1", "c1", "e1"),
        (2, "question 2", "c2", "e2"),
        (3, "question 3", "c3", "e3"),
    ]
    assert marks[1].commands == ["sed -i s/a/b/ f"]
    assert view_before(store.load(session_id).events, 3) == [
        user("question 1\nmore"),
        assistant("answer 1"),
        user("question 2\nmore"),
        assistant("answer 2"),
    ]
    assert view_before(store.load(session_id).events, 1) == []


def test_resume_at_a_turn_opens_the_conversation_before_it_and_says_so_in_the_file(
    tmp_path: Path,
) -> None:
    store = SessionStore(tmp_path / "sessions")
    session_id = three_turns(store, tmp_path)
    with store.resume(session_id, at_turn=2) as session:
        assert session.view == [user("question 1\nmore"), assistant("answer 1")]
        assert len(session.messages) == 6  # the history keeps everything
        session.note("turn_start", turn=4, prompt="question 4", checkpoint="c4")
        session.append(user("question 4"))
        session.append(assistant("answer 4"))
    loaded = store.load(session_id)
    assert [m["content"] for m in loaded.view] == [
        "question 1\nmore",
        "answer 1",
        "question 4",
        "answer 4",
    ]
    # Turn 3 was rewound away, turn 2 is where the conversation went back to (listed, for
    # its files); numbers are never reused.
    assert [(m.number, m.rewound) for m in turn_marks(loaded.events)] == [
        (1, False),
        (2, True),
        (4, False),
    ]
    assert [m.number for m in turn_marks(loaded.events, live=False)] == [1, 2, 3, 4]
    # Resuming again plainly gives the rewound conversation, not the old one.
    with store.resume(session_id) as again:
        assert [m["content"] for m in again.view][-1] == "answer 4"
        assert len(again.view) == 4


def test_resume_at_a_turn_that_does_not_exist_is_a_session_error(tmp_path: Path) -> None:
    store = SessionStore(tmp_path / "sessions")
    session_id = three_turns(store, tmp_path)
    with pytest.raises(SessionError, match="has turns 1 to 3, not a turn 7"):
        store.resume(session_id, at_turn=7)
    store.resume(session_id).close()  # the failed attempt left it unlocked


def test_a_file_from_before_turns_were_recorded_has_a_turn_per_user_message(
    tmp_path: Path,
) -> None:
    store = SessionStore(tmp_path / "sessions")
    session = store.create(tmp_path)
    for n in (1, 2):
        session.append(user(f"old {n}"))
        session.append(assistant(f"reply {n}"))
    session.close()
    events = store.load(session.id).events
    marks = turn_marks(events)
    assert [(m.number, m.prompt, m.checkpoint) for m in marks] == [
        (1, "old 1", None),
        (2, "old 2", None),
    ]
    assert view_before(events, 2) == [user("old 1"), assistant("reply 1")]


def test_a_rewind_after_a_compaction_replays_to_the_compacted_view(tmp_path: Path) -> None:
    store = SessionStore(tmp_path / "sessions")
    session = store.create(tmp_path)
    session.note("turn_start", turn=1, prompt="q1")
    session.append(user("q1"))
    session.append(assistant("a1"))
    summary = [user("summary of q1"), assistant("a1")]
    session.compacted(summary, before=10, after=5)
    session.note("turn_start", turn=2, prompt="q2")
    session.append(user("q2"))
    session.append(assistant("a2"))
    session.rewound(view_before(store.load(session.id).events, 2) or [], 2)
    assert session.view == summary
    session.close()
    assert store.load(session.id).view == summary


def test_a_file_with_odd_fields_is_read_without_failing() -> None:
    # A session file edited by hand or by another version: a turn's time that is not a
    # number (or null) made /rewind, and the next turn's start, fail with ValueError.
    events: list[dict[str, object]] = [
        {"type": "header"},
        {"type": "turn_start", "turn": 1, "ts": "yesterday", "prompt": "q1", "checkpoint": 5},
        {"type": "message", "ts": None, "message": user("q1")},
        {"type": "message", "ts": 1e300, "message": user("q2")},
        {"type": "checkpoint", "turn": 1, "commit": ["x"], "at": "end"},
    ]
    marks = turn_marks(events)
    assert [(m.number, m.ts, m.prompt, m.checkpoint, m.end) for m in marks] == [
        (1, 0.0, "q1", None, None),
        (2, 0.0, "q2", None, None),
    ]
