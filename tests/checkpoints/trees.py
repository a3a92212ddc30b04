"""What a folder holds, for comparing trees byte for byte in checkpoint tests."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

#: path -> ("file", bytes, executable) | ("link", target, False)
TreeState = dict[str, tuple[str, bytes, bool]]


def tree_state(root: Path, *, skip: tuple[str, ...] = (".git",)) -> TreeState:
    """Every file and link under ``root`` (``skip``: top-level names left out)."""
    state: TreeState = {}
    for folder, dirs, files in os.walk(root):
        relative = Path(folder).relative_to(root)
        if relative == Path("."):
            dirs[:] = [d for d in dirs if d not in skip]
            files = [f for f in files if f not in skip]
        for name in [*files, *(d for d in dirs if (Path(folder) / d).is_symlink())]:
            path = Path(folder) / name
            key = str(relative / name) if relative != Path(".") else name
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode):
                state[key] = ("link", os.readlink(path).encode(), False)
            else:
                state[key] = ("file", path.read_bytes(), bool(info.st_mode & 0o100))
    return state


def hash_folder(root: Path) -> dict[str, str]:
    """Each file's (or link's) digest and mode under ``root``: a repository's ``.git``."""
    digests: dict[str, str] = {}
    for folder, _dirs, files in os.walk(root):
        for name in files:
            path = Path(folder) / name
            info = path.lstat()
            data = os.readlink(path).encode() if path.is_symlink() else path.read_bytes()
            digests[str(path.relative_to(root))] = (
                f"{hashlib.sha256(data).hexdigest()} {oct(info.st_mode)} {info.st_mtime_ns}"
            )
    return digests
