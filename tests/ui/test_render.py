"""The streaming markdown renderer: blocks printed once, a bounded live tail,
highlighted code, restarts and interruptions."""

from __future__ import annotations

import io

from rich.console import Console
from rich.markdown import Markdown

from qwen_dev_cli.ui.render import MarkdownStream
from qwen_dev_cli.ui.theme import make_console


def console(*, terminal: bool = False, height: int = 40) -> tuple[Console, io.StringIO]:
    screen = io.StringIO()
    return (
        make_console(
            file=screen,
            width=80,
            height=height,
            force_terminal=terminal,
            color_system="truecolor" if terminal else None,
        ),
        screen,
    )


def tail_text(stream: MarkdownStream) -> str:
    lines = stream.console.render_lines(stream.tail, pad=False)
    return "\n".join("".join(segment.text for segment in line).rstrip() for line in lines)


def printed_lines(screen: io.StringIO) -> list[str]:
    return [line.rstrip() for line in screen.getvalue().splitlines()]


def feed_by_chunks(stream: MarkdownStream, text: str, size: int = 3) -> None:
    for start in range(0, len(text), size):
        stream.feed(text[start : start + size])


def test_a_finished_block_is_printed_once_and_the_rest_stays_live() -> None:
    out, screen = console()
    stream = MarkdownStream(out)
    feed_by_chunks(stream, "First paragraph.\n\nSecond para")
    assert screen.getvalue().count("First paragraph.") == 1
    assert "Second" not in screen.getvalue()
    assert tail_text(stream) == "\nSecond para"  # the blank line of the source, then the tail
    feed_by_chunks(stream, "graph goes on.\n\n- a point\n")
    stream.finish()
    printed = screen.getvalue()
    assert printed.count("First paragraph.") == 1
    assert printed.count("Second paragraph goes on.") == 1
    assert printed.index("First") < printed.index("Second") < printed.index("a point")
    assert tail_text(stream) == ""


def test_the_tail_stays_short_inside_a_long_code_block() -> None:
    out, screen = console()
    stream = MarkdownStream(out, max_live_lines=5)
    stream.feed("```python\n")
    for number in range(100):
        stream.feed(f"value_{number} = {number}\n")
        assert len(tail_text(stream).splitlines()) <= 5
    stream.feed("```\n")
    stream.finish()
    code = [line.strip() for line in printed_lines(screen)]
    assert code == [f"value_{n} = {n}" for n in range(100)]


def test_a_long_list_is_committed_item_by_item() -> None:
    out, screen = console()
    stream = MarkdownStream(out, max_live_lines=4)
    for number in range(30):
        stream.feed(f"- item {number}\n")
        assert len(tail_text(stream).splitlines()) <= 4
    stream.finish()
    assert printed_lines(screen) == [f" • item {n}" for n in range(30)]


def test_a_long_line_without_newlines_stays_in_the_tail_until_it_ends() -> None:
    out, screen = console()
    stream = MarkdownStream(out)
    feed_by_chunks(stream, "word " * 50)
    assert screen.getvalue() == ""
    stream.finish()
    assert screen.getvalue().count("word") == 50


def test_code_is_highlighted() -> None:
    out, screen = console(terminal=True)
    stream = MarkdownStream(out)
    feed_by_chunks(stream, "Plain words.\n\n```python\ndef answer():\n    return 42\n```\n")
    stream.finish()
    printed = screen.getvalue()
    code_line = next(line for line in printed.splitlines() if "answer" in line)
    plain_line = next(line for line in printed.splitlines() if "Plain" in line)
    assert code_line.count("\x1b[") >= 3  # keyword, name and background each styled
    assert "\x1b[38;2" not in plain_line  # prose keeps the terminal's own colour


