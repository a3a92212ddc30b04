"""The session counts its turns as its events are read and written, so a checkpoint's
turn number needs no second reading of the file (a huge answer in it was held twice):
the count is always what ``turn_marks`` finds in the file."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from qwen_dev_cli.session.store import SessionStore
from qwen_dev_cli.session.turns import turn_marks


def _in_file(store: SessionStore, session_id: str) -> int:
    return len(turn_marks(store.load(session_id).events, live=False))


@pytest.mark.parametrize("seed", range(20))
def test_the_count_is_the_files(seed: int, tmp_path: Path) -> None:
    rng = random.Random(seed)
    store = SessionStore(tmp_path / "sessions")
    session = store.create(tmp_path)
    session_id = session.id
    for _ in range(rng.randrange(1, 30)):
        step = rng.randrange(8)
        if step == 0:
            session.note("turn_start", turn=session.turns + 1, prompt="p")
        elif step == 1:
            session.note("usage", tokens=3)
        elif step == 2:
            session.append({"role": "user", "content": rng.choice(["go", ""])})
        elif step == 3:
            session.append({"role": "user", "content": [{"type": "text", "text": "x"}]})
        elif step in (4, 5):
            session.append({"role": rng.choice(["assistant", "tool"]), "content": "ok"})
        elif step == 6:
            session.rewound([], 1)
        else:  # closed and resumed: counted again from the file
            session.close()
            session = store.resume(session_id)
        assert session.turns == _in_file(store, session_id)
    session.close()
