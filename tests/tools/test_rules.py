"""--allowedTools / --disallowedTools rules (issue 20): Claude Code's names and Bash
patterns on our tools, and what the runtime's agent is offered and runs unasked."""

from __future__ import annotations

from pathlib import Path

import pytest

from qwen_dev_cli.tools import DEFAULT_TOOLS
from qwen_dev_cli.tools.base import ToolContext, ToolError
from qwen_dev_cli.tools.registry import ToolRegistry
from qwen_dev_cli.tools.rules import RuleError, ToolRules, split_rules
from qwen_dev_cli.tools.workspace import Workspace


def test_rules_split_on_commas_and_spaces_but_not_inside_a_pattern() -> None:
    assert split_rules(["Bash(git diff:*),Read  Edit", "LS"]) == [
        "Bash(git diff:*)",
        "Read",
        "Edit",
        "LS",
    ]
    assert split_rules(["Bash(a, b) Grep"]) == ["Bash(a, b)", "Grep"]
    with pytest.raises(RuleError):
        split_rules(["Bash(git"])
    with pytest.raises(RuleError):
        split_rules(["Bash)"])


def test_claude_names_map_onto_ours() -> None:
    rules = ToolRules.parse([], ["Bash Read Edit Write Glob Grep LS"])
    assert [rule.tool for rule in rules.disallowed] == [
        "run_command",
        "read_file",
        "edit_file",
        "write_file",
        "glob",
        "grep",
        "list_dir",
    ]
    assert ToolRules.parse(["run_command"], []).allowed[0].tool == "run_command"


def test_a_disallowed_tool_is_not_offered() -> None:
    registry = ToolRegistry()
    names = [tool.name for tool in registry.offered(ToolRules.parse([], ["Bash,Write"]))]
    assert "run_command" not in names
    assert "write_file" not in names
    assert {"read_file", "edit_file", "list_dir", "glob", "grep"} <= set(names)
    assert len(names) == len(DEFAULT_TOOLS) - 2


@pytest.mark.parametrize(
    ("pattern", "command", "allowed"),
    [
        ("git diff:*", "git diff HEAD~1", True),
        ("git diff:*", "git diff", True),
        ("git diff:*", "git status", False),
        ("git diff:*", "git diff && rm -rf x", False),
        ("git diff:*", "git diff $(rm -rf x)", False),
        ("git diff:*", "git diff > out.txt", False),
        ("git diff:*", "git diff 2>&1", True),
        ("git diff:*", "git diff | sh", False),
        ("git:*", "git status; git log", True),
        ("npm run *", "npm run test", True),
        ("npm run *", "npm publish", False),
        ("make test", "make test", True),
        ("make test", "make test2", False),
    ],
)
def test_allowed_bash_patterns_cover_only_what_they_name(
    pattern: str, command: str, allowed: bool
) -> None:
    commands = ToolRules.parse([f"Bash({pattern})"], []).commands()
    assert (command in commands) is allowed


def test_allowed_commands_keep_the_sessions_always_answers() -> None:
    remembered = {"ls -la"}
    commands = ToolRules.parse(["Bash(git:*)"], []).commands(remembered)
    assert "ls -la" in commands
    assert "git log" in commands
    commands.add("make")
    assert "make" in remembered
    assert "anything" in ToolRules.parse(["Bash"], []).commands()


def test_a_disallowed_bash_pattern_refuses_any_command_it_touches(tmp_path: Path) -> None:
    (tool,) = [
        t for t in ToolRules.parse([], ["Bash(rm:*)"]).offered(DEFAULT_TOOLS) if t.kind == "command"
    ]
    context = ToolContext(Workspace(tmp_path))
    for command in ("rm -rf build", "ls && rm x", "echo $(rm y)"):
        with pytest.raises(ToolError, match="--disallowedTools Bash"):
            tool.plan({"command": command}, context)
    assert tool.plan({"command": "ls"}, context)


def test_allowed_edits_and_what_is_ignored() -> None:
    assert ToolRules.parse(["Edit"], []).allows_edits()
    assert ToolRules.parse(["Write"], []).allows_edits()
    assert not ToolRules.parse(["Read", "Bash"], []).allows_edits()
    rules = ToolRules.parse(["WebFetch", "Read(./.env)"], [])
    notes = rules.ignored(tool.name for tool in DEFAULT_TOOLS)
    assert any("'WebFetch'" in note for note in notes)
    assert any("only Bash(...) takes a pattern" in note for note in notes)


@pytest.mark.parametrize(
    "command",
    [
        "FOO=1 rm x",
        "env rm x",
        "time rm x",
        "xargs rm < list",
        "sh -c 'rm x'",
        "if true; then rm x; fi",
        "rm$IFS-rf x",
        "$(which rm) x",
    ],
)
def test_a_disallowed_pattern_sees_through_wrappers_and_shells(command: str) -> None:
    # Review finding: the raw argv was matched, so each of these ran rm.
    (rule,) = ToolRules.parse([], ["Bash(rm:*)"]).disallowed
    assert rule.touches_command(command)


def test_an_empty_pattern_is_no_rule_and_a_file_named_1_is_a_write() -> None:
    # Review findings: Bash() meant the whole tool; `> 1` counted as a descriptor copy.
    with pytest.raises(RuleError, match="empty pattern"):
        ToolRules.parse(["Bash()"], [])
    commands = ToolRules.parse(["Bash(git log:*)"], []).commands()
    assert "git log x > 1" not in commands
    assert "git log x 2>&1" in commands
    assert "git log x > /dev/null" in commands