def test_a_restart_takes_the_partial_answer_back_off_the_screen() -> None:
    out, screen = console(terminal=True)
    stream = MarkdownStream(out, max_live_lines=5)
    feed_by_chunks(stream, "Old line one.\n\nOld line two.\n\nOld tail")
    before = len(screen.getvalue())
    stream.restart("stream broke off")
    erase = screen.getvalue()[before:]
    assert erase == "\x1b[1A\x1b[2K" * 3  # two lines and the blank one between
    assert "Old" not in tail_text(stream)
    feed_by_chunks(stream, "New answer.\n")
    stream.finish()
    assert screen.getvalue().count("New answer.") == 1


def test_a_restart_that_cannot_be_erased_says_the_text_above_is_void() -> None:
    out, screen = console()  # not a terminal: nothing can be taken back
    stream = MarkdownStream(out)
    feed_by_chunks(stream, "Old paragraph.\n\nOld tail")
    stream.restart("stream broke off")
    feed_by_chunks(stream, "New answer.\n")
    stream.finish()
    printed = screen.getvalue()
    assert "stream broke off: the answer above is void" in printed
    assert printed.count("Old paragraph.") == 1
    assert "Old tail" not in printed
    assert printed.index("void") < printed.index("New answer.")


def test_a_restart_before_anything_was_printed_prints_nothing() -> None:
    out, screen = console()
    stream = MarkdownStream(out)
    stream.feed("only in the tail")
    stream.restart("broken")
    assert screen.getvalue() == ""
    assert tail_text(stream) == ""


def test_an_interrupted_answer_is_kept_and_marked() -> None:
    out, screen = console()
    stream = MarkdownStream(out)
    feed_by_chunks(stream, "Half an ans")
    stream.interrupt()
    printed = screen.getvalue()
    assert "Half an ans" in printed
    assert "interrupted: what was said so far is kept" in printed


def test_blank_lines_between_blocks_follow_the_source() -> None:
    out, screen = console()
    stream = MarkdownStream(out)
    feed_by_chunks(stream, "One.\n\nTwo.\n- x\n- y\n")
    stream.finish()
    assert printed_lines(screen) == ["One.", "", "Two.", "", " • x", " • y"]


def test_a_long_line_is_held_in_bounded_pieces_and_prints_as_one_paragraph() -> None:
    # Issue 22, finding 13: a hostile answer may be one line of 64 MiB; the renderer
    # holds at most max_line_chars of it, and a paragraph cut at a space before a
    # word renders exactly as it would uncut.
    words = " ".join(f"**word{n}** and `code {n}`" for n in range(200))
    reference, expected = console()
    reference.print(Markdown(words))
    out, screen = console()
    stream = MarkdownStream(out)
    feed_by_chunks(stream, words, size=700)
    assert stream._partial_chars <= stream.max_line_chars
    stream.finish()
    assert printed_lines(screen) == printed_lines(expected)


def test_a_line_without_spaces_is_cut_too() -> None:
    out, screen = console()
    stream = MarkdownStream(out)
    feed_by_chunks(stream, "x" * 50_000, size=4096)
    assert stream._partial_chars <= stream.max_line_chars
    stream.finish()
    assert "".join(printed_lines(screen)) == "x" * 50_000


def test_long_code_lines_are_cut_but_a_long_closing_fence_still_closes() -> None:
    out, screen = console()
    stream = MarkdownStream(out)
    code = "```\n" + "y" * 5_000 + "\n" + "`" * 5_000 + "\nafter\n"
    feed_by_chunks(stream, code, size=512)
    assert stream._partial_chars <= stream.max_line_chars
    stream.finish()
    printed = printed_lines(screen)
    assert printed[-1] == "after"  # a paragraph: the fence closed
    assert "".join(line.strip() for line in printed[:-1]) == "y" * 5_000


def test_a_long_fence_opener_keeps_only_its_language() -> None:
    whole, expected = console()
    stream = MarkdownStream(whole)
    stream.feed("```python " + "info " * 40 + "\nprint(1)\n```\n")
    stream.finish()
    out, screen = console()
    stream = MarkdownStream(out)
    feed_by_chunks(stream, "```python " + "info " * 2_000 + "\nprint(1)\n```\n", size=256)
    stream.finish()
    assert printed_lines(screen) == printed_lines(expected)
