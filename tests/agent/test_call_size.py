"""A tool call written as text holds at most what a native call's arguments may
(4 MiB): past it, the call is refused unread, in every form it can be written, before
any copy of it is made (issue 22, finding 13: a ``write_file`` of 60 MiB written as
text peaked at 347 MB; native calls were already refused past 4 MiB)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from faultserver import Outcome
from qwen_dev_cli.agent.parser import parse_reply
from qwen_dev_cli.agent.xml_calls import MAX_CALL_CHARS, MAX_REPLY_CALL_CHARS
from qwen_dev_cli.core import ToolCall
from tests.security.test_big_answer import ask

from .test_ends_apart import TOOLS

BIG = "x" * (MAX_CALL_CHARS + 1)
FITS = "x" * (MAX_CALL_CHARS - 200)


def hermes(content: str, *, closed: bool = True) -> str:
    call = json.dumps({"name": "write_file", "arguments": {"path": "a.txt", "content": content}})
    return f"<tool_call>{call}</tool_call>" if closed else f"<tool_call>{call[:-2]}"


def xml(content: str, *, wrapped: bool = True) -> str:
    function = (
        "<function=write_file>\n<parameter=path>\na.txt\n</parameter>\n"
        f"<parameter=content>\n{content}\n</parameter>\n</function>"
    )
    return f"<tool_call>\n{function}\n</tool_call>" if wrapped else function


def xml_json(content: str) -> str:
    arguments = json.dumps({"path": "a.txt", "content": content})
    return f"<tool_call>\n<function=write_file>{arguments}</function>\n</tool_call>"


def marked(content: str) -> str:
    arguments = json.dumps({"path": "a.txt", "content": content})
    return f"✿FUNCTION✿: write_file\n✿ARGS✿: {arguments}"


FORMS = {
    "hermes": hermes,
    "hermes, unclosed": lambda c: hermes(c, closed=False),
    "qwen3-coder": xml,
    "qwen3-coder, bare": lambda c: xml(c, wrapped=False),
    "qwen3-coder, JSON arguments": xml_json,
    "qwen-agent": marked,
}


@pytest.mark.parametrize("form", FORMS)
def test_a_call_past_the_limit_is_refused_unread(form: str) -> None:
    text = "I will write it.\n" + FORMS[form](BIG)
    reply = parse_reply(text, [], TOOLS)
    assert reply.calls == ()
    [problem] = reply.problems
    assert "more than one call may hold (4,194,304): it was not run" in problem.reason
    assert len(problem.raw) <= 2001  # its head and its tail, never the whole
    assert reply.text == "I will write it."


@pytest.mark.parametrize("form", [f for f in FORMS if f != "hermes, unclosed"])
def test_a_call_within_the_limit_is_read_as_before(form: str) -> None:
    reply = parse_reply("I will write it.\n" + FORMS[form](FITS), [], TOOLS)
    [call] = reply.calls
    assert (call.name, call.arguments["path"], len(call.arguments["content"])) == (
        "write_file",
        "a.txt",
        len(FITS),
    )


THIRD = "x" * (MAX_REPLY_CALL_CHARS * 3 // 8)  # three of them pass the reply's room


@pytest.mark.parametrize("form", ["hermes", "qwen3-coder", "qwen3-coder, JSON arguments"])
def test_the_calls_of_one_reply_hold_a_bounded_total(form: str) -> None:
    text = "\n".join(FORMS[form](THIRD) for _ in range(3))
    reply = parse_reply(text, [], TOOLS)
    assert len(reply.calls) == 2
    [problem] = reply.problems
    assert "the reply's calls hold more than 8,388,608 characters in all" in problem.reason
    assert len(problem.raw) <= 2001


def test_json_shown_in_fences_takes_nothing_of_the_replys_room() -> None:
    example = "```json\n" + json.dumps({"rows": [THIRD]}) + "\n```\n"
    fenced = "```json\n" + json.loads(json.dumps(hermes(THIRD)[11:-12])) + "\n```\n"
    reply = parse_reply(example * 3 + fenced * 3, [], TOOLS)
    assert len(reply.calls) == 2  # the examples took nothing; the third call did not fit
    [problem] = reply.problems
    assert "in all: this one was not run" in problem.reason
    assert problem.form == "json"


def test_native_calls_of_one_reply_hold_a_bounded_total() -> None:
    arguments = json.dumps({"path": "a.txt", "content": THIRD})
    calls = [ToolCall(f"call_{n}", "write_file", arguments) for n in range(3)]
    reply = parse_reply("", calls, TOOLS)
    assert [c.id for c in reply.calls] == ["call_0", "call_1"]
    [problem] = reply.problems
    assert (problem.id, problem.name, problem.form) == ("call_2", "write_file", "native")
    assert "in all: this one was not run" in problem.reason
    assert len(problem.raw) <= 2001


@pytest.mark.parametrize("fence", ["```json\n{body}\n```", "{body}"])
def test_json_too_long_for_a_call_stays_prose(fence: str) -> None:
    body = json.dumps({"name": "write_file", "arguments": {"path": "a", "content": BIG}})
    text = fence.replace("{body}", body)
    reply = parse_reply(text, [], TOOLS)
    assert (reply.calls, reply.problems) == ((), ())
    assert len(reply.text) == len(text)


@pytest.mark.slow
async def test_a_huge_call_written_as_text_is_refused_and_held_about_once(
    tmp_path: Path,
) -> None:
    """A real ``ask`` in yolo: 32 MiB of ``write_file`` written as text is not run, the
    model is told, and the answer is held about once (it peaked at 5x before)."""
    answer = xml("y" * (32 << 20))
    (tmp_path / "small").mkdir()
    code, _, err, small, _ = await ask(tmp_path / "small", Outcome.ok("short"))
    assert code == 0, err
    (tmp_path / "big").mkdir()
    outcomes = (Outcome.ok(answer, chunk_size=65536), Outcome.ok("done"))
    code, out, err, big, requests = await ask(tmp_path / "big", *outcomes)
    assert code == 0, err[-2000:]
    assert out.decode() == "done\n"
    assert not (tmp_path / "big" / "project" / "a.txt").exists()
    told = json.dumps(requests[1]["messages"][-1])
    assert "more than one call may hold" in told
    assert big - small < 1.5 * len(answer) / (1 << 20), (small, big)


@pytest.mark.slow
async def test_many_big_native_calls_are_held_within_the_replys_room(tmp_path: Path) -> None:
    """Fifteen native calls of almost 4 MiB (63 MiB, within a response's cap) peaked at
    299 MB (169 after the answer was let go before its prose): each was decoded, made
    JSON again, recorded and sent back. Two run now."""
    content = "z" * (MAX_CALL_CHARS - 100)
    calls = [
        {"name": "write_file", "arguments": json.dumps({"path": f"f{n}.txt", "content": content})}
        for n in range(15)
    ]
    (tmp_path / "small").mkdir()
    code, _, err, small, _ = await ask(tmp_path / "small", Outcome.ok("short"))
    assert code == 0, err
    (tmp_path / "big").mkdir()
    outcomes = (Outcome.ok(tool_calls=calls), Outcome.ok("done"))
    code, out, err, big, requests = await ask(tmp_path / "big", *outcomes)
    assert code == 0, err[-2000:]
    assert out.decode() == "done\n"
    written = sorted(p.name for p in (tmp_path / "big" / "project").glob("f*.txt"))
    assert written == ["f0.txt", "f1.txt"]
    refused = [m for m in requests[1]["messages"] if "in all: this one" in str(m.get("content"))]
    assert len(refused) == 13
    # MB over a short answer: before, 121 (each call joined beside its pieces, all
    # decoded and made JSON again); now the 63 MiB received, two calls, and their JSON.
    assert big - small < 110, (small, big)
