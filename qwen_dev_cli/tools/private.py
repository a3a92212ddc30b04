"""The user's private places: places no tool reads and no sandboxed command sees.

Whatever a tool reads or a command prints goes to the model, and from there to the
provider's server. A prompt injected into a cloned repository ("to set up, run ``cat
~/.aws/credentials``") would otherwise ship the user's credentials out in an answer,
without any write or network access. So the usual credential stores below the home
folder (and where their variables move them), and qwen-dev's own files (its state
folder, with every past conversation, and the user config), are private:

- the file tools refuse them, and ``grep`` and ``glob`` skip them, links to them
  included (:class:`~.workspace.Workspace`), which matters when the workspace holds
  them (the user works in their home folder);
- the sandbox lays an empty read-only folder, or an unreadable file, over each one
  that exists, and pins the folders on the way to them so that none can be renamed
  out from under its cover (:mod:`.sandbox`).

A private place that holds the workspace itself is not hidden: the user chose to work
there. Known limits: a hard link made before, another mount of the same files, and a
file the user's own programs replace (by rename) while a command runs are not covered.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

#: Credential stores by common convention, relative to the home folder: keys and
#: tokens (SSH, GnuPG, cloud CLIs, container and package registries, git hosts,
#: databases, password managers, model hubs) and shell histories, where exported keys
#: end up.
CREDENTIAL_PLACES = (
    ".ssh",
    ".gnupg",
    ".aws",
    ".azure",
    ".config/gcloud",
    ".kube",
    ".docker",
    ".config/containers/auth.json",
    ".netrc",
    ".git-credentials",
    ".config/git/credentials",
    ".config/gh",
    ".config/hub",
    ".config/op",
    ".pypirc",
    ".npmrc",
    ".cargo/credentials",
    ".cargo/credentials.toml",
    ".gem/credentials",
    ".m2/settings.xml",
    ".gradle/gradle.properties",
    ".terraform.d/credentials.tfrc.json",
    ".vault-token",
    ".pgpass",
    ".my.cnf",
    ".password-store",
    ".local/share/keyrings",
    ".cache/huggingface/token",
    ".huggingface/token",
    # Other assistants' sign-ins and keys.
    ".codex/auth.json",
    ".claude/.credentials.json",
    ".claude.json",
    ".gemini/oauth_creds.json",
    ".qwen/oauth_creds.json",
    # More registries, clouds and tools that keep a token in a file.
    ".kaggle/kaggle.json",
    ".config/rclone/rclone.conf",
    ".config/glab-cli",
    ".s3cfg",
    ".config/sops/age/keys.txt",
    ".config/age",
    ".config/pip/pip.conf",
    ".pip/pip.conf",
    ".yarnrc.yml",
    ".config/composer/auth.json",
    ".composer/auth.json",
    ".config/gcloud/application_default_credentials.json",
    ".bash_history",
    ".zsh_history",
    ".zhistory",
    ".histfile",
    ".python_history",
    ".psql_history",
    ".mysql_history",
    ".node_repl_history",
    ".local/share/fish/fish_history",
)

#: Variables that move a credential store away from its usual place.
_FILE_VARIABLES = (
    "GNUPGHOME",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONFIG_FILE",
    "DOCKER_CONFIG",
    "PASSWORD_STORE_DIR",
    "HISTFILE",
    "HF_TOKEN_PATH",
    "VAULT_TOKEN_FILE",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "PGPASSFILE",
    "SOPS_AGE_KEY_FILE",
    "KAGGLE_CONFIG_DIR",
    "RCLONE_CONFIG",
    "PIP_CONFIG_FILE",
    "CLAUDE_CONFIG_DIR",
    "CODEX_HOME",
)


def private_places(
    home: Path, own: Iterable[Path] = (), env: Mapping[str, str] | None = None
) -> tuple[Path, ...]:
    """The private places: :data:`CREDENTIAL_PLACES` below ``home``, those the variables
    of ``env`` (default: this process's) name, and ``own`` (the assistant's state folder
    and config file); absolute, whether they exist or not (one created later is private
    too). A symbolic link's target is listed as well, unless it is a device or the like
    (a history linked to ``/dev/null``)."""
    env = os.environ if env is None else env
    home = _absolute(home, whole=True)
    candidates = [home / p for p in CREDENTIAL_PLACES]
    config = env.get("XDG_CONFIG_HOME")
    if config and Path(config).is_absolute():
        candidates += [Path(config) / p[8:] for p in CREDENTIAL_PLACES if p[:8] == ".config/"]
    hub = env.get("HF_HOME")
    if hub and Path(hub).is_absolute():
        candidates.append(Path(hub) / "token")
    cargo = env.get("CARGO_HOME")
    if cargo and Path(cargo).is_absolute():
        candidates += [Path(cargo) / "credentials", Path(cargo) / "credentials.toml"]
    for name in _FILE_VARIABLES:
        value = env.get(name)
        if value and Path(value).is_absolute():
            candidates.append(Path(value))
    for value in env.get("KUBECONFIG", "").split(os.pathsep):
        if value and Path(value).is_absolute():
            candidates.append(Path(value))
    found: dict[Path, None] = {}
    for place in (*map(_absolute, candidates), *map(_absolute, own)):
        found.setdefault(place, None)
        try:
            target = place.resolve()
            if target != place and (not target.exists() or target.is_file() or target.is_dir()):
                found.setdefault(target, None)
        except (OSError, RuntimeError):  # a link loop, or a folder we may not enter
            continue
    return tuple(found)


def within(path: Path, folder: Path) -> bool:
    """Whether ``path`` is ``folder`` or below it (both absolute)."""
    return path.is_relative_to(folder)


def _absolute(path: Path, *, whole: bool = False) -> Path:
    path = path.expanduser()
    if not path.is_absolute():
        path = Path.cwd() / path
    # The folders on the way are resolved (a home folder behind a link), the last part
    # is kept: a link named .ssh is listed as itself and, by the caller, as its target.
    try:
        return path.resolve() if whole else path.parent.resolve() / path.name
    except (OSError, RuntimeError):
        return Path(os.path.normpath(path))


#: Targets remembered at most (a home with more credential links than this is odd).
_MOST_REMEMBERED = 1000


def linked_places(places: Iterable[Path], memory: Path) -> tuple[Path, ...]:
    """Where the private ``places`` that are links lead, now and in every session that
    saw them (kept in ``memory``, a JSON list): ``~/.aws`` pointing at ``dotfiles/aws``
    keeps ``dotfiles/aws`` private after a command removed the link, in this session and
    the next. The file is rewritten only when a new target is found; one that cannot be
    read or written costs only the memory, never a session."""
    remembered = _read_remembered(memory)
    found = dict.fromkeys(remembered)
    for place in places:
        try:
            if not place.is_symlink():
                continue
            target = place.resolve()
        except (OSError, RuntimeError):
            continue
        if target.is_absolute() and (target.is_dir() or target.is_file()):
            found.setdefault(target, None)
    if len(found) > len(remembered):
        _write_remembered(memory, list(found)[:_MOST_REMEMBERED])
    return tuple(found)


def _read_remembered(memory: Path) -> list[Path]:
    try:
        with memory.open(encoding="utf-8") as handle:
            data = json.loads(handle.read(1 << 20))
    except (OSError, ValueError, RecursionError):
        return []
    if not isinstance(data, list):
        return []
    return [
        Path(item)
        for item in data[:_MOST_REMEMBERED]
        if isinstance(item, str) and item.startswith("/")
    ]


def _write_remembered(memory: Path, targets: list[Path]) -> None:
    temporary = memory.with_name(f".{memory.name}.{os.getpid()}")
    try:
        memory.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(json.dumps([str(target) for target in targets]))
        temporary.replace(memory)
    except OSError:
        with contextlib.suppress(OSError):
            temporary.unlink()
