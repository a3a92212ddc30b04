"""The terminal's styles, named for what they mean: one table, two renderings.

Every piece of the UI styles text by meaning (``qd.warning``, ``qd.provider.open``,
``qd.diff.add``), never by colour; :data:`STYLES` says what each meaning looks like.
rich reads it as a :class:`~rich.theme.Theme` (every console the UI makes comes from
:func:`make_console`, which installs it), and prompt-toolkit as a ``Style`` derived
from the same table (:func:`prompt_style`: the prompt and its status-bar toolbar), so
the status bar looks the same under the prompt and under a streaming answer.

Colour stays where it was: rich leaves it out for ``NO_COLOR``, for output that is not
a terminal and for ``TERM=dumb``, prompt-toolkit for ``NO_COLOR``. A name missing from
the theme never crashes a ``Text`` (rich draws it plain), which is why the UI styles
through ``Text`` rather than ``style=`` arguments that rich looks up strictly.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, TextIO

from rich.theme import Theme

from .symbols import terminal_stream

if TYPE_CHECKING:
    from prompt_toolkit.styles import Style as PromptStyle
    from rich.console import Console
    from rich.style import Style

#: Each style name, by meaning, and how it looks (rich's style syntax).
STYLES: dict[str, str] = {
    # What a thing is.
    "qd.plain": "",
    "qd.muted": "dim",  # secondary: hints, labels, summaries, what a turn cost
    "qd.title": "bold",  # the headline of a block: a question, the banner
    "qd.name": "bold",  # a name in a list: a provider, a key, a command
    "qd.prompt": "bold cyan",  # the REPL's prompt mark
    "qd.slash": "bold cyan",  # a slash command in /help
    "qd.tool": "cyan",  # a tool call, as it starts
    "qd.model": "cyan",  # the provider and model answering
    "qd.file.changed": "green",  # a file a tool changed
    # How things went.
    "qd.ok": "green",
    "qd.notice": "yellow",  # worth reading: interrupted, denied, retried, a hint
    "qd.warning": "bold yellow",  # needs attention: a full context, unshared budgets
    "qd.error": "red",  # something the user asked for did not happen
    "qd.failure": "bold red",  # a turn or an action failed
    "qd.activity": "bold magenta",  # what the client is doing: a retry, a failover
    "qd.busy": "blue",  # a turn is running
    # A provider's health: its breaker, a cool-down after a 429, a low success rate.
    "qd.provider.closed": "green",
    "qd.provider.half_open": "yellow",
    "qd.provider.open": "bold red",
    "qd.provider.cooling": "yellow",
    "qd.provider.degraded": "yellow",
    # Batch progress.
    "qd.progress": "bold",  # done/total
    "qd.eta": "cyan",
    # A unified diff.
    "qd.diff.header": "bold",
    "qd.diff.add": "green",
    "qd.diff.del": "red",
    "qd.diff.hunk": "cyan",
    # How risky a command looks.
    "qd.risk.low": "green",
    "qd.risk.medium": "yellow",
    "qd.risk.high": "bold red",
    "qd.risk.critical": "bold white on red",
}

#: rich's default styles (markdown, tables, progress bars) and ours.
THEME = Theme(STYLES)

#: A breaker state as the client reports it, and the style that shows it.
_BREAKER = {
    "CLOSED": "qd.provider.closed",
    "HALF_OPEN": "qd.provider.half_open",
    "OPEN": "qd.provider.open",
}

#: The toolbar's own colours (prompt-toolkit only: rich has no toolbar).
_TOOLBAR = "noreverse bg:#1c1c1c #bcbcbc"
#: ``dim`` on the toolbar: a fixed grey, readable on its dark background whatever the
#: terminal makes of faint text.
_TOOLBAR_DIM = "fg:#808080"


def breaker_style(state: str) -> str:
    """The style name of a breaker ``state`` (``CLOSED``, ``HALF_OPEN``, ``OPEN``)."""
    return _BREAKER.get(state, "qd.plain")


def make_console(file: TextIO | None = None, *, stderr: bool = False, **options: Any) -> Console:
    """A rich ``Console`` with the theme.

    Args:
        file: where it writes; ``None``: standard output (or error, ``stderr``), seen
            through :func:`~qwen_dev_cli.ui.symbols.terminal_stream` so a terminal
            whose locale is ASCII gets ASCII tables and rules.
        stderr: write to standard error when no ``file`` is given.
        options: any other ``Console`` argument (``width``, ``force_terminal``...).
    """
    from rich.console import Console

    if file is None:
        stream = sys.stderr if stderr else sys.stdout
        shown = terminal_stream(stream)
        # Standard error is looked up at each write (a Live display redirects it), as
        # rich does; only a terminal that needs its encoding declared is pinned.
        if not stderr or shown is not stream:
            file = shown
    return Console(file=file, stderr=stderr, theme=THEME, **options)


def prompt_style() -> PromptStyle:
    """The prompt-toolkit ``Style`` of the prompt and its bottom toolbar: a class
    ``qd.NAME`` for each style of :data:`STYLES`, drawn the same way."""
    from prompt_toolkit.styles import Style as PromptStyle
    from rich.style import Style

    rules = {name: _prompt_toolkit(Style.parse(style)) for name, style in STYLES.items()}
    return PromptStyle.from_dict({"bottom-toolbar": _TOOLBAR, **rules})


def _prompt_toolkit(style: Style) -> str:
    """A rich style in prompt-toolkit's words (``bold red`` -> ``bold fg:ansired``)."""
    words = [word for word in ("bold", "italic", "underline", "reverse") if getattr(style, word)]
    if style.color is not None:
        words.append(f"fg:{_colour(style)}")
    elif style.dim:
        words.append(_TOOLBAR_DIM)
    if style.bgcolor is not None:
        words.append(f"bg:{_colour(style, background=True)}")
    return " ".join(words)


def _colour(style: Style, *, background: bool = False) -> str:
    from prompt_toolkit.styles.base import ANSI_COLOR_NAMES
    from rich.color import ColorType

    colour = style.bgcolor if background else style.color
    assert colour is not None
    if colour.type is ColorType.DEFAULT:
        return "default"
    if colour.type is ColorType.STANDARD and colour.number is not None:
        # The terminal's own palette, as rich would use it; prompt-toolkit lists
        # "ansidefault" first, then the sixteen in rich's order.
        return ANSI_COLOR_NAMES[colour.number + 1]
    return colour.get_truecolor().hex
