"""The OS sandbox ``run_command`` runs in: bubblewrap on Linux, sandbox-exec on macOS.

A pattern list cannot tell every harmful command from a harmless one; the sandbox
makes the harm impossible instead. Under bubblewrap a command sees:

- the whole file system read-only, except the writable root (the workspace), bound
  read-write, and a private, empty ``/tmp`` and ``/run`` (so no system sockets; a
  socket elsewhere, such as a database's in its data folder, stays reachable: a
  read-only mount does not stop ``connect()``; abstract sockets are cut off with the
  network namespace);
  ``/dev`` holds only null, zero, random, tty and the like, read-only: no disk device;
- the user's private places (:mod:`.private`: ``~/.ssh``, cloud credentials, shell
  histories, qwen-dev's own files) covered: an empty read-only folder over each
  folder, an unreadable file over each file;
- where git takes code from, read-only (:mod:`.git_guard`: the workspace repository's
  config, hooks and info, what its config includes, its hooks path; the home folder's
  git config and shell start-up files when the workspace holds it): a command can
  commit, but nothing it writes runs later outside the sandbox;
- new PID, IPC, UTS and cgroup namespaces, with their own ``/proc``: the assistant
  and every other process are invisible (no ``/proc/$PPID/environ``);
- no network (a namespace of its own, with only loopback) unless the call allows it;
- no capabilities, even when the assistant runs as root;
- an environment of PATH, HOME, LANG and TERM only: no provider key can be read;
- a new session, and death with its parent: when the shell ends, times out or is
  cancelled, the namespace and every process in it (``setsid -f`` included) are gone.

On macOS ``sandbox-exec`` applies a profile of the same shape (writes only to the
writable root and the temporary folders, no network, signals only inside the
sandbox, no access to the private places); it has no PID namespace. Whether a sandbox
works is found out once, by running ``true`` in it with the options real commands
get (the home folder's private places covered), and cached.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TextIO

from .executables import find_program
from .git_guard import Frozen, frozen_places
from .private import private_places, within

#: Variables a sandboxed command gets from the assistant's environment (nothing else).
PASSED_ENV = ("PATH", "HOME", "LANG", "TERM")
_FALLBACK_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "TERM": "dumb"}
#: Set for every command: nothing may stop to ask for input or open a pager.
QUIET_ENV = {"GIT_TERMINAL_PROMPT": "0", "PAGER": "cat", "GIT_PAGER": "cat"}
_PROBE_SECONDS = 10.0
_SEATBELT = "/usr/bin/sandbox-exec"


class Sandbox(Protocol):
    """Turns a shell command into the argv that runs it confined."""

    @property
    def name(self) -> str: ...

    def argv(
        self,
        command: str,
        *,
        cwd: Path,
        writable: Path,
        network: bool,
        private: Sequence[Path] = (),
    ) -> list[str]:
        """The command line running ``command`` with ``/bin/sh`` in ``cwd``, able to
        write only below ``writable`` (and a private temporary folder), unable to read
        the ``private`` places."""
        ...


# /etc/resolv.conf often points into /run: keep name resolution when network is allowed.
_RESOLVER = ["--ro-bind-try", "/run/systemd/resolve", "/run/systemd/resolve"]


#: Where /var/run is a folder of its own rather than a link to /run (older systems), it
#: holds the same daemons' sockets and is emptied the same way.
_OLD_RUN = (
    [] if os.path.islink("/var/run") or not os.path.isdir("/var/run") else ["--tmpfs", "/var/run"]
)

#: Empty in the sandbox already: a private place below them needs no cover.
_EMPTY_IN_SANDBOX = (Path("/tmp"), Path("/run"))


def _cover(private: Sequence[Path], writable: Path) -> list[str]:
    """bwrap options laying an empty read-only folder over each private folder and
    ``/dev/null`` (unreadable there: the mount has no devices) over each private file
    that exists and is visible in the sandbox. The folders between the writable root
    and a place below it are bound onto themselves first: a mount point cannot be
    renamed, so ``mv .config x`` cannot carry ``.config/gh`` out from under its cover."""
    chosen: list[tuple[Path, bool]] = []
    for place in sorted(set(private)):
        if within(writable, place) or any(within(place, c) for c, _ in chosen):
            continue  # it holds the workspace, or is covered already
        if not within(place, writable) and any(within(place, m) for m in _EMPTY_IN_SANDBOX):
            continue
        try:
            # A link is left: its target is listed too, and covering that covers the link.
            if place.is_symlink() or not place.exists():
                continue
            chosen.append((place, place.is_dir()))
        except OSError:  # a folder on the way we may not enter: neither may the command
            continue
    pins: dict[Path, None] = {}
    for place, _ in chosen:
        if place.is_relative_to(writable):
            for folder in reversed(place.relative_to(writable).parents[:-1]):
                pins.setdefault(writable / folder, None)
    options: list[str] = []
    for folder in pins:
        options += ["--bind", str(folder), str(folder)]
    for place, is_dir in chosen:
        if is_dir:
            options += ["--tmpfs", str(place), "--remount-ro", str(place)]
        else:
            options += ["--ro-bind", "/dev/null", str(place)]
    return options


def _freeze(frozen: Frozen) -> list[str]:
    """bwrap options keeping ``frozen`` as it is: pins first (bound onto themselves, so
    they cannot be renamed), then read-only binds, then read-only empty folders where
    one was missing (bwrap makes the folder, empty, as its mount point)."""
    options: list[str] = []
    for folder in frozen.pins:
        options += ["--bind", str(folder), str(folder)]
    for place in frozen.read_only:
        options += ["--ro-bind", str(place), str(place)]
    for folder in frozen.made:
        options += ["--tmpfs", str(folder), "--remount-ro", str(folder)]
    return options


@dataclass(frozen=True)
class Bubblewrap:
    """Linux: bubblewrap (``bwrap``), namespaces without a daemon or privileges.

    Args:
        executable: the ``bwrap`` binary.
    """

    executable: str
    name: str = "bubblewrap"

    def argv(
        self,
        command: str,
        *,
        cwd: Path,
        writable: Path,
        network: bool,
        private: Sequence[Path] = (),
    ) -> list[str]:
        # Mounts apply in order: the writable root is bound after the private /tmp so
        # that a workspace below /tmp stays visible (bwrap creates its mount point), and
        # the private places are covered after it, so that those inside it are too.
        return [
            self.executable,
            "--ro-bind", "/", "/",
            "--dev", "/dev",
            "--proc", "/proc",
            "--tmpfs", "/tmp",
            # /run holds the sockets of dbus, systemd and docker: a read-only mount does
            # not stop connect(), and through them a command could power off the machine.
            "--tmpfs", "/run",
            *_OLD_RUN,
            *(_RESOLVER if network else []),
            "--bind", str(writable), str(writable),
            *_cover(private, writable),
            *_freeze(frozen_places(writable)),
            "--remount-ro", "/dev",
            "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
            *([] if network else ["--unshare-net"]),
            "--cap-drop", "ALL",
            "--die-with-parent",
            "--new-session",
            "--chdir", str(cwd),
            "--", "/bin/sh", "-c", command,
        ]  # fmt: skip


_SEATBELT_PROFILE = """(version 1)
(deny default)
(allow process-exec)
(allow process-fork)
(allow signal (target same-sandbox))
(allow process-info* (target same-sandbox))
(allow sysctl-read)
(allow mach-lookup)
(allow ipc-posix-sem)
(allow user-preference-read)
(allow file-read*)
(allow file-map-executable)
(allow file-write* (subpath (param "WRITABLE")))
(allow file-write* (subpath "/private/tmp"))
(allow file-write* (subpath "/private/var/folders"))
(allow file-write-data (literal "/dev/null"))
(allow file-read* file-write* (subpath "/dev/fd"))
"""
_SEATBELT_NETWORK = """(allow network-outbound)
(allow network-inbound)
(allow system-socket)
"""


@dataclass(frozen=True)
class Seatbelt:
    """macOS: ``sandbox-exec`` with a deny-by-default profile.

    Untested here (no macOS machine): the profile follows the shape of the ones
    Codex and others ship. Temporary folders are shared, not private, and there is no
    PID namespace; other processes are hidden by ``process-info* (target same-sandbox)``.
    """

    executable: str = _SEATBELT
    name: str = "sandbox-exec"

    def argv(
        self,
        command: str,
        *,
        cwd: Path,
        writable: Path,
        network: bool,
        private: Sequence[Path] = (),
    ) -> list[str]:
        profile = _SEATBELT_PROFILE + (_SEATBELT_NETWORK if network else "")
        hidden = [p for p in private if not within(writable, p)]
        params: list[str] = []
        # The last matching rule wins: these denials come after the allows. Paths go in
        # as parameters, never into the profile's text (no quoting to get wrong).
        for number, place in enumerate(hidden):
            profile += f'(deny file-read* file-write* (subpath (param "PRIVATE{number}")))\n'
            params += ["-D", f"PRIVATE{number}={place}"]
        frozen = frozen_places(writable)
        for number, place in enumerate([*frozen.read_only, *frozen.made]):
            profile += f'(deny file-write* (subpath (param "FROZEN{number}")))\n'
            params += ["-D", f"FROZEN{number}={place}"]
        for number, place in enumerate(frozen.pins):  # the folder itself: no rename
            profile += f'(deny file-write-unlink (literal (param "PINNED{number}")))\n'
            params += ["-D", f"PINNED{number}={place}"]
        return [
            self.executable,
            "-p", profile,
            "-D", f"WRITABLE={writable}",
            *params,
            "/bin/sh", "-c", command,
        ]  # fmt: skip


@dataclass(frozen=True)
class SandboxStatus:
    """Whether commands can run sandboxed here, and if not, why.

    Args:
        sandbox: the sandbox to use, or None.
        detail: what was found (``bubblewrap 0.8.0``), or why there is none.
    """

    sandbox: Sandbox | None
    detail: str

    @property
    def available(self) -> bool:
        return self.sandbox is not None

    def describe(self) -> str:
        if self.sandbox is not None:
            return f"commands run in {self.detail}"
        return f"no sandbox: {self.detail}; yolo asks before every command"


def sandbox_environment(parent: Mapping[str, str]) -> dict[str, str]:
    """The whole environment of a sandboxed command: :data:`PASSED_ENV` taken from
    ``parent`` (PATH, so the user's tools are found; HOME, read-only inside), no more."""
    env = {name: parent[name] for name in PASSED_ENV if parent.get(name)}
    for name, value in _FALLBACK_ENV.items():
        env.setdefault(name, value)
    env.setdefault("HOME", str(Path.home()))
    env.update(QUIET_ENV)
    return env


def probe(platform: str = sys.platform) -> SandboxStatus:
    """Find a sandbox for ``platform`` and check that it really runs a command."""
    if platform.startswith("linux"):
        executable = find_program("bwrap")  # never one the workspace holds
        if executable is None:
            return SandboxStatus(None, "bubblewrap is not installed (apt-get install bubblewrap)")
        return _try(Bubblewrap(executable), _version(executable))
    if platform == "darwin":
        if not os.path.exists(_SEATBELT):
            return SandboxStatus(None, f"{_SEATBELT} is missing")
        return _try(Seatbelt(), "sandbox-exec")
    return SandboxStatus(None, f"no sandbox is supported on {platform}")


@functools.cache
def detect_sandbox() -> SandboxStatus:
    """:func:`probe` for this machine, run once per process (a few milliseconds)."""
    return probe()


def announce_missing(stream: TextIO | None = None) -> None:
    """Tell the user, once per process, that commands run without a sandbox."""
    status = detect_sandbox()
    if not status.available:
        _announce(status.detail, stream or sys.stderr)


@functools.cache
def _announce(detail: str, stream: TextIO) -> None:
    print(
        f"qwen-dev: commands run without an OS sandbox ({detail}); "
        "yolo mode asks before every command",
        file=stream,
    )


def _version(executable: str) -> str:
    try:
        out = subprocess.run(
            [executable, "--version"], capture_output=True, text=True, timeout=_PROBE_SECONDS
        )
    except (OSError, subprocess.SubprocessError):
        return "bubblewrap"
    return out.stdout.strip() or "bubblewrap"


def _try(sandbox: Sandbox, found: str) -> SandboxStatus:
    with tempfile.TemporaryDirectory(prefix="qwen-dev-sandbox-") as folder:
        root = Path(folder).resolve()
        argv = sandbox.argv(
            "true", cwd=root, writable=root, network=False, private=private_places(Path.home())
        )
        try:
            run = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                timeout=_PROBE_SECONDS,
                env=sandbox_environment(os.environ),
                stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            return SandboxStatus(None, f"{sandbox.name} cannot start: {exc}")
    if run.returncode != 0:
        why = (run.stderr.strip().splitlines() or [f"exit code {run.returncode}"])[-1]
        return SandboxStatus(None, f"{sandbox.name} does not work here: {why}")
    return SandboxStatus(sandbox, found)
