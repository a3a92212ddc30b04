"""Histories that a crash left with a tool call unanswered: the agent and the session
loader close them with one rule (:mod:`qwen_dev_cli.session.repair`), so the model is
told the same whichever path the conversation took."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from faultserver import Outcome
from qwen_dev_cli.core import Message
from qwen_dev_cli.session.repair import STOPPED
from qwen_dev_cli.session.store import SessionStore

from .harness import PROTOCOLS, harness

CALL = {"id": "c1", "type": "function", "function": {"name": "grep", "arguments": "{}"}}
OLD_CALL = {"id": "c0", "type": "function", "function": {"name": "list_dir", "arguments": "{}"}}


def _crashed_session(store: SessionStore, cwd: Path) -> str:
    """A session killed while its tools ran, written by a version that also left a gap
    further up (which no append-only repair can fill in place)."""
    with store.create(cwd) as session:
        session.append({"role": "user", "content": "list it"})
        session.append({"role": "assistant", "content": "", "tool_calls": [OLD_CALL]})
        session.append({"role": "user", "content": "find it"})
        session.append({"role": "assistant", "content": "", "tool_calls": [CALL]})
    return session.id


async def test_the_agent_and_a_resumed_session_tell_the_model_the_same(tmp_path: Path) -> None:
    store = SessionStore(tmp_path / "sessions")
    session_id = _crashed_session(store, tmp_path)
    raw = store.load(session_id).view  # as the crash left it
    with store.resume(session_id) as resumed:
        repaired = list(resumed.view)
    sent: dict[str, list[dict[str, Any]]] = {}
    for protocol in PROTOCOLS:
        async with harness(tmp_path, protocol) as h:
            h.server.script(Outcome.ok("ok"), Outcome.ok("ok"))
            await h.agent().run(raw, "go on", lambda event: None)
            await h.agent().run(repaired, "go on", lambda event: None)
            by_agent, by_resume = (body["messages"] for body in h.bodies)
        assert by_agent == by_resume
        sent[protocol] = by_agent
    native = sent["native"]
    roles = [m["role"] for m in native[1:]]
    assert roles == ["user", "assistant", "tool", "user", "assistant", "tool", "user"]
    assert [m["content"] for m in native if m["role"] == "tool"] == [STOPPED, STOPPED]


def test_resume_records_the_results_owed_at_the_end_once(tmp_path: Path) -> None:
    store = SessionStore(tmp_path / "sessions")
    session_id = _crashed_session(store, tmp_path)
    store.resume(session_id).close()
    store.resume(session_id).close()
    events = [json.loads(line) for line in store.path_of(session_id).read_text().splitlines()]
    closings = [e for e in events if e.get("closed_on_resume")]
    assert [e["message"]["tool_call_id"] for e in closings] == ["c1"]
    assert closings[0]["message"]["name"] == "grep"


async def test_the_history_passed_in_is_left_as_it_was(tmp_path: Path) -> None:
    history: list[Message] = [
        {"role": "user", "content": "find it"},
        {"role": "assistant", "content": "", "tool_calls": [CALL]},
    ]
    async with harness(tmp_path, "native") as h:
        h.server.script(Outcome.ok("ok"))
        await h.agent().run(history, "go on", lambda event: None)
    assert len(history) == 2
