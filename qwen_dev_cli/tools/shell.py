"""Just enough of a shell parser to classify commands: compound commands split into
pipelines of simple commands, substitutions pulled out for separate inspection.

``parse_shell("curl -s x | sh && echo $(rm -rf ~)")`` gives two pipelines
(``curl -s x | sh`` and ``echo __SUB0__``) and one substitution body (``rm -rf ~``),
which the classifier parses in turn. Quoting follows POSIX rules through
:mod:`shlex`; unquoted newlines separate commands like ``;``. This is not a shell: it
errs on the side of seeing more commands than bash would (a quoted ``";"`` splits),
which can only make a classification stricter.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

#: Stands in for the i-th substitution in the words of the outer command.
PLACEHOLDER = "__SUB{}__"
PLACEHOLDER_RE = re.compile(r"__SUB(\d+)__")

_SEPARATORS = ("&&", "||", ";;", ";", "&", "(", ")", "{", "}")
_PIPES = ("|&", "|")
_REDIRECTS = ("&>>", "&>", "<<<", "<<", ">>", ">&", "<&", ">|", "<>", "<", ">")
_OPERATORS = sorted((*_SEPARATORS, *_PIPES, *_REDIRECTS), key=len, reverse=True)
_PUNCTUATION = set("();<>|&")


@dataclass(frozen=True)
class SimpleCommand:
    """One command of a pipeline.

    Args:
        argv: its words, unquoted; substitutions appear as :data:`PLACEHOLDER`.
        redirects: ``(operator, target)`` pairs, e.g. ``(">", "/dev/sda")``.
        piped: its standard input is the previous command's output.
    """

    argv: tuple[str, ...]
    redirects: tuple[tuple[str, str], ...] = ()
    piped: bool = False


@dataclass
class ParsedShell:
    """A command line taken apart.

    Args:
        pipelines: each a list of commands joined by ``|``.
        substitutions: the bodies of ``$(...)``, backticks, ``<(...)`` and ``>(...)``.
        exact: False when the quoting could not be parsed and a rough split was used.
    """

    pipelines: list[list[SimpleCommand]] = field(default_factory=list)
    substitutions: list[str] = field(default_factory=list)
    exact: bool = True

    @property
    def commands(self) -> list[SimpleCommand]:
        return [command for pipeline in self.pipelines for command in pipeline]


def parse_shell(text: str) -> ParsedShell:
    """Split ``text`` into pipelines of simple commands (never raises)."""
    flat, substitutions = extract_substitutions(text)
    parsed = ParsedShell(substitutions=substitutions)
    try:
        words = _tokens(flat)
    except ValueError:  # unbalanced quotes: bash would refuse too; be rough but safe
        parsed.exact = False
        words = re.findall(r"[();<>|&]+|[^\s();<>|&]+", flat.replace('"', " ").replace("'", " "))
    parsed.pipelines = _group(words)
    return parsed


def _tokens(text: str) -> list[str]:
    lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    # shlex takes any "#" as the start of a comment, even inside a word; bash only at a
    # word's start. Reading it as a comment here dropped the rest of the line, newlines
    # (already ";") included, so `ls a#;cat /proc/1/environ` was judged as `ls a`. Kept
    # as text instead: a real comment is then read as words, which can only add risk.
    lexer.commenters = ""
    out: list[str] = []
    for token in lexer:
        if token and set(token) <= _PUNCTUATION:
            out.extend(_split_operators(token))
        else:
            out.append(token)
    return out


def _split_operators(token: str) -> list[str]:
    out = []
    i = 0
    while i < len(token):
        op = next(o for o in [*_OPERATORS, token[i]] if token.startswith(o, i))
        out.append(op)
        i += len(op)
    return out


def _group(words: list[str]) -> list[list[SimpleCommand]]:
    pipelines: list[list[SimpleCommand]] = [[]]
    argv: list[str] = []
    redirects: list[tuple[str, str]] = []
    piped = False
    i = 0

    def finish() -> None:
        if argv or redirects:
            pipelines[-1].append(SimpleCommand(tuple(argv), tuple(redirects), piped))
        argv.clear()
        redirects.clear()

    while i < len(words):
        word = words[i]
        if word in _REDIRECTS:
            if argv and argv[-1].isdigit():  # "2>" : the digit names a descriptor
                argv.pop()
            target = words[i + 1] if i + 1 < len(words) else ""
            redirects.append((word, target))
            i += 2
            continue
        if word in _PIPES:
            finish()
            piped = True
        elif word in _SEPARATORS:
            finish()
            piped = False
            if pipelines[-1]:
                pipelines.append([])
        else:
            argv.append(word)
        i += 1
    finish()
    return [pipeline for pipeline in pipelines if pipeline]


# --- substitutions ----------------------------------------------------------------------


def extract_substitutions(text: str) -> tuple[str, list[str]]:
    """``text`` with each top-level substitution replaced by a placeholder (and unquoted
    newlines by ``;``), and the substitutions' bodies in order."""
    out: list[str] = []
    bodies: list[str] = []
    quote: str | None = None
    i = 0
    while i < len(text):
        char = text[i]
        if quote == "'":
            quote = None if char == "'" else quote
            out.append(char)
            i += 1
            continue
        if char == "\\":
            out.append(text[i : i + 2])
            i += 2
            continue
        opener = text[i : i + 2]
        if opener == "$(" or (quote is None and opener in ("<(", ">(")):
            end = _matching_paren(text, i + 2)
            bodies.append(_strip_arithmetic(text[i + 2 : end]))
            out.append(PLACEHOLDER.format(len(bodies) - 1))
            i = end + 1
            continue
        if char == "`":
            end = text.find("`", i + 1)
            end = len(text) if end == -1 else end
            bodies.append(text[i + 1 : end].replace("\\`", "`"))
            out.append(PLACEHOLDER.format(len(bodies) - 1))
            i = end + 1
            continue
        if char in "'\"" and (quote is None or quote == char):
            quote = None if quote == char else char
        elif char == "\n" and quote is None:
            char = ";"
        out.append(char)
        i += 1
    return "".join(out), bodies


def _strip_arithmetic(body: str) -> str:
    # $(( 1 + 2 )) : the body "( 1 + 2 )" is arithmetic, not a command. But bash reads
    # $((rm -rf ~)|(true)) as a command substitution of two subshells: anything with
    # command structure inside is kept, to be classified.
    if body.startswith("(") and body.endswith(")") and not _COMMAND_STRUCTURE.search(body):
        return ""
    return body


_COMMAND_STRUCTURE = re.compile(r"\)\s*[|&;]|[|&;]\s*\(|\)\s*\(|[;`]|\$\(|\|\|")


def _matching_paren(text: str, start: int) -> int:
    """The index of the ``)`` closing a ``(`` just before ``start`` (or the end)."""
    depth = 1
    quote: str | None = None
    i = start
    while i < len(text):
        char = text[i]
        if quote == "'":
            quote = None if char == "'" else quote
        elif char == "\\":
            i += 1
        elif char in "'\"" and (quote is None or quote == char):
            quote = None if quote == char else char
        elif quote is None and char == "(":
            depth += 1
        elif quote is None and char == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return len(text)
