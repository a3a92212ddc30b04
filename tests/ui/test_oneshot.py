"""What `ask` makes of piped input."""

from __future__ import annotations

from qwen_dev_cli.ui.oneshot import MAX_STDIN_BYTES, compose_prompt


def test_piped_text_follows_the_prompt_as_a_block() -> None:
    text, note = compose_prompt("review this", b"+print('hi')\n")
    assert text == "review this\n\n```\n+print('hi')\n```"
    assert note is None


def test_piped_text_alone_is_the_prompt() -> None:
    assert compose_prompt("", b"explain\n")[0] == "```\nexplain\n```"


def test_huge_input_is_cut_with_a_note() -> None:
    text, note = compose_prompt("sum up", b"x" * (MAX_STDIN_BYTES + 1))
    assert note is not None
    assert "only those are sent" in note
    assert text.count("x") == MAX_STDIN_BYTES


def test_binary_input_is_sent_with_replacements_and_both_notes_survive() -> None:
    text, note = compose_prompt("what is this", b"\x00\xff" * (MAX_STDIN_BYTES))
    assert note is not None
    assert "binary" in note
    assert "only those are sent" in note
    assert "\ufffd" in text
