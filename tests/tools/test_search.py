"""glob and grep over a real tree."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from qwen_dev_cli.tools import GLOB, GREP, OutsideWorkspace, ReadPlan, ToolContext
from qwen_dev_cli.tools.base import Tool, ToolError
from qwen_dev_cli.tools.search import GLOB_CAP, GREP_CAP, glob_to_regex


def run(tool: Tool, ctx: ToolContext, **arguments: object) -> str:
    plan = tool.plan(arguments, ctx)
    assert isinstance(plan, ReadPlan)
    return plan.run()


@pytest.fixture
def tree(root: Path) -> Path:
    files = {
        "app.py": "import os\n\ndef main():\n    return os.getcwd()\n",
        "src/util.py": "def helper():\n    return 42  # TODO tidy\n",
        "src/deep/more.py": "TODO = 'later'\n",
        "docs/guide.md": "# Guide\nTODO: write it\n",
        ".git/config": "[core]\nTODO in git\n",
        "node_modules/x/index.js": "// TODO vendored\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    (root / "image.bin").write_bytes(b"TODO\0\0binary")
    return root


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("*.py", "app.py", True),
        ("*.py", "src/util.py", False),
        ("**/*.py", "src/deep/more.py", True),
        ("**/*.py", "app.py", True),
        ("src/**", "src/deep/more.py", True),
        ("src/*.py", "src/util.py", True),
        ("src/?til.py", "src/util.py", True),
        ("[a-c]*.py", "app.py", True),
        ("[!a]*.py", "app.py", False),
    ],
)
def test_glob_patterns(pattern: str, path: str, matches: bool) -> None:
    assert bool(glob_to_regex(pattern).match(path)) is matches


def test_glob_finds_files_and_skips_vcs_and_vendored(ctx: ToolContext, tree: Path) -> None:
    out = run(GLOB, ctx, pattern="**/*.py").splitlines()
    assert out == ["app.py", "src/deep/more.py", "src/util.py"]
    assert run(GLOB, ctx, pattern="*", path="src").splitlines() == [
        "src/deep/",
        "src/util.py",
    ]
    assert "no paths match" in run(GLOB, ctx, pattern="**/*.rs")


def test_glob_refuses_patterns_that_leave_the_workspace(ctx: ToolContext, tree: Path) -> None:
    with pytest.raises(ToolError, match="relative"):
        run(GLOB, ctx, pattern="../*")
    with pytest.raises(ToolError, match="relative"):
        run(GLOB, ctx, pattern="/etc/*")
    with pytest.raises(OutsideWorkspace):
        run(GLOB, ctx, pattern="*", path="..")


def test_glob_caps_its_results(ctx: ToolContext, root: Path) -> None:
    for i in range(GLOB_CAP + 20):
        (root / f"f{i:04}.txt").write_text("")
    out = run(GLOB, ctx, pattern="*.txt").splitlines()
    assert len(out) == GLOB_CAP + 1
    assert out[-1] == "[20 more matches not shown; narrow the pattern]"


def test_grep_finds_lines_and_skips_git_vendored_and_binary(ctx: ToolContext, tree: Path) -> None:
    out = run(GREP, ctx, pattern="TODO").splitlines()
    assert out == [  # folder by folder, top down
        "docs/guide.md:2: TODO: write it",
        "src/util.py:2:     return 42  # TODO tidy",
        "src/deep/more.py:1: TODO = 'later'",
    ]


def test_grep_regex_case_and_file_filter(ctx: ToolContext, tree: Path) -> None:
    assert run(GREP, ctx, pattern=r"def \w+\(\)", glob="*.py").splitlines() == [
        "app.py:3: def main():",
        "src/util.py:1: def helper():",
    ]
    assert run(GREP, ctx, pattern="todo", ignore_case=True, path="docs") == (
        "docs/guide.md:2: TODO: write it"
    )
    assert run(GREP, ctx, pattern="getcwd", path="app.py") == "app.py:4:     return os.getcwd()"
    assert "no matches" in run(GREP, ctx, pattern="nothing-like-this")


def test_grep_searches_inside_a_skipped_folder_when_asked(ctx: ToolContext, tree: Path) -> None:
    assert "vendored" in run(GREP, ctx, pattern="TODO", path="node_modules")


def test_grep_explains_a_bad_regex(ctx: ToolContext, tree: Path) -> None:
    with pytest.raises(ToolError, match="invalid regular expression"):
        run(GREP, ctx, pattern="(unclosed")


@pytest.mark.parametrize("pattern", [r"(a)\1", "(?=a)b", "(?<!x)y"])
def test_grep_explains_what_its_linear_time_engine_cannot_do(
    ctx: ToolContext, tree: Path, pattern: str
) -> None:
    with pytest.raises(ToolError, match="does not support"):
        run(GREP, ctx, pattern=pattern)


def test_grep_ignore_case_covers_non_ascii(ctx: ToolContext, root: Path) -> None:
    (root / "names.txt").write_text("ÉCOLE\n", encoding="utf-8")
    assert "ÉCOLE" in run(GREP, ctx, pattern="école", ignore_case=True)


def test_grep_caps_matches_and_long_lines(ctx: ToolContext, root: Path) -> None:
    (root / "many.txt").write_text("hit " + "y" * 1000 + "\n" + "hit\n" * (GREP_CAP + 5))
    out = run(GREP, ctx, pattern="hit").splitlines()
    assert len(out) == GREP_CAP + 1
    assert out[0].endswith("…")
    assert len(out[0]) < 400
    assert out[-1].startswith("[6 more matches")


def test_grep_does_not_follow_links_out_of_the_workspace(ctx: ToolContext, root: Path) -> None:
    (root / "leak.txt").symlink_to(root.parent / "outside" / "secret.txt")
    (root / "leakdir").symlink_to(root.parent / "outside")
    assert "no matches" in run(GREP, ctx, pattern="secret")


def test_grep_skips_a_fifo_without_opening_it(ctx: ToolContext, root: Path) -> None:
    (root / "a.txt").write_text("needle\n")
    os.mkfifo(root / "pipe")
    assert run(GREP, ctx, pattern="needle") == "a.txt:1: needle"
    assert run(GREP, ctx, pattern="needle", path="pipe") == "no matches for 'needle'"
    assert run(GLOB, ctx, pattern="*") == "a.txt\npipe"
