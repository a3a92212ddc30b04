"""``--allowedTools`` and ``--disallowedTools``: Claude Code's tool rules on our tools.

A rule is a tool name, optionally with a pattern: ``Read``, ``edit_file``,
``Bash(git diff:*)``, ``Bash(npm run *)``. Claude Code's names map onto ours (``Bash`` =
``run_command``, ``Read`` = ``read_file``, ``Edit``/``MultiEdit`` = ``edit_file``,
``Write`` = ``write_file``, ``Glob``, ``Grep``, ``LS`` = ``list_dir``); our own names, and
any other tool's (an MCP server's), are taken as they are.

- **Disallowed**, a whole tool: it is not offered to the model at all. A ``Bash(...)``
  pattern: the tool stays, and a command any part of which the pattern matches (a
  simple command in it, or in a substitution) is refused before it is judged.
- **Allowed** runs unasked, as if the user had answered "always": a ``Bash`` rule makes
  the commands it matches run unasked (critical ones are still asked, as "always" never
  covers them); ``Edit`` or ``Write`` makes file edits run unasked (the ``auto-edit``
  mode that "always" on an edit switches to). Reading tools run unasked anyway.

Patterns are for ``Bash`` only here (a path pattern on another tool is reported and
ignored). For allowing, a command matches when every simple command in it does
(``git status && rm x`` is not ``Bash(git:*)``), and never when it holds a substitution
or writes to a file: a pattern allows what it names, not what can be smuggled after it.
"""

from __future__ import annotations

import dataclasses
import re
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .base import Arguments, CommandPlan, Plan, Tool, ToolContext, ToolError
from .risk import commands_run
from .shell import PLACEHOLDER_RE, parse_shell

#: Claude Code's tool names, as ours.
CLAUDE_NAMES = {
    "Bash": "run_command",
    "Read": "read_file",
    "Edit": "edit_file",
    "MultiEdit": "edit_file",
    "Write": "write_file",
    "Glob": "glob",
    "Grep": "grep",
    "LS": "list_dir",
}
#: The tool that takes command patterns.
COMMAND_TOOL = "run_command"
#: Redirections that write nowhere: to /dev/null, or a descriptor copy or close
#: (``2>&1``, ``>&-``); ``> 1`` is a file named 1, not a descriptor.
_DESCRIPTOR = re.compile(r"^(\d+|-)$")


#: Tools whose allowing means something else here (commands by pattern, edits by mode).
_BUILT_IN_RULES = frozenset({COMMAND_TOOL, "edit_file", "write_file"})


def always_key(tool: str) -> str:
    """What "always" remembers for a whole tool (an MCP server's), beside the commands
    it remembers: a NUL, which no shell command holds, so that an answer or a pattern for
    commands never allows a tool, nor a tool's answer a command."""
    return f"\0tool {tool}"


class RuleError(ValueError):
    """A rule that cannot be read (unbalanced parentheses, an empty name)."""


@dataclass(frozen=True)
class ToolRule:
    """``tool`` (our name), with ``pattern`` (``None``: the whole tool); ``text``: as
    given."""

    tool: str
    pattern: str | None
    text: str

    def matches_command(self, command: str) -> bool:
        """Whether this rule covers the shell ``command`` (see the module docstring)."""
        if self.tool != COMMAND_TOOL:
            return False
        if self.pattern is None:
            return True
        parsed = parse_shell(command)
        if not parsed.exact or parsed.substitutions or not parsed.commands:
            return False
        for simple in parsed.commands:
            if any(not _harmless(op, target) for op, target in simple.redirects):
                return False
            if not _matches(self.pattern, simple.argv):
                return False
        return True

    def touches_command(self, command: str) -> bool:
        """Whether any part of ``command`` (a simple command in it, or in one of its
        substitutions) matches this rule: what a disallowed rule refuses."""
        if self.tool != COMMAND_TOOL:
            return False
        if self.pattern is None:
            return True
        # What the line would run, as the risk classifier reads it (behind FOO=1, env,
        # time, xargs, sh -c, if/then...), and the plain simple commands besides.
        found = commands_run(command, cwd=Path("/"), workspace=Path("/"))
        argvs = [*found, *_simple_commands(command)]
        if any(argv and _computed(argv[0]) for argv in argvs):
            return True  # a name made when it runs (rm$IFS, $(which rm)) could be this one
        return any(_matches(self.pattern, argv) for argv in argvs)


def _harmless(op: str, target: str) -> bool:
    return target == "/dev/null" or (op.endswith("&") and bool(_DESCRIPTOR.match(target)))


def _computed(name: str) -> bool:
    return "$" in name or PLACEHOLDER_RE.search(name) is not None


def _simple_commands(command: str, depth: int = 0) -> list[tuple[str, ...]]:
    """Every simple command of ``command``, those inside its substitutions included."""
    parsed = parse_shell(command)
    found = [simple.argv for simple in parsed.commands]
    if depth < 8:
        for body in parsed.substitutions:
            found += _simple_commands(body, depth + 1)
    return found


def _matches(pattern: str, argv: tuple[str, ...]) -> bool:
    """``argv`` against one Bash pattern: ``prefix:*`` (the words of ``prefix``, then
    anything), a ``*`` wildcard, or the exact words."""
    text = " ".join(argv)
    if pattern.endswith(":*"):
        try:
            prefix = tuple(shlex.split(pattern[:-2]))
        except ValueError:
            return False
        return argv[: len(prefix)] == prefix
    if "*" in pattern:
        regex = ".*".join(re.escape(part) for part in pattern.split("*"))
        return re.fullmatch(regex, text, re.DOTALL) is not None
    try:
        return argv == tuple(shlex.split(pattern))
    except ValueError:
        return False


