"""`--help` as a new user reads it (issue 12, item 12): every command, a real process.
Options that take a value name it (NAME, FILE, N, or the choices); flags show none;
`--version` takes nothing; the main help ends with examples."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

COMMANDS = [
    (),
    ("ask",),
    ("batch",),
    ("sessions",),
    ("sessions", "list"),
    ("sessions", "show"),
    ("sessions", "export"),
    ("sessions", "delete"),
    ("config",),
    ("config", "show"),
    ("config", "path"),
    ("config", "init"),
    ("doctor",),
    ("metrics",),
]


def qwen_dev(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "qwen_dev_cli", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "100"},
    )


@pytest.mark.slow
@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "qwen-dev")
def test_help_names_values_instead_of_python_types(command: tuple[str, ...]) -> None:
    run = qwen_dev(*command, "--help")
    assert run.returncode == 0, run.stderr
    for python_type in ("<bool>", "list[", "str]", "<int", "<float", "<path>"):
        assert python_type not in run.stdout, (command, python_type)


@pytest.mark.slow
def test_choices_are_listed() -> None:
    assert "<ask|auto-edit|yolo>" in qwen_dev("--help").stdout
    assert "<ask|auto-edit|yolo>" in qwen_dev("ask", "--help").stdout
    assert "<md|json>" in qwen_dev("sessions", "export", "--help").stdout


@pytest.mark.slow
def test_a_value_outside_the_choices_is_a_usage_error() -> None:
    run = qwen_dev("ask", "--approval", "sometimes", "hi")
    assert run.returncode == 2
    assert "'sometimes' is not one of" in run.stderr
    assert "'auto-edit'" in run.stderr


@pytest.mark.slow
@pytest.mark.parametrize("args", [("--version", "true"), ("--version", "ask")])
def test_version_takes_no_value_nor_command(args: tuple[str, ...]) -> None:
    assert qwen_dev(*args).returncode == 2


@pytest.mark.slow
def test_version_alone_prints_it() -> None:
    run = qwen_dev("--version")
    assert run.returncode == 0
    assert run.stdout.startswith("qwen-dev ")


@pytest.mark.slow
def test_main_help_ends_with_examples_that_are_real_commands() -> None:
    out = qwen_dev("--help").stdout
    examples = out[out.index("Examples") :]
    lines = [line.split("  ")[0].strip() for line in examples.splitlines()[1:] if line.strip()]
    assert 4 <= len(lines) <= 6
    commands = {"ask", "doctor", "--continue", "-p"}
    for line in lines:
        words = line.removeprefix("git diff | ").split()
        assert words[0] == "qwen-dev"
        assert len(words) == 1 or words[1] in commands


@pytest.mark.slow
def test_ask_help_states_its_exit_codes() -> None:
    out = qwen_dev("ask", "--help").stdout
    section = out[out.index("Exit codes") :]
    for code in ("0", "2", "3", "4", "130"):
        assert re.search(rf"^\s*{code}\s", section, re.MULTILINE), code
    assert "denied" in section


def test_readme_exit_codes_are_one_table() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Exit codes") :]
    section = section[: section.index("\n## ", 1)]
    tokens = MarkdownIt("commonmark").enable("table").parse(section)
    cells = [t.children[0].content for t in tokens if t.type == "inline" and t.children]
    rows = [t for t in tokens if t.type == "tr_open"]
    assert len(rows) == 7  # the header and six codes
    for code in ("0", "1", "2", "3", "4", "130"):
        assert code in cells
