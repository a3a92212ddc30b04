"""write_file and edit_file plan changes (with diffs); nothing is written by planning."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from qwen_dev_cli.tools import (
    EDIT_FILE,
    WRITE_FILE,
    OutsideWorkspace,
    ReadPlan,
    ToolContext,
    ToolError,
    WritePlan,
)
from qwen_dev_cli.tools.base import Tool
from qwen_dev_cli.tools.diff import diff_stats, unified_diff


def plan(tool: Tool, ctx: ToolContext, **arguments: object) -> WritePlan:
    result = tool.plan(arguments, ctx)
    assert isinstance(result, WritePlan)
    return result


SOURCE = "def add(a, b):\n    return a - b\n\n\ndef sub(a, b):\n    return a - b\n"


def test_write_file_plans_a_new_file_with_a_diff_and_writes_nothing(
    ctx: ToolContext, root: Path
) -> None:
    change = plan(WRITE_FILE, ctx, path="pkg/new.py", content="x = 1\ny = 2\n")
    assert change.path == root / "pkg" / "new.py"
    assert not change.existed
    assert change.summary == "create pkg/new.py (+2 -0)"
    assert change.diff.splitlines()[:3] == ["--- /dev/null", "+++ b/pkg/new.py", "@@ -0,0 +1,2 @@"]
    assert not (root / "pkg").exists()


def test_write_file_over_an_existing_file_diffs_against_it(ctx: ToolContext, root: Path) -> None:
    (root / "a.py").write_text("x = 1\n")
    change = plan(WRITE_FILE, ctx, path="a.py", content="x = 2\n")
    assert change.existed
    assert change.diff == "--- a/a.py\n+++ b/a.py\n@@ -1 +1 @@\n-x = 1\n+x = 2\n"
    assert (root / "a.py").read_text() == "x = 1\n"


def test_writing_the_same_content_is_a_no_op(ctx: ToolContext, root: Path) -> None:
    (root / "a.py").write_text("x = 1\n")
    result = WRITE_FILE.plan({"path": "a.py", "content": "x = 1\n"}, ctx)
    assert isinstance(result, ReadPlan)
    assert "nothing written" in result.run()


def test_writes_outside_or_through_a_symlink_out_are_refused(ctx: ToolContext, root: Path) -> None:
    (root / "out").symlink_to(root.parent / "outside")
    (root / "secret-link").symlink_to(root.parent / "outside" / "secret.txt")
    for path in ("../outside/x.txt", str(root.parent / "outside" / "x.txt"), "out/x.txt"):
        with pytest.raises(OutsideWorkspace):
            WRITE_FILE.plan({"path": path, "content": "pwned"}, ctx)
    with pytest.raises(OutsideWorkspace):
        EDIT_FILE.plan({"path": "secret-link", "old_string": "top", "new_string": "no"}, ctx)


def test_edit_replaces_the_one_match(ctx: ToolContext, root: Path) -> None:
    (root / "m.py").write_text(SOURCE)
    change = plan(
        EDIT_FILE,
        ctx,
        path="m.py",
        old_string="def add(a, b):\n    return a - b",
        new_string="def add(a, b):\n    return a + b",
    )
    assert change.content == SOURCE.replace("return a - b", "return a + b", 1)
    assert "-    return a - b\n+    return a + b\n" in change.diff
    assert change.summary == "edit m.py (+1 -1)"


def test_edit_with_several_matches_lists_their_lines(ctx: ToolContext, root: Path) -> None:
    (root / "m.py").write_text(SOURCE)
    with pytest.raises(ToolError, match=r"occurs 2 times in m.py \(at lines 2, 6\)"):
        EDIT_FILE.plan({"path": "m.py", "old_string": "return a - b", "new_string": "x"}, ctx)


def test_edit_not_found_points_at_whitespace_differences(ctx: ToolContext, root: Path) -> None:
    (root / "m.py").write_text(SOURCE)
    with pytest.raises(ToolError, match="matches at line 5 if whitespace is ignored"):
        EDIT_FILE.plan(
            {"path": "m.py", "old_string": "def sub(a, b):\n  return a - b", "new_string": "x"},
            ctx,
        )


def test_edit_not_found_lists_the_closest_lines(ctx: ToolContext, root: Path) -> None:
    (root / "m.py").write_text(SOURCE)
    with pytest.raises(ToolError) as caught:
        EDIT_FILE.plan({"path": "m.py", "old_string": "def add(x, y):", "new_string": "z"}, ctx)
    message = str(caught.value)
    assert "not found in m.py" in message
    assert "line 1: def add(a, b):" in message


def test_edit_not_found_without_candidates(ctx: ToolContext, root: Path) -> None:
    (root / "m.py").write_text(SOURCE)
    with pytest.raises(ToolError, match="Read the file first"):
        EDIT_FILE.plan({"path": "m.py", "old_string": "zzzz qqqq", "new_string": "z"}, ctx)


def test_edit_keeps_windows_line_endings(ctx: ToolContext, root: Path) -> None:
    (root / "w.txt").write_bytes(b"one\r\ntwo\r\nthree\r\n")
    change = plan(EDIT_FILE, ctx, path="w.txt", old_string="two\nthree", new_string="2\n3")
    assert change.content == "one\r\n2\r\n3\r\n"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"path": "m.py", "old_string": "", "new_string": "x"}, "old_string is empty"),
        ({"path": "m.py", "old_string": "a", "new_string": "a"}, "the same"),
        ({"path": "nope.py", "old_string": "a", "new_string": "b"}, "does not exist"),
        ({"path": "m.py", "new_string": "b"}, "missing required argument 'old_string'"),
    ],
)
def test_edit_argument_errors(
    ctx: ToolContext, root: Path, arguments: dict[str, str], message: str
) -> None:
    (root / "m.py").write_text(SOURCE)
    with pytest.raises(ToolError, match=message):
        EDIT_FILE.plan(arguments, ctx)


def test_edit_accepts_common_argument_aliases(ctx: ToolContext, root: Path) -> None:
    (root / "m.py").write_text("a = 1\n")
    change = plan(EDIT_FILE, ctx, file_path="m.py", search="a = 1", replace="a = 2")
    assert change.content == "a = 2\n"


def test_edit_refuses_files_that_are_not_utf8(ctx: ToolContext, root: Path) -> None:
    (root / "l1.txt").write_bytes("café\n".encode("latin-1"))
    with pytest.raises(ToolError, match="not valid UTF-8"):
        EDIT_FILE.plan({"path": "l1.txt", "old_string": "caf", "new_string": "tea"}, ctx)


def test_diff_marks_a_missing_final_newline_and_counts_lines() -> None:
    diff = unified_diff("a\nb", "a\nc", "f.txt")
    assert diff.endswith("-b\n\\ No newline at end of file\n+c\n\\ No newline at end of file\n")
    assert diff_stats(diff) == (1, 1)
    assert unified_diff("same\n", "same\n", "f.txt") == ""


def test_git_internals_are_not_written(ctx: ToolContext, root: Path) -> None:
    (root / ".git").mkdir()
    (root / ".git" / "config").write_text("[core]\n")
    for tool, arguments in [
        (WRITE_FILE, {"path": ".git/config", "content": "[core]\nfsmonitor = rm -rf ~\n"}),
        (WRITE_FILE, {"path": ".git/hooks/pre-commit", "content": "#!/bin/sh\n"}),
        (EDIT_FILE, {"path": ".git/config", "old_string": "[core]", "new_string": "[x]"}),
        # The same folder on a case-insensitive file system (macOS, Windows):
        (WRITE_FILE, {"path": ".GIT/hooks/pre-commit", "content": "#!/bin/sh\n"}),
        (WRITE_FILE, {"path": ".Git/config", "content": "[core]\n"}),
    ]:
        with pytest.raises(ToolError, match=r"inside \.git"):
            tool.plan(arguments, ctx)
    assert plan(WRITE_FILE, ctx, path=".gitignore", content="*.pyc\n").display == ".gitignore"


def test_a_plan_records_the_bytes_it_was_made_from(ctx: ToolContext, root: Path) -> None:
    (root / "a.py").write_bytes(b"x = 1\r\n")
    assert plan(WRITE_FILE, ctx, path="a.py", content="x = 2\n").original == b"x = 1\r\n"
    assert plan(EDIT_FILE, ctx, path="a.py", old="1", new="2").original == b"x = 1\r\n"
    assert plan(WRITE_FILE, ctx, path="new.py", content="x\n").original is None


def test_fifos_are_not_written_over(ctx: ToolContext, root: Path) -> None:
    os.mkfifo(root / "pipe")
    for tool, arguments in (
        (WRITE_FILE, {"content": "x"}),
        (EDIT_FILE, {"old_string": "a", "new_string": "b"}),
    ):
        with pytest.raises(ToolError, match="pipe is a FIFO"):
            tool.plan({"path": "pipe", **arguments}, ctx)
