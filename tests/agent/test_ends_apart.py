"""Plain prose streamed with the blanks at its ends held apart (``ends_apart``, issue 22
finding 13): the agent's parser reads it as it read the whole answer, and nobody else
sees a difference. The old reading is the parser given the whole answer, as the agent
gave it before."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from faultserver import FaultServer, Outcome
from qwen_dev_cli.agent.agent import MAX_CALLS_PER_REPLY
from qwen_dev_cli.agent.parser import ParsedReply, parse_reply, parse_text
from qwen_dev_cli.agent.turn import MessageAdded
from qwen_dev_cli.core import LLMClient, OpenAICompatProvider, ToolCall
from qwen_dev_cli.core.providers.assembler import StreamAssembler
from qwen_dev_cli.core.types import ChatResult, StreamEnd
from qwen_dev_cli.tools import DEFAULT_TOOLS

from .harness import harness

TOOLS = {tool.name: tool.spec()["function"]["parameters"] for tool in DEFAULT_TOOLS}
#: Every kind of blank ``str.strip()`` takes, and some it leaves (``\u200b``).
BLANKS = " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0\u2028\u3000"
#: What answers are made of: prose, blanks, and the pieces of every form of call, of
#: code, and of what the parser takes out of prose.
FRAGMENTS = [
    "word",
    "Hello, world.",
    " ",
    "\n",
    "\n\n\n",
    "  \t\n",
    "    ",
    "\u200b",
    "\x0c",
    "\r\n",
    "<tool_call>",
    "</tool_call>",
    '{"name": "read_file", "arguments": {"path": "a.py"}}',
    '{"name": "read_file", "arguments": {"path": ',
    "<function=run_command>",
    "<function=write_file>",
    "<parameter=command>",
    "<parameter=path>",
    "<parameter=content>",
    "ls -la\n\n",
    "</parameter>",
    "</function>",
    '```json\n{"name": "read_file", "arguments": {"path": "a.py"}}\n```',
    "```json\n",
    "```\n",
    "~~~\n",
    "`x`",
    "<tool_response>",
    "</tool_response>",
    "<|im_end|>",
    "\u273fFUNCTION\u273f: read_file\n",
    '\u273fARGS\u273f: {"path": "a.py"}\n',
    "{",
    "}",
    "[]",
    "<b>",
    "[",
    "]",
    "```json\n[]\n```\n",
    '```json\n[name: "read_file"\n```\n',
]
#: Prose with code in it, fenced, indented or inline, and what is left of calls without
#: a tag, a JSON object or list, or Qwen-Agent's marker: it comes with its blanks apart.
CODE = [
    "word",
    " ",
    "\n",
    "\n\n",
    "    ",
    "\t",
    "`x`",
    "`",
    "``",
    "~",
    "```\n",
    "~~~\n",
    "```json\n",
    '"name": "read_file", "arguments": "a.py"',
    "tool_call>",
    "function=run_command>",
    "parameter=command>",
    "/tool_response>",
    "|im_end|>",
    "FUNCTION\u2740",
    "}",
    "]",
    "{x}",
    '{"name": "read_file", "arguments": {}}',
    "[link](a.py)",
    "[]",
    "<b>",
    "a < b",
    "<|im_end|>",
    "<tool_",
    "call>",
    "<TOOL_CALL>",
    "<function",
    "=read_file>",
    "\u200b",
    "\r\n",
]
#: Runs of blanks at an end: one of each, or an indentation.
blanks = st.lists(st.sampled_from([*BLANKS, "    ", "\n\n"]), max_size=5).map("".join)
bodies = st.lists(st.sampled_from(FRAGMENTS), max_size=14).map("".join)
answers = st.builds(lambda lead, body, trail: lead + body + trail, blanks, bodies, blanks)
plain = st.builds(
    lambda lead, body, trail: lead + body + trail,
    blanks,
    st.text(alphabet="abc .,\n\t" + BLANKS, max_size=60),
    blanks,
)
coded = st.builds(
    lambda lead, body, trail: lead + body + trail,
    blanks,
    st.lists(st.sampled_from([*CODE, *BLANKS]), max_size=16).map("".join),
    blanks,
)


def streamed(text: str, cuts: list[int], *, ends_apart: bool) -> tuple[str, str, str]:
    """``text`` through the stream assembler, in deltas cut at ``cuts``: (lead, text,
    trail) of its reply."""
    assembler = StreamAssembler("p", "m", ends_apart=ends_apart)
    bounds = [0, *sorted({c % (len(text) + 1) for c in cuts}), len(text)]
    for start, end in itertools.pairwise(bounds):
        if start < end:
            chunk = {"choices": [{"delta": {"content": text[start:end]}}]}
            assert assembler.feed(json.dumps(chunk)) == text[start:end]  # shown as it came
    reply = assembler.reply(None)
    return reply.lead, reply.text, reply.trail


def reading(reply: ParsedReply) -> tuple[Any, ...]:
    """What a parse found, without the call ids it makes up."""
    return (
        reply.text,
        [(c.name, c.arguments, c.repairs) for c in reply.calls],
        [(p.reason, p.raw, p.id, p.name, p.form) for p in reply.problems],
        reply.unread,
    )


def plain_prose(text: str) -> bool:
    """Whether ``text`` holds nothing that could make a call: no tag the parser reads,
    no Qwen-Agent marker, and not both a fence and a JSON object or list."""
    if re.search(r"<tool_call|</?tool_response", text, re.IGNORECASE):
        return False
    if "<function=" in text or "\u273f" in text:
        return False
    return not (("```" in text or "~~~" in text) and ("{" in text or "[" in text))


cuts = st.lists(st.integers(min_value=0, max_value=400), max_size=6)


@settings(max_examples=400, deadline=None)
@given(answers, cuts)
def test_the_assembler_gives_the_whole_text_and_holds_apart_only_the_blanks_of_prose(
    text: str, at: list[int]
) -> None:
    assert streamed(text, at, ends_apart=False) == ("", text, "")
    lead, core, trail = streamed(text, at, ends_apart=True)
    assert lead + core + trail == text
    if not plain_prose(text):
        assert (lead, core, trail) == ("", text, "")
    else:
        assert core == text.strip()


@pytest.mark.parametrize(
    ("lead", "body"),
    [
        ("    ", "```json\n[]\n```"),
        ("    ", '```json\n[name: "read_file"\n```'),
        ("    ", '```json\n{"name": "read_file", "arguments": {"path": "a"}}\n```'),
        ("    ", "<function=read_file>\n<parameter=path>\na\n</parameter>\n</function>"),
        ("    ", "\u273fFUNCTION\u273f: read_file\n\u273fARGS\u273f: "),
        ("\x0b", "<tool_response>\nmade up\n</tool_response>\nDone."),
    ],
)
def test_an_answer_the_blanks_at_its_start_change_comes_whole(lead: str, body: str) -> None:
    """A fence with a JSON list or object in it, a tag and Qwen-Agent's marker can each
    make a call, which an indentation before it makes code (and a line that begins with
    a blank other than a space or a tab is no made-up result): such an answer comes
    whole, read as it was."""
    text = lead + body + "\n"
    assert reading(parse_text(text.strip(), TOOLS)) != reading(parse_text(text, TOOLS))
    assert streamed(text, [3, 9], ends_apart=True) == ("", text, "")


@settings(max_examples=400, deadline=None)
@given(st.one_of(plain, coded), cuts)
def test_prose_comes_trimmed_with_its_blanks_apart(text: str, at: list[int]) -> None:
    assume(plain_prose(text))
    blank_start, trimmed = len(text) - len(text.lstrip()), text.strip()
    assert streamed(text, at, ends_apart=True) == (
        text[:blank_start],
        trimmed,
        text[blank_start + len(trimmed) :],
    )


@settings(max_examples=600, deadline=None)
@given(st.one_of(answers, plain, coded), cuts, st.booleans())
def test_the_parser_reads_what_the_assembler_gives_as_it_read_the_whole_answer(
    text: str, at: list[int], native: bool
) -> None:
    _, core, _ = streamed(text, at, ends_apart=True)
    calls = [ToolCall("call_1", "read_file", '{"path": "a.py"}')] if native else []
    before = parse_reply(text, calls, TOOLS, limit=MAX_CALLS_PER_REPLY)
    after = parse_reply(core, calls, TOOLS, limit=MAX_CALLS_PER_REPLY)
    assert reading(after) == reading(before)
    # and with no limit, and knowing tools only by name
    assert reading(parse_text(core, set(TOOLS))) == reading(parse_text(text, set(TOOLS)))


@settings(max_examples=300, deadline=None)
@given(st.one_of(plain, coded), cuts)
def test_the_prose_of_a_plain_answer_is_the_string_streamed_not_a_copy(
    text: str, at: list[int]
) -> None:
    assume(plain_prose(text))
    _, core, _ = streamed(text, at, ends_apart=True)
    if "\n" in core or "<|" in core:  # runs of blank lines are made one blank line,
        return  # special tokens are taken out: a new string
    reply = parse_reply(core, [], TOOLS, limit=MAX_CALLS_PER_REPLY)
    if reply.calls:  # the answer is one JSON call: no prose
        assert reply.text == ""
        return
    assert reply.text is core


ANSWER = "\n\n  The answer, in prose.\n\nWith a second paragraph.  \n\n\n"


async def test_the_client_holds_the_ends_apart_only_when_asked() -> None:
    async with FaultServer() as server:
        server.script(*[Outcome.ok(ANSWER, chunk_size=5)] * 3)
        client = LLMClient([OpenAICompatProvider("p", base_url=server.base_url, model="m")])
        try:
            messages = [{"role": "user", "content": "hi"}]
            results: list[ChatResult] = []
            for ends_apart in (False, True):
                async for event in client.stream(messages, ends_apart=ends_apart):
                    if isinstance(event, StreamEnd):
                        results.append(event.result)
            results.append(await client.chat(messages))
        finally:
            await client.aclose()
    whole, apart, chat = results
    assert (whole.lead, whole.text, whole.trail) == ("", ANSWER, "")
    assert (apart.lead, apart.text, apart.trail) == ("\n\n  ", ANSWER.strip(), "  \n\n\n")
    assert apart.whole() == whole.whole() == chat.text == ANSWER
    assert apart.usage == whole.usage  # estimated from the whole text, blanks and all


async def test_an_agent_answer_with_blank_ends_is_recorded_as_before(tmp_path: Path) -> None:
    async with harness(tmp_path, "text") as h:
        h.server.script(Outcome.ok(ANSWER, chunk_size=3))
        result = await h.agent().run([], "hi", h.events.append)
    assert result.text == "The answer, in prose.\n\nWith a second paragraph."
    added = [e for e in h.events if isinstance(e, MessageAdded) and e.reply is not None]
    assert [e.message["content"] for e in added] == [result.text]
    reply = added[0].reply
    assert reply is not None
    assert (reply.lead, reply.text, reply.trail) == ("", result.text, "")


async def test_a_call_in_code_indented_at_the_start_stays_prose(tmp_path: Path) -> None:
    """The blanks that begin an answer can make it code: an answer that is not plain
    comes whole, and the call written indented is not run."""
    answer = "    <function=run_command>\n<parameter=command>\ntouch ran.txt\n</parameter>\n"
    answer += "</function>\n"
    async with harness(tmp_path, "text") as h:
        h.server.script(Outcome.ok(answer, chunk_size=2))
        result = await h.agent("yolo").run([], "show me", h.events.append)
    assert result.text == answer.strip()
    assert result.tool_calls == []
    assert not (h.workspace / "ran.txt").exists()
