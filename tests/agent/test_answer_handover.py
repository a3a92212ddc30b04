"""An answer handed to the parser for good (``parser.Answer``) is read as the same text
given plainly, and is let go before its prose is made: a huge answer and prose made
from most of it (trimmed, or before a call) are never held at once (issue 22, finding
13: 64 MiB of prose then a call peaked at 177 MB, a tag in every code span at 176)."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qwen_dev_cli.agent import parser
from qwen_dev_cli.agent.agent import MAX_CALLS_PER_REPLY
from qwen_dev_cli.agent.parser import Answer, parse_reply, parse_text
from qwen_dev_cli.core import ToolCall

from .test_ends_apart import TOOLS, answers, coded, plain, reading

#: Beyond the ASCII of the other strategies: wide characters, an astral one, and a
#: lone surrogate, which the spool must carry through exactly.
WIDE = st.lists(st.sampled_from(["é", "漢字", "\U0001f600", "\ud800", " ", "\n"]), max_size=6)
texts = st.builds(lambda text, wide: text + "".join(wide), st.one_of(answers, plain, coded), WIDE)


@settings(max_examples=500, deadline=None)
@given(texts, st.booleans(), st.sampled_from([0, 1, 7, 64]))
def test_an_answer_handed_over_reads_as_the_text_given_plainly(
    text: str, native: bool, spool_at: int
) -> None:
    calls = [ToolCall("call_1", "read_file", '{"path": "a.py"}')] if native else []
    before = parse_reply(text, calls, TOOLS, limit=MAX_CALLS_PER_REPLY)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(parser, "SPOOL_AT", spool_at)  # the spool taken for short prose
        answer = Answer(text)
        after = parse_reply(answer, calls, TOOLS, limit=MAX_CALLS_PER_REPLY)
        alone = parse_text(Answer(text), set(TOOLS))
    assert reading(after) == reading(before)
    assert reading(alone) == reading(parse_text(text, set(TOOLS)))
    # let go when its prose was spooled; kept as it was otherwise
    assert answer.text in ("", text)


def test_without_a_disk_the_prose_is_made_as_before(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_disk() -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(parser, "SPOOL_AT", 0)
    monkeypatch.setattr(tempfile, "TemporaryFile", no_disk)
    text = "  Some prose.\n" + '<tool_call>{"name": "read_file", "arguments": {}}</tool_call>'
    reply = parse_reply(Answer(text), [], TOOLS)
    assert reply.text == "Some prose."
    assert len(reply.calls) == 1


# In a process of its own: the answer is made, the peak reset (/proc/self/clear_refs),
# then the parse; what the parse added to the peak is printed, in MB.
MEASURE = """
import json, sys
from qwen_dev_cli.agent.parser import Answer, parse_reply

def hwm():
    status = open("/proc/self/status").read()
    return int(status.split("VmHWM:")[1].split()[0]) / 1024

kind, size = sys.argv[1], int(sys.argv[2])
if kind == "called":
    call = '<tool_call>{"name": "read_file", "arguments": {"path": "a.py"}}</tool_call>\\n'
    text = "The quick brown fox jumps over the lazy dog.\\n" * (size // 45) + call
else:  # a tag in every code span, and a blank at the end
    text = "`<tool_call>` " * (size // 14)
answer = Answer(text)
del text
open("/proc/self/clear_refs", "w").write("5")
start = hwm()
reply = parse_reply(answer, [], {"read_file"}, limit=32)
print(json.dumps({"grew": hwm() - start, "calls": len(reply.calls), "prose": len(reply.text)}))
"""


@pytest.mark.parametrize("kind", ["called", "tagged"])
def test_a_huge_answer_is_let_go_before_its_prose_is_made(kind: str) -> None:
    size = 48 << 20
    run = subprocess.run(
        [sys.executable, "-c", MEASURE, kind, str(size)],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    measured = json.loads(run.stdout)
    assert measured["calls"] == (1 if kind == "called" else 0)
    assert measured["prose"] > 0.9 * size
    # The prose replaces the answer: before, the two were held at once, a whole copy
    # more (48 MB). The tagged kind also keeps its code spans while it is read (a tag
    # in each, eight bytes a span: 0.57 MB a MiB).
    share = 0.25 if kind == "called" else 0.75
    assert measured["grew"] < share * size / 2**20, measured
