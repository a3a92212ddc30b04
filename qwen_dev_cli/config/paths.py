"""Where configuration and state live: the user file, the project file, the state folder,
and the variables that move them or override settings.

Imported at CLI start-up: standard library only (``platformdirs`` lazily).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Final

from .errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Mapping

PROJECT_CONFIG_NAME: Final = ".qwen-dev.toml"
APP_NAME: Final = "qwen-dev"

ENV_HOME: Final = "QWEN_DEV_HOME"
ENV_CONFIG: Final = "QWEN_DEV_CONFIG"
ENV_PROVIDER: Final = "QWEN_DEV_PROVIDER"
ENV_MODEL: Final = "QWEN_DEV_MODEL"
ENV_APPROVAL: Final = "QWEN_DEV_APPROVAL"
ENV_STATE: Final = "QWEN_DEV_STATE"


def env_value(env: Mapping[str, str], name: str) -> str | None:
    """A variable's value, stripped; unset and blank are the same: not set."""
    value = env.get(name, "").strip()
    return value or None


def data_dir(env: Mapping[str, str] | None = None) -> Path:
    """The one folder for all state: ``$QWEN_DEV_HOME``, else the platform data dir."""
    env = os.environ if env is None else env
    home = env_value(env, ENV_HOME)
    if home is not None:
        return Path(home).expanduser()
    import platformdirs  # lazy: keep CLI start-up light

    return Path(platformdirs.user_data_dir(APP_NAME))


def user_config_path(env: Mapping[str, str] | None = None) -> Path:
    """``$QWEN_DEV_CONFIG``, else ``config.toml`` in the platform user config dir."""
    env = os.environ if env is None else env
    configured = env_value(env, ENV_CONFIG)
    if configured is not None:
        return Path(configured).expanduser()
    import platformdirs  # lazy: keep CLI start-up light

    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"


def find_project_config(cwd: Path, home: Path | None = None) -> Path | None:
    """The ``.qwen-dev.toml`` of the project ``cwd`` is in: the first one from ``cwd``
    up to its repository's root (the folder holding ``.git``) or ``home``, whichever
    comes first. Folders others may write to (``/tmp``) or that belong to another user
    are passed over: anyone could plant a file there."""
    start = cwd.expanduser().resolve()
    home = (home or Path.home()).expanduser().resolve()
    for folder in (start, *start.parents):
        candidate = folder / PROJECT_CONFIG_NAME
        if _trusted_folder(folder) and os.path.lexists(candidate):
            return candidate
        if folder == home or os.path.lexists(folder / ".git"):
            return None
    return None


def _trusted_folder(folder: Path) -> bool:
    try:
        info = folder.stat()
    except OSError:
        return False
    mine = info.st_uid in (os.getuid(), 0)
    return mine and not info.st_mode & 0o002


def same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one existing file (a user config inside the project tree)."""
    try:
        return a.exists() and b.exists() and a.samefile(b)
    except OSError:
        return False


#: Entries of a state folder found open that are checked (it holds a dozen).
_MOST_ENTRIES = 1000


def make_home_private(home: Path, notices: list[str]) -> None:
    """``QWEN_DEV_HOME`` holds sessions, history and account state: a folder others may
    write to is tightened (when it is ours) or refused."""
    try:
        info = home.stat()
    except OSError:
        return  # not there yet: it is created private when first used
    if not info.st_mode & 0o022:
        return
    if info.st_uid != os.getuid():
        raise ConfigError(
            f"{home}: others may write to this state folder and it is not yours; "
            f"set {ENV_HOME} to a folder of your own"
        )
    try:
        home.chmod(stat.S_IMODE(info.st_mode) & ~0o022)
        # While it was open, anyone could have put a folder of theirs in it, or left
        # ours open (sessions/ at 0777): what is in it is checked the same way.
        for entry in list(home.iterdir())[:_MOST_ENTRIES]:
            found = entry.lstat()
            if found.st_uid != os.getuid():
                raise ConfigError(
                    f"{entry}: another user put this in your state folder while others "
                    f"could write to it; remove it, or set {ENV_HOME} to a folder of your own"
                )
            if stat.S_ISDIR(found.st_mode) and found.st_mode & 0o022:
                entry.chmod(stat.S_IMODE(found.st_mode) & ~0o022)
    except OSError as exc:
        raise ConfigError(
            f"{home}: others may write to it, and it cannot be made private: {exc.strerror}"
        ) from None
    notices.append(f"{home} was writable by others; it is now writable by you alone")
