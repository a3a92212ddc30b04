"""The ``qwen-dev`` console script, before anything is imported.

``qwen-dev --version`` alone is answered here: scripts and shell prompts call it often,
and building the command tree (typer, rich, every command's options) would cost it
three times the interpreter's own start-up. Everything else, ``--version`` with more
on the line included, goes to :func:`qwen_dev_cli.cli.main`.
"""

from __future__ import annotations

import sys


def main() -> None:
    """Console-script entry point."""
    if sys.argv[1:] == ["--version"]:
        from . import __version__

        print(f"qwen-dev {__version__}")
        return
    from .cli import main as run

    run()
