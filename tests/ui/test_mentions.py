"""``@path`` mentions: workspace files the user points at are attached to the message."""

from __future__ import annotations

from pathlib import Path

from qwen_dev_cli.ui.mentions import MAX_ATTACH_BYTES, attach_mentions


def test_a_mentioned_file_is_attached(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("print('hi')\n")
    text, attached = attach_mentions("what does @app.py do?", tmp_path)
    assert attached == ["app.py"]
    assert text.startswith("what does @app.py do?\n\nFile `app.py`:\n```\nprint('hi')\n```")


def test_trailing_punctuation_is_not_part_of_the_path(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("x = 1\n")
    _, attached = attach_mentions("look at @a.py, please", tmp_path)
    assert attached == ["a.py"]


def test_folders_missing_files_emails_and_repeats_are_left_alone(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "a.py").write_text("x = 1\n")
    message = "@src and @missing.py, mail me@a.py, @a.py twice: @a.py"
    text, attached = attach_mentions(message, tmp_path)
    assert attached == ["a.py"]
    assert text.count("File `a.py`") == 1


def test_nothing_outside_the_workspace_is_read(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    (tmp_path / "secret.txt").write_text("key\n")
    (root / "link").symlink_to(tmp_path / "secret.txt")
    text, attached = attach_mentions("@../secret.txt and @link", root)
    assert attached == []
    assert "key" not in text


def test_binary_files_are_not_attached_and_big_ones_are_cut(tmp_path: Path) -> None:
    (tmp_path / "blob.bin").write_bytes(b"\x00\x01\x02")
    (tmp_path / "big.txt").write_text("y" * (MAX_ATTACH_BYTES + 10))
    text, attached = attach_mentions("@blob.bin @big.txt", tmp_path)
    assert attached == ["big.txt"]
    assert "[... cut at 64 KiB]" in text
