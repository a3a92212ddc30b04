"""read_file and list_dir on real files."""

from __future__ import annotations

import contextlib
import os
import socket
import stat
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from qwen_dev_cli.tools import LIST_DIR, READ_FILE, OutsideWorkspace, ReadPlan, ToolContext
from qwen_dev_cli.tools.base import ToolError
from qwen_dev_cli.tools.read import READ_CAP, read_regular_bytes


def read(ctx: ToolContext, **arguments: object) -> str:
    plan = READ_FILE.plan(arguments, ctx)
    assert isinstance(plan, ReadPlan)
    return plan.run()


def listing(ctx: ToolContext, **arguments: object) -> str:
    plan = LIST_DIR.plan(arguments, ctx)
    assert isinstance(plan, ReadPlan)
    return plan.run()


def test_reads_a_whole_file(ctx: ToolContext, root: Path) -> None:
    (root / "a.py").write_text("print('hi')\nprint('bye')\n")
    assert read(ctx, path="a.py") == "print('hi')\nprint('bye')\n"


def test_reads_a_line_range_and_says_so(ctx: ToolContext, root: Path) -> None:
    (root / "n.txt").write_text("".join(f"line {i}\n" for i in range(1, 11)))
    out = read(ctx, path="n.txt", start_line=3, end_line=5)
    assert out == "line 3\nline 4\nline 5\n[lines 3-5 of 10]"
    assert read(ctx, path="n.txt", start_line=9).startswith("line 9\nline 10\n")


def test_a_range_past_the_end_is_an_error(ctx: ToolContext, root: Path) -> None:
    (root / "n.txt").write_text("one\n")
    with pytest.raises(ToolError, match="has 1 lines"):
        read(ctx, path="n.txt", start_line=5)
    with pytest.raises(ToolError, match="before start_line"):
        READ_FILE.plan({"path": "n.txt", "start_line": 5, "end_line": 2}, ctx)


def test_a_long_file_is_cut_with_a_note_saying_how_to_read_on(ctx: ToolContext, root: Path) -> None:
    line = "x" * 99 + "\n"
    (root / "big.txt").write_text(line * 2000)  # 200 000 characters
    out = read(ctx, path="big.txt")
    shown = READ_CAP // 100
    assert out.startswith(line * shown)
    assert out.count("x" * 99) == shown
    assert f"showing lines 1-{shown} of 2000" in out
    assert f"start_line={shown + 1}" in out


def test_one_enormous_line_is_cut_too(ctx: ToolContext, root: Path) -> None:
    (root / "min.js").write_text("a" * (READ_CAP * 2))
    out = read(ctx, path="min.js")
    assert len(out) < READ_CAP + 200
    assert "longer than" in out


def test_binary_files_are_refused(ctx: ToolContext, root: Path) -> None:
    (root / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR" + bytes(range(256)))
    with pytest.raises(ToolError, match="binary"):
        read(ctx, path="logo.png")


def test_non_utf8_is_decoded_with_replacement_and_a_note(ctx: ToolContext, root: Path) -> None:
    (root / "latin1.txt").write_bytes("café\n".encode("latin-1"))
    out = read(ctx, path="latin1.txt")
    assert out.startswith("caf\ufffd\n")
    assert "not valid UTF-8" in out


def test_empty_missing_and_directory(ctx: ToolContext, root: Path) -> None:
    (root / "empty.txt").write_text("")
    (root / "pkg").mkdir()
    assert "empty" in read(ctx, path="empty.txt")
    with pytest.raises(ToolError, match="does not exist"):
        read(ctx, path="nope.txt")
    with pytest.raises(ToolError, match="directory"):
        read(ctx, path="pkg")


def test_reading_outside_or_through_a_symlink_out_is_refused(ctx: ToolContext, root: Path) -> None:
    (root / "leak").symlink_to(root.parent / "outside" / "secret.txt")
    with pytest.raises(OutsideWorkspace):
        read(ctx, path="../outside/secret.txt")
    with pytest.raises(OutsideWorkspace):
        read(ctx, path="leak")


def test_missing_or_mistyped_arguments_are_explained(ctx: ToolContext) -> None:
    with pytest.raises(ToolError, match="missing required argument 'path'"):
        READ_FILE.plan({}, ctx)
    with pytest.raises(ToolError, match="'start_line' must be an integer"):
        READ_FILE.plan({"path": "a", "start_line": "ten"}, ctx)


def test_list_dir_marks_folders_sizes_and_links(ctx: ToolContext, root: Path) -> None:
    (root / "src").mkdir()
    (root / "README.md").write_text("hello")
    (root / "alias").symlink_to("README.md")
    assert listing(ctx).splitlines() == ["src/", "README.md  (5 bytes)", "alias -> README.md"]
    assert "empty" in listing(ctx, path="src")
    with pytest.raises(ToolError, match="not a directory"):
        listing(ctx, path="README.md")
    with pytest.raises(OutsideWorkspace):
        listing(ctx, path="..")


def fifo_with_a_late_writer(path: Path) -> Path:
    """A FIFO that gets a writer after a few seconds: a read that (wrongly) blocks on
    it then ends, and the test fails instead of hanging."""
    os.mkfifo(path)

    def release() -> None:
        time.sleep(5)
        with contextlib.suppress(OSError):
            os.close(os.open(path, os.O_RDWR))

    threading.Thread(target=release, daemon=True).start()
    return path


def test_a_fifo_is_refused_at_once_without_being_opened(ctx: ToolContext, root: Path) -> None:
    fifo_with_a_late_writer(root / "pipe")
    started = time.monotonic()
    with pytest.raises(ToolError, match=r"pipe is a FIFO \(named pipe\), not a regular file"):
        read(ctx, path="pipe")
    assert time.monotonic() - started < 2


def test_a_socket_is_refused(ctx: ToolContext, root: Path) -> None:
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(root / "sock"))
        with pytest.raises(ToolError, match="sock is a socket"):
            read(ctx, path="sock")


def test_a_character_device_is_refused(ctx: ToolContext, root: Path) -> None:
    try:  # /dev/zero's numbers: reading it would never end
        os.mknod(root / "zero", stat.S_IFCHR | 0o600, os.makedev(1, 5))
    except (PermissionError, OSError) as exc:
        pytest.skip(f"cannot make a device node here: {exc}")
    with pytest.raises(ToolError, match="zero is a character device"):
        read(ctx, path="zero")


def test_a_fifo_swapped_in_after_the_stat_is_refused_unblocked(root: Path) -> None:
    # The second guard: opening non-blocking, then checking what was opened.
    fifo = fifo_with_a_late_writer(root / "late")
    real_stat = os.stat
    regular = real_stat(__file__)

    def stale_stat(path: object, *args: Any, **kwargs: Any) -> os.stat_result:
        # os.stat's own signature is narrower than this stand-in's: it is only ever
        # called with a path here.
        real = real_stat(path, *args, **kwargs)  # type: ignore[arg-type]
        return regular if Path(str(path)) == fifo else real

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "stat", stale_stat)
        with pytest.raises(ToolError, match="late is a FIFO"):
            read_regular_bytes(fifo, "late")
