"""How ``qwen-dev --help`` reads: the command classes every command uses, and the text
shared by several commands' help.

Typer's rich help prints each option's Python type as its metavar (``--json <bool>``,
``--provider <list[str]>``). Options that take a value name it themselves
(``metavar="NAME"``, or their choices); flags take none, so :class:`Command` and
:class:`Group` show none for them, ``--help`` included.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from typer.core import TyperCommand, TyperGroup, TyperOption

if TYPE_CHECKING:
    from typer._click import Context, Parameter

#: The panel of the options that mean the same before or after a command.
GLOBAL_PANEL = "Global options (before or after the command)"

EXAMPLES = """\
[bold]Examples[/bold]
  qwen-dev                                   chat about the code in this folder
  qwen-dev --continue                        resume the latest chat here
  qwen-dev ask "what does @src/app.py do?"   one answer; @path attaches a file
  git diff | qwen-dev ask "review this"      piped input is added as context
  qwen-dev -p "fix it" --output-format stream-json   JSON events, for programs
  qwen-dev doctor                            check that the providers answer
"""

EXIT_CODES = """\
[bold]Exit codes[/bold]
  0    answered, even when tool calls were denied (stderr lists them)
  2    usage or configuration error (no provider left included)
  3    providers failed after retries and failover
  4    a provider refused the request (auth, bad request, context too long)
  130  interrupted
"""


def _flags_without_type(params: list[Parameter]) -> list[Parameter]:
    for param in params:
        if isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
            param.metavar = ""  # shown as is: nothing
    return params


class Command(TyperCommand):
    """A command whose flags show no type in ``--help``."""

    def get_params(self, ctx: Context) -> list[Parameter]:
        return _flags_without_type(super().get_params(ctx))


class Group(TyperGroup):
    """A group (``qwen-dev``, ``sessions``, ``config``) whose flags show no type."""

    def get_params(self, ctx: Context) -> list[Parameter]:
        return _flags_without_type(super().get_params(ctx))
