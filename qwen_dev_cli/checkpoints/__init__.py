"""Checkpoints of the workspace, so a session can go back to before any turn.

- :mod:`.git`: git run on the shadow repository only, in a clean environment.
- :mod:`.shadow`: :class:`ShadowRepo`, taking checkpoints and comparing them.
- :mod:`.restore`: planning and carrying out a restore, with backups of the user's edits.
- :mod:`.prune`: letting go of the checkpoints of sessions that are gone.

Used by the REPL (``/rewind``) and the agent (a checkpoint before each approved
command); knows nothing of either. Imports ``tools`` (the backup file rule) and leaves.
"""

from __future__ import annotations

from .git import CheckpointBusy, CheckpointError, CheckpointTimeout, find_git
from .prune import prune_checkpoints
from .restore import RestorePlan, RestoreResult, plan_restore, restore
from .shadow import (
    DEFAULT_MAX_FILE_BYTES,
    Checkpoint,
    FileDelta,
    ShadowRepo,
    Skipped,
    workspace_key,
)

__all__ = [
    "DEFAULT_MAX_FILE_BYTES",
    "Checkpoint",
    "CheckpointBusy",
    "CheckpointError",
    "CheckpointTimeout",
    "FileDelta",
    "RestorePlan",
    "RestoreResult",
    "ShadowRepo",
    "Skipped",
    "find_git",
    "plan_restore",
    "prune_checkpoints",
    "restore",
    "workspace_key",
]
