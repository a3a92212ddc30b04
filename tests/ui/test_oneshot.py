"""What `ask` makes of piped input."""

from __future__ import annotations

from pathlib import Path

from qwen_dev_cli.config import load_settings
from qwen_dev_cli.ui.oneshot import MAX_STDIN_BYTES, compose_prompt, prepare_prompt


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


def test_mentions_in_the_prompt_are_attached_but_not_those_in_piped_input(
    tmp_path: Path,
) -> None:
    (tmp_path / "app.py").write_text("print('hi')\n")
    settings = load_settings(cwd=tmp_path)  # conftest: an empty config, a fresh home
    prepared = prepare_prompt("explain @app.py", b"see @app.py too\n", settings, workspace=tmp_path)
    assert prepared.attached == ("app.py",)
    assert prepared.text.count("File `app.py`") == 1
    assert prepared.text.endswith("```\nsee @app.py too\n```")
    assert prepared.notes == ()