def split_rules(values: Iterable[str]) -> list[str]:
    """Rules as given (repeated flags, each comma or space separated, a pattern's
    spaces and commas kept inside its parentheses)."""
    found: list[str] = []
    for value in values:
        depth = 0
        current: list[str] = []
        for char in value:
            if char == "(":
                depth += 1
            elif char == ")":
                depth -= 1
                if depth < 0:
                    raise RuleError(f"{value!r}: ')' without '('")
            if depth == 0 and (char == "," or char.isspace()):
                if current:
                    found.append("".join(current))
                current = []
                continue
            current.append(char)
        if depth:
            raise RuleError(f"{value!r}: '(' without ')'")
        if current:
            found.append("".join(current))
    return found


def parse_rule(text: str) -> ToolRule:
    name, paren, rest = text.partition("(")
    name = name.strip()
    if not name:
        raise RuleError(f"{text!r}: no tool name")
    pattern = rest[:-1].strip() if paren else None
    if paren and not rest.endswith(")"):
        raise RuleError(f"{text!r}: text after the pattern's ')'")
    if paren and not pattern:  # Bash() is no pattern: it must not mean the whole tool
        raise RuleError(f"{text!r}: an empty pattern; name the tool alone for all of it")
    tool = CLAUDE_NAMES.get(name, name)
    return ToolRule(tool, pattern, text)


@dataclass(frozen=True)
class ToolRules:
    """What ``--allowedTools`` and ``--disallowedTools`` said (empty: nothing)."""

    allowed: tuple[ToolRule, ...] = ()
    disallowed: tuple[ToolRule, ...] = ()

    @classmethod
    def parse(cls, allowed: Sequence[str], disallowed: Sequence[str]) -> ToolRules:
        """Raises :class:`RuleError` for a rule that cannot be read."""
        return cls(
            tuple(parse_rule(text) for text in split_rules(allowed)),
            tuple(parse_rule(text) for text in split_rules(disallowed)),
        )

    def __bool__(self) -> bool:
        return bool(self.allowed or self.disallowed)

    def offered(self, tools: Sequence[Tool]) -> tuple[Tool, ...]:
        """``tools`` without the disallowed ones; a tool with disallowed command
        patterns refuses the commands they match."""
        gone = {rule.tool for rule in self.disallowed if rule.pattern is None}
        patterns = tuple(rule for rule in self.disallowed if rule.pattern is not None)
        kept = []
        for tool in tools:
            if tool.name in gone:
                continue
            refused = tuple(rule for rule in patterns if rule.tool == tool.name == COMMAND_TOOL)
            kept.append(_refusing(tool, refused) if refused else tool)
        return tuple(kept)

    def allows_edits(self) -> bool:
        """An allowed ``Edit`` or ``Write``: edits run unasked (auto-edit)."""
        return any(
            rule.tool in ("edit_file", "write_file") and rule.pattern is None
            for rule in self.allowed
        )

    def commands(self, remembered: set[str] | None = None) -> AllowedCommands:
        """The commands approved "always" (``remembered``, kept in step), and those the
        allowed ``Bash`` rules cover."""
        rules = tuple(rule for rule in self.allowed if rule.tool == COMMAND_TOOL)
        tools = frozenset(
            always_key(rule.tool)
            for rule in self.allowed
            if rule.pattern is None and rule.tool not in _BUILT_IN_RULES
        )
        return AllowedCommands(rules, remembered if remembered is not None else set(), tools)

    def ignored(self, known: Iterable[str]) -> list[str]:
        """What these rules cannot do here, one line each: tools that do not exist
        (``known``: the tools there are), patterns on tools other than ``Bash``."""
        names = set(known)
        notes = []
        for flag, rules in (
            ("--allowedTools", self.allowed),
            ("--disallowedTools", self.disallowed),
        ):
            for rule in rules:
                if rule.tool not in names:
                    notes.append(f"{flag}: there is no tool {rule.text!r} here; ignored")
                elif rule.pattern is not None and rule.tool != COMMAND_TOOL:
                    notes.append(
                        f"{flag}: {rule.text!r}: only Bash(...) takes a pattern here; ignored"
                    )
        return notes


class AllowedCommands(set[str]):
    """The set of commands approved "always" (the approval policy asks ``command in
    remembered``), which also holds every command an allowed ``Bash`` rule covers.
    Additions go to ``remembered`` too, so a session's answers outlive this view."""

    def __init__(
        self,
        rules: tuple[ToolRule, ...],
        remembered: set[str],
        tools: frozenset[str] = frozenset(),
    ) -> None:
        super().__init__(remembered)
        self.rules = rules
        self.remembered = remembered
        self.tools = tools

    def __contains__(self, command: object) -> bool:
        if super().__contains__(command):
            return True
        if not isinstance(command, str):
            return False
        if command.startswith("\0"):  # a whole tool's key: no command pattern covers it
            return command in self.tools
        return any(rule.matches_command(command) for rule in self.rules)

    def add(self, command: str) -> None:
        super().add(command)
        self.remembered.add(command)


def _refusing(tool: Tool, rules: tuple[ToolRule, ...]) -> Tool:
    """``tool``, refusing (before approval) the commands ``rules`` match."""
    planner = tool.planner

    def plan(arguments: Arguments, context: ToolContext) -> Plan:
        made = planner(arguments, context)
        if isinstance(made, CommandPlan):
            for rule in rules:
                if rule.touches_command(made.command):
                    raise ToolError(f"not run: --disallowedTools {rule.text} forbids it")
        return made

    return dataclasses.replace(tool, planner=plan)
