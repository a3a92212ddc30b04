"""Tool-call markup is kept out of the streamed text, however the stream is split."""

from __future__ import annotations

import time
import tracemalloc

from hypothesis import given, settings
from hypothesis import strategies as st

from qwen_dev_cli.agent.stream_filter import ToolMarkupFilter

CALL = '<tool_call>\n{"name": "read_file", "arguments": {"path": "a.py"}}\n</tool_call>'
XML = "<function=read_file>\n<parameter=path>\na.py\n</parameter>\n</function>"


def shown(pieces: list[str]) -> str:
    markup = ToolMarkupFilter({"read_file", "list_dir"})
    return "".join(markup.feed(piece) for piece in pieces) + markup.flush()


def split(text: str, cuts: list[int]) -> list[str]:
    points = sorted({c % (len(text) + 1) for c in cuts})
    return [text[a:b] for a, b in zip([0, *points], [*points, len(text)], strict=True)]


CASES = {
    f"Let me look.\n{CALL}\nDone.": "Let me look.\nDone.",
    f"{CALL}\n{CALL}": "",
    "Mid-line, `<tool_call>` is prose.": "Mid-line, `<tool_call>` is prose.",
    "a < b and a <tool but not a tag": "a < b and a <tool but not a tag",
    "Hi\n<tool_call> is how calls begin": "Hi\n<tool_call> is how calls begin",
    'Cut:\n<tool_call>\n{"name": "read_file", "argu': "Cut:\n",
    "": "",
    # Qwen3-Coder's XML
    f"Let me look.\n<tool_call>\n{XML}\n</tool_call>\nDone.": "Let me look.\nDone.",
    f"Sure! Let me check.<tool_call>\n{XML}\n</tool_call>": "Sure! Let me check.",
    f"Checking. <tool_call>\n\n{XML}\n</tool_call>\nThen more.": "Checking.\nThen more.",
    f"Reading.\n{XML}\nDone.": "Reading.\nDone.",
    f"Reading.{XML}": "Reading.",
    f"{XML}\n{XML}": "",
    "Cut:\n<tool_call>\n<function=read_file>\n<parameter=pa": "Cut:\n",
    "Cut after the name:\n<function=read_file>": "Cut after the name:\n",
    "Use `<function=read_file>` tags.": "Use `<function=read_file>` tags.",
    f"Inline ``{XML}`` code.": f"Inline ``{XML}`` code.",
    f"```xml\n{XML}\n```\nShown.": f"```xml\n{XML}\n```\nShown.",
    "The <function=NAME> tag opens a call.": "The <function=NAME> tag opens a call.",
    "Unknown:\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n</function>": (
        "Unknown:\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n</function>"
    ),
    "Mid <tool_call> then words": "Mid <tool_call> then words",
    # Qwen-Agent's markers
    'I\'ll read it.\n✿FUNCTION✿: read_file\n✿ARGS✿: {"path": "a.py"}\n✿RESULT✿: 1': (
        "I'll read it.\n"
    ),
    "Markers in code: `✿FUNCTION✿`.": "Markers in code: `✿FUNCTION✿`.",
    # an indented code block is code: its calls are examples, shown (and not run)
    "Like this:\n\n" + "".join(f"    {line}\n" for line in XML.split("\n")): (
        "Like this:\n\n" + "".join(f"    {line}\n" for line in XML.split("\n"))
    ),
    f"Like this:\n\n\t{CALL}\nok": f"Like this:\n\n\t{CALL}\nok",
    f"Not code after a paragraph:\n    {XML}\nok": "Not code after a paragraph:\nok",
    # an unclosed <tool_call> is a call if what it hides begins like one, else prose
    "Hi\n<tool_call>\nnot json at all": "Hi\n<tool_call>\nnot json at all",
    "Hi\n<tool_call>\n   \n  [1, 2": "Hi\n",
    "Hi\n<tool_call> \t<function=read_file> x": "Hi\n",
    "Hi\n<tool_call>\n<func but not quite": "Hi\n<tool_call>\n<func but not quite",
    "Hi\n<tool_call>\n  \n": "Hi\n<tool_call>\n  \n",
}


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(CASES)), st.lists(st.integers(min_value=0), max_size=12))
def test_any_split_shows_the_same_text(text: str, cuts: list[int]) -> None:
    assert shown(split(text, cuts)) == CASES[text]


def test_reset_forgets_a_broken_attempt() -> None:
    markup = ToolMarkupFilter()
    assert markup.feed("Let me\n<tool_") == "Let me\n"
    markup.reset()
    assert markup.feed("Fresh start") + markup.flush() == "Fresh start"


def test_without_known_tools_any_function_name_is_hidden() -> None:
    markup = ToolMarkupFilter()
    text = "Now:\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n</function>"
    assert markup.feed(text) + markup.flush() == "Now:\n"


def test_the_cost_of_a_chunk_does_not_grow_with_the_answer() -> None:
    markup = ToolMarkupFilter()
    started = time.perf_counter()
    out = "".join(markup.feed(" ") for _ in range(50_000))  # a degenerate model
    out += markup.feed(f"\n{XML}\nok") + markup.flush()
    assert out == " " * 50_000 + "\nok"
    assert time.perf_counter() - started < 2.0


def test_an_unclosed_call_is_not_kept_while_it_streams() -> None:
    # Issue 22, finding 13: a hostile answer of one unclosed <tool_call> of 64 MiB was
    # kept whole by the filter, then joined twice at the end.
    markup = ToolMarkupFilter()
    piece = "{" * 65536
    tracemalloc.start()
    try:
        shown = markup.feed("Hi\n<tool_call>")
        for _ in range(64):  # 4 MiB
            shown += markup.feed(piece)
        shown += markup.flush()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert shown == "Hi\n"
    assert peak < 1 << 20
