"""The tools the model may call, and what keeps them safe.

- :mod:`.base`: :class:`Tool`, the plans a call becomes before it runs, :class:`ToolError`.
- :mod:`.workspace`: confinement of every path to the workspace root.
- :mod:`.read`, :mod:`.search`, :mod:`.write`, :mod:`.command`: the tools.
- :mod:`.risk` (with :mod:`.shell`): how dangerous a command is.
- :mod:`.diff`, :mod:`.changes`: diffs of file changes, and undoing them.

This package knows nothing of approval modes or terminals: the agent decides what
runs; tools only plan and carry out.
"""

from __future__ import annotations

from .base import (
    Arguments,
    CommandPlan,
    McpPlan,
    Plan,
    ReadPlan,
    Tool,
    ToolContext,
    ToolError,
    ToolKind,
    WritePlan,
)
from .changes import (
    ChangeLog,
    FileChange,
    FileChangedSince,
    UndoneChange,
    UndoNeedsConfirmation,
    UndoPlan,
)
from .command import RUN_COMMAND, CommandResult, run_shell
from .read import LIST_DIR, READ_FILE
from .risk import Risk, RiskAssessment, classify_command
from .search import GLOB, GREP
from .workspace import OutsideWorkspace, Workspace
from .write import EDIT_FILE, WRITE_FILE

#: Every tool, in the order the model is told about them.
DEFAULT_TOOLS: tuple[Tool, ...] = (
    READ_FILE,
    LIST_DIR,
    GLOB,
    GREP,
    WRITE_FILE,
    EDIT_FILE,
    RUN_COMMAND,
)

__all__ = [
    "DEFAULT_TOOLS",
    "EDIT_FILE",
    "GLOB",
    "GREP",
    "LIST_DIR",
    "READ_FILE",
    "RUN_COMMAND",
    "WRITE_FILE",
    "Arguments",
    "ChangeLog",
    "CommandPlan",
    "CommandResult",
    "FileChange",
    "FileChangedSince",
    "McpPlan",
    "OutsideWorkspace",
    "Plan",
    "ReadPlan",
    "Risk",
    "RiskAssessment",
    "Tool",
    "ToolContext",
    "ToolError",
    "ToolKind",
    "UndoNeedsConfirmation",
    "UndoPlan",
    "UndoneChange",
    "Workspace",
    "WritePlan",
    "classify_command",
    "run_shell",
]
