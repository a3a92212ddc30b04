"""The session store: append-only JSONL, locks, crash leftovers, listing and pruning."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from qwen_dev_cli.session.export import to_json, to_markdown
from qwen_dev_cli.session.store import Session, SessionError, SessionLocked, SessionStore

USER = {"role": "user", "content": "why is the build red?"}
ANSWER = {"role": "assistant", "content": "A test fails in `test_api.py`."}


@pytest.fixture
def store(tmp_path: Path) -> SessionStore:
    return SessionStore(tmp_path / "sessions")


def test_messages_are_on_disk_as_soon_as_appended(store: SessionStore, tmp_path: Path) -> None:
    session = store.create(tmp_path)
    session.append(USER)
    lines = session.path.read_text().splitlines()
    assert json.loads(lines[0])["type"] == "header"
    assert json.loads(lines[1])["message"] == USER
    session.close()


def test_files_are_private(store: SessionStore, tmp_path: Path) -> None:
    with store.create(tmp_path) as session:
        assert stat.S_IMODE(session.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.root.stat().st_mode) == 0o700


def test_resume_continues_the_conversation(store: SessionStore, tmp_path: Path) -> None:
    with store.create(tmp_path) as session:
        session.append(USER)
        session.append(ANSWER)
        session_id = session.id
    with store.resume(session_id[:12]) as resumed:
        assert resumed.messages == [USER, ANSWER]
        resumed.append({"role": "user", "content": "and now?"})
    assert len(store.load(session_id).messages) == 3


def test_an_open_session_is_locked_against_a_second_writer(
    store: SessionStore, tmp_path: Path
) -> None:
    session = store.create(tmp_path)
    with pytest.raises(SessionLocked):
        store.resume(session.id)
    with pytest.raises(SessionLocked):
        store.delete(session.id)
    session.close()
    store.resume(session.id).close()


def test_lock_holds_across_processes(store: SessionStore, tmp_path: Path) -> None:
    session = store.create(tmp_path)
    session.close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys, time
                from pathlib import Path
                from qwen_dev_cli.session.store import SessionStore
                s = SessionStore(Path({str(store.root)!r})).resume({session.id!r})
                print("locked", flush=True)
                sys.stdin.read()
                """
            ),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(SessionLocked, match="open in another qwen-dev"):
            store.resume(session.id)
    finally:
        holder.communicate("")
    store.resume(session.id).close()


def test_torn_last_line_is_ignored(store: SessionStore, tmp_path: Path) -> None:
    with store.create(tmp_path) as session:
        session.append(USER)
        session.append(ANSWER)
    with session.path.open("a") as handle:
        handle.write('{"type": "message", "message": {"role": "assistant", "content": "half')
    loaded = store.load(session.id)
    assert loaded.messages == [USER, ANSWER]
    assert loaded.torn_lines == 1
    with store.resume(session.id) as resumed:
        resumed.append({"role": "user", "content": "still works"})
    assert store.load(session.id).messages[-1]["content"] == "still works"


def test_a_dangling_tool_call_is_closed_on_resume(store: SessionStore, tmp_path: Path) -> None:
    call = {"id": "call_1", "type": "function", "function": {"name": "run_command"}}
    with store.create(tmp_path) as session:
        session.append(USER)
        session.append({"role": "assistant", "content": "", "tool_calls": [call]})
    with store.resume(session.id) as resumed:
        closing = resumed.messages[-1]
    assert closing["role"] == "tool"
    assert closing["tool_call_id"] == "call_1"
    assert "not run" in closing["content"]
    # ...and the closing is on disk, so the next resume does not add another.
    with store.resume(session.id) as again:
        assert len(again.messages) == 3


def test_interrupted_answer_is_kept_and_marked(store: SessionStore, tmp_path: Path) -> None:
    with store.create(tmp_path) as session:
        session.append(USER)
        session.append({"role": "assistant", "content": "The failing te"}, interrupted=True)
    loaded = store.load(session.id)
    assert loaded.messages[-1]["content"] == "The failing te"
    assert "(interrupted)" in to_markdown(loaded)


def test_list_latest_and_ids(store: SessionStore, tmp_path: Path) -> None:
    elsewhere = tmp_path / "other"
    with store.create(tmp_path) as first:
        first.append(USER)
    time.sleep(0.01)
    with store.create(elsewhere) as second:
        second.append({"role": "user", "content": "x" * 200})
    infos = store.list()
    assert [i.id for i in infos] == [second.id, first.id]
    assert infos[1].title == USER["content"]
    assert len(infos[0].title) == 80
    latest = store.latest(tmp_path)
    assert latest is not None
    assert latest.id == first.id
    assert store.latest(tmp_path / "nowhere") is None


def test_the_kind_is_recorded_and_latest_can_pick_the_latest_chat(
    store: SessionStore, tmp_path: Path
) -> None:
    with store.create(tmp_path) as chat:
        chat.append(USER)
    old_chat = store.path_of(chat.id)
    os.utime(old_chat, (time.time() - 60, time.time() - 60))
    with store.create(tmp_path, kind="ask") as asked:
        asked.append(USER)
    assert [(i.id, i.kind) for i in store.list()] == [(asked.id, "ask"), (chat.id, "chat")]
    assert store.load(asked.id).info.kind == "ask"
    latest = store.latest(tmp_path)
    assert latest is not None
    assert latest.id == asked.id
    latest_chat = store.latest(tmp_path, kind="chat")
    assert latest_chat is not None
    assert latest_chat.id == chat.id


