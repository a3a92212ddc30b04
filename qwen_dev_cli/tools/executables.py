"""Finding a program on ``PATH`` that the workspace cannot have put there.

A ``PATH`` with a relative entry (``.``, or an empty one: a stray leading, trailing
or doubled ``:`` means the current folder) makes ``shutil.which`` and ``execvp`` look
in the current folder, which is the workspace: a cloned repository holding an
executable ``git`` or ``bwrap`` at its root would be run by qwen-dev itself (a
checkpoint before every turn, the sandbox probe at start-up), without the user typing
anything. Programs qwen-dev runs on its own are looked up in the absolute entries only.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping


def absolute_path(environ: Mapping[str, str] | None = None) -> str:
    """``PATH`` without its relative entries (``os.defpath`` when it is not set)."""
    value = (os.environ if environ is None else environ).get("PATH", os.defpath)
    return os.pathsep.join(entry for entry in value.split(os.pathsep) if os.path.isabs(entry))


def find_program(name: str) -> str | None:
    """The absolute path of the program ``name`` on the absolute entries of ``PATH``."""
    return shutil.which(name, path=absolute_path())
