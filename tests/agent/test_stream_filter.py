"""Tool-call markup is kept out of the streamed text, however the stream is split."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from qwen_dev_cli.agent.stream_filter import ToolMarkupFilter

CALL = '<tool_call>\n{"name": "read_file", "arguments": {"path": "a.py"}}\n</tool_call>'


def shown(pieces: list[str]) -> str:
    markup = ToolMarkupFilter()
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