def test_a_session_from_before_kinds_counts_as_a_chat(store: SessionStore, tmp_path: Path) -> None:
    with store.create(tmp_path) as session:
        session.append(USER)
    path = store.path_of(session.id)
    lines = path.read_text().splitlines()
    header = json.loads(lines[0])
    del header["kind"]
    path.write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")
    assert store.list()[0].kind == "chat"
    assert store.load(session.id).info.kind == "chat"


def test_unknown_and_ambiguous_ids_are_clear_errors(store: SessionStore, tmp_path: Path) -> None:
    store.create(tmp_path).close()
    store.create(tmp_path).close()
    with pytest.raises(SessionError, match="no session"):
        store.load("nope")
    with pytest.raises(SessionError, match="several"):
        store.load(time.strftime("%Y"))
    with pytest.raises(SessionError, match="not a session id"):
        store.load("../etc/passwd")


def test_a_file_that_is_not_a_session_is_refused(store: SessionStore) -> None:
    store.root.mkdir(parents=True)
    (store.root / "junk.jsonl").write_text("hello\n")
    with pytest.raises(SessionError, match="not a qwen-dev session"):
        store.load("junk")
    assert store.list() == []


def test_prune_removes_only_old_closed_sessions(store: SessionStore, tmp_path: Path) -> None:
    with store.create(tmp_path) as old:
        old.append(USER)
    month_ago = time.time() - 31 * 86400
    os.utime(old.path, (month_ago, month_ago))
    kept = store.create(tmp_path)
    old_but_open = store.create(tmp_path)
    os.utime(old_but_open.path, (month_ago, month_ago))
    assert store.prune(30) == 1
    assert not old.path.exists()
    assert kept.path.exists()
    assert old_but_open.path.exists()
    kept.close()
    old_but_open.close()


def test_exports(store: SessionStore, tmp_path: Path) -> None:
    with store.create(tmp_path) as session:
        session.append(USER)
        session.append(ANSWER)
    loaded = store.load(session.id)
    document = to_markdown(loaded)
    assert document.startswith(f"# {USER['content']}")
    assert ANSWER["content"] in document
    assert json.loads(to_json(loaded))["messages"] == [USER, ANSWER]


# --- a disk that refuses: the conversation goes on, unsaved (issue 11, item 5) ---------


def test_a_session_that_cannot_be_created_lives_in_memory(tmp_path: Path) -> None:
    (tmp_path / "home").write_text("a file where the folder should be")
    warnings: list[str] = []
    store = SessionStore(tmp_path / "home" / "sessions", warn=warnings.append)
    session = store.create(tmp_path)
    session.append({"role": "user", "content": "hi"})
    session.append({"role": "assistant", "content": "hello"})
    assert [m["content"] for m in session.messages] == ["hi", "hello"]
    assert session.unsaved is not None
    assert len(warnings) == 1
    assert "goes on, unsaved" in warnings[0]


def test_a_full_disk_mid_session_costs_the_record_not_the_conversation(tmp_path: Path) -> None:
    warnings: list[str] = []
    with open("/dev/full", "a", encoding="utf-8") as full:  # every write: ENOSPC
        session = Session("s", tmp_path / "s.jsonl", str(tmp_path), full, warn=warnings.append)
        session.append({"role": "user", "content": "hi"})
        session.append({"role": "assistant", "content": "hello"})
    assert len(session.messages) == 2
    assert warnings == [warnings[0]]
    assert "No space left" in warnings[0]


def test_a_session_of_a_given_id(store: SessionStore, tmp_path: Path) -> None:
    wanted = "3f2b8c1e-0d6a-4e8e-9d7e-2f1c4b5a6d7e"
    with store.create(tmp_path, kind="ask", session_id=wanted) as session:
        assert session.id == wanted
        session.append({"role": "user", "content": "hi"})
    assert store.load(wanted).info.id == wanted
    with pytest.raises(SessionError, match="exists already"):
        store.create(tmp_path, session_id=wanted)


@pytest.mark.parametrize("bad", ["../x", "a/b", ".hidden", "-rf", "", "a" * 129, "a b", "é"])
def test_a_given_id_must_be_a_safe_file_name(store: SessionStore, tmp_path: Path, bad: str) -> None:
    with pytest.raises(SessionError, match="not a usable session id"):
        store.create(tmp_path, session_id=bad)
    assert not list(tmp_path.rglob("*.jsonl"))


def test_a_title_leaves_attached_files_out(store: SessionStore, tmp_path: Path) -> None:
    # The REPL appends each @path's text to the message; the title is what was typed.
    attached = "review @api.py please\n\nFile `api.py`:\n```\nimport os\n```"
    with store.create(tmp_path) as session:
        session.append({"role": "user", "content": attached})
    (info,) = store.list()
    assert info.title == "review @api.py please"
    assert store.load(info.id).messages[0]["content"] == attached  # the message is whole
