"""The text ``ask`` holds back until a message is complete: in memory up to a limit,
then in an unnamed temporary file, given back exactly as it came."""

from __future__ import annotations

import os

import pytest

from qwen_dev_cli.ui.spool import TextSpool


def on_disk(held: TextSpool) -> bool:
    return held._file is not None


PIECES = ["plain ", "é✿😀", "\ud83d", " lone surrogate ", "\r\n", "\x00", "end\n"]


def test_short_text_stays_in_memory_and_comes_back_whole() -> None:
    held = TextSpool(memory_limit=1000)
    assert not held
    for piece in PIECES:
        held.append(piece)
    assert held
    assert held.text() == "".join(PIECES)
    assert not on_disk(held)
    held.clear()
    assert not held
    assert held.text() == ""


def test_long_text_moves_to_a_file_and_comes_back_exactly() -> None:
    held = TextSpool(memory_limit=10)
    for _ in range(5000):
        for piece in PIECES:
            held.append(piece)
    assert on_disk(held)
    assert held._parts == []  # nothing of it left in memory
    assert held.text() == "".join(PIECES) * 5000
    assert all(len(piece) <= 1 << 16 for piece in held.pieces())
    held.append("more")  # reading it back left the file ready for more
    assert held.text().endswith("end\nmore")


def test_the_file_has_no_name_and_goes_with_clear() -> None:
    held = TextSpool(memory_limit=1)
    held.append("secret answer")
    assert held._file is not None
    fd = held._file.fileno()
    assert os.readlink(f"/proc/self/fd/{fd}").endswith("(deleted)")
    held.clear()
    assert not on_disk(held)
    assert not held


def test_without_room_for_a_file_memory_holds_it(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_room(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("tempfile.TemporaryFile", no_room)
    held = TextSpool(memory_limit=4)
    for piece in PIECES:
        held.append(piece)
    assert not on_disk(held)
    assert held.text() == "".join(PIECES)


def test_a_full_disk_mid_answer_brings_the_text_back_to_memory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    held = TextSpool(memory_limit=4)
    held.append("first part, ")
    assert on_disk(held)

    def full(fd: int, data: object, offset: int) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("os.pwrite", full)
    held.append("second part")
    monkeypatch.undo()
    assert not on_disk(held)
    held.append(", third")
    assert held.text() == "first part, second part, third"
