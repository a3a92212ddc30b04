"""Threat: a hostile pattern freezes the assistant. grep needs no approval, and
Python's backtracking ``re`` held the GIL for minutes on ``(a|a)*$`` against a
28-character line, Ctrl-C included. grep runs on RE2 now, in linear time."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from qwen_dev_cli.tools import GLOB, GREP, ReadPlan, ToolContext, ToolError, Workspace

#: Generous: the old behaviour took minutes; RE2 takes microseconds.
PROMPT = 2.0
PATTERNS = ["(a|a)*$", "((a)+)+$", "((a)*)*$", "(a|a?)+$", "(a?){28}a{28}", "(a+)+$", r"(\w*)*x"]


@pytest.fixture
def ctx(tmp_path: Path) -> ToolContext:
    (tmp_path / "bait.txt").write_text(("a" * 28 + "!\n") * 50 + "a" * 100_000 + "!\n")
    return ToolContext(Workspace(tmp_path))


@pytest.mark.parametrize("pattern", PATTERNS)
def test_catastrophic_patterns_return_promptly(ctx: ToolContext, pattern: str) -> None:
    started = time.monotonic()
    plan = GREP.plan({"pattern": pattern}, ctx)
    assert isinstance(plan, ReadPlan)
    plan.run()
    assert time.monotonic() - started < PROMPT


def test_a_glob_of_many_stars_returns_promptly(ctx: ToolContext, tmp_path: Path) -> None:
    (tmp_path / ("a" * 200)).write_text("")
    started = time.monotonic()
    plan = GLOB.plan({"pattern": "*a" * 30 + "*b"}, ctx)
    assert isinstance(plan, ReadPlan)
    assert "no paths" in plan.run()
    assert time.monotonic() - started < PROMPT


@pytest.mark.parametrize("pattern", [r"(a)\1", "(?=a)a", "(?<=a)b"])
def test_what_re2_cannot_do_is_explained_to_the_model(ctx: ToolContext, pattern: str) -> None:
    with pytest.raises(ToolError, match="does not support"):
        GREP.plan({"pattern": pattern}, ctx)
