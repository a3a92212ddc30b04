"""How dangerous a shell command is: ``low``, ``medium``, ``high`` or ``critical``.

Compound commands are taken apart (:mod:`.shell`): every simple command of every
pipeline, every ``$(...)``/backtick/process substitution, the scripts of ``sh -c`` and
``eval``, and the commands behind wrappers (``env``, ``nohup``, ``timeout``, ``xargs``,
``sudo``...) are classified, and the worst finding wins. ``cd`` is followed, so
``cd / && rm -rf *`` is seen for what it is.

Critical, whatever the approval mode: recursive deletes (or ``chmod``/``chown -R``) of
``/``, system folders, the home folder, the workspace root or anything above them;
``mkfs`` and friends; ``dd`` or a redirect onto a disk device; fork bombs; a download
piped (or substituted) into a shell or interpreter; force pushes; ``sudo`` and other
privilege escalation; shutting the machine down; killing every process.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Literal

from .shell import PLACEHOLDER_RE, SimpleCommand, parse_shell

Risk = Literal["low", "medium", "high", "critical"]
LEVELS: tuple[Risk, ...] = ("low", "medium", "high", "critical")

_FORK_BOMB = re.compile(r"(\S+)\s*\(\)\s*\{\s*\1\s*\|\s*\1\s*&\s*\}\s*;?\s*\1")


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_SYSTEM_DIRS = _words(
    "/bin /boot /dev /etc /home /lib /lib32 /lib64 /opt /proc /root /sbin /srv /sys "
    "/usr /var /mnt /media /snap /System /Users /Applications /Library"
)
_SAFE_DEVICES = frozenset({"/dev/null", "/dev/zero", "/dev/stdout", "/dev/stderr", "/dev/tty"})
_DISK_DEVICE = re.compile(r"^/dev/(sd|hd|vd|xvd|nvme|mmcblk|disk|mapper/|md|loop|dm-)")
_OUTPUT_REDIRECTS = frozenset({">", ">>", ">|", "&>", "&>>", "<>", ">&"})
_ESCALATE = frozenset({"sudo", "doas", "pkexec", "su", "run0"})
_FORMAT = frozenset({"mkfs", "mke2fs", "mkswap", "wipefs", "fdisk", "sfdisk", "parted"})
_POWER = frozenset({"shutdown", "reboot", "halt", "poweroff"})
_SHELLS = frozenset({"sh", "bash", "zsh", "dash", "ksh", "fish", "csh", "tcsh", "ash"})
_INTERPRETERS = _SHELLS | _words("python python3 perl ruby node php eval source .")
_DOWNLOADERS = frozenset({"curl", "wget", "fetch", "aria2c", "http", "https", "iwr"})
_WRAPPERS = frozenset(
    {"nohup", "time", "command", "builtin", "exec", "nice", "ionice", "stdbuf", "timeout",
     "xargs", "watch", "env", "then", "do", "else", "elif", "if", "while", "until", "!",
     "{", "}", "caffeinate", "setsid", "unshare", "strace", "ltrace", "nsenter",
     "systemd-run", "busybox", "parallel", "firejail", "flock", "chroot", "taskset", "chrt",
     "numactl", "cgexec"}
)  # fmt: skip
# Wrappers whose first operand is not the command (a lock file, a root, a CPU mask...).
_WRAPPER_OPERAND = frozenset({"timeout", "flock", "chroot", "taskset", "chrt"})
_WRAPPER_VALUE_OPTIONS = frozenset(
    {"-n", "-u", "-I", "-L", "-P", "-d", "-s", "-E", "-c", "-k", "-o", "-e", "-i", "--signal"}
)
_LOW = _words(
    "ls cat head tail grep egrep fgrep rg ag fd pwd echo printf wc sort uniq cut tr diff "
    "cmp file stat which whoami date true false tree du df basename dirname realpath "
    "readlink test [ type less more nl column jq id uname hostname sleep env printenv"
)
_GIT_LOW = _words("status diff log show blame ls-files rev-parse describe shortlog grep remote")
_GIT_HIGH = _words("reset clean rebase filter-branch filter-repo push restore")


@dataclass(frozen=True)
class RiskAssessment:
    """A command's risk and why."""

    level: Risk
    reasons: tuple[str, ...] = ()

    @property
    def critical(self) -> bool:
        return self.level == "critical"

    def describe(self) -> str:
        return f"{self.level}: {'; '.join(self.reasons)}" if self.reasons else self.level


def classify_command(
    command: str, *, cwd: Path, workspace: Path, home: Path | None = None
) -> RiskAssessment:
    """The risk of running ``command`` in ``cwd`` (never raises)."""
    classifier = _Classifier(workspace=workspace, home=home or Path.home(), cwd=str(cwd))
    classifier.visit(command, depth=0)
    return classifier.assessment()


@dataclass
class _Classifier:
    workspace: Path
    home: Path
    cwd: str | None
    findings: list[tuple[Risk, str]] = field(default_factory=list)

    def note(self, level: Risk, reason: str) -> None:
        if (level, reason) not in self.findings:
            self.findings.append((level, reason))

    def assessment(self) -> RiskAssessment:
        if not self.findings:
            return RiskAssessment("low")
        worst = max(LEVELS.index(level) for level, _ in self.findings)
        reasons = tuple(r for level, r in self.findings if LEVELS.index(level) == worst)
        return RiskAssessment(LEVELS[worst], reasons)

    def visit(self, text: str, depth: int) -> None:
        if depth > 4:
            self.note("high", "deeply nested commands")
            return
        if _FORK_BOMB.search(text):
            self.note("critical", "fork bomb")
        parsed = parse_shell(text)
        if not parsed.exact:
            self.note("high", "quoting that cannot be parsed")
        for body in parsed.substitutions:
            if body.strip():
                self.visit(body, depth + 1)
        for pipeline in parsed.pipelines:
            for index, command in enumerate(pipeline):
                self.command(command, pipeline[:index], parsed.substitutions, depth)

    def command(
        self, cmd: SimpleCommand, upstream: list[SimpleCommand], subs: list[str], depth: int
    ) -> None:
        argv = self.unwrap([_pwd_placeholder(word, subs) for word in cmd.argv])
        self.redirects(cmd)
        if not argv:
            return
        name = PurePosixPath(argv[0]).name
        args = argv[1:]
        if PLACEHOLDER_RE.search(argv[0]) or argv[0].startswith("$"):
            self.note("high", "the command name is computed when it runs")
            return
        if name in _INTERPRETERS:
            self.interpreter(name, args, upstream, subs, depth)
        if name in _SHELLS:
            for op, target in cmd.redirects:
                if op == "<<<":  # bash <<<'rm -rf ~' runs the string
                    self.visit(target, depth + 1)
                elif op in ("<<", "<<-"):
                    self.note("high", f"runs a script written inline for {name}")
        rule = _RULES.get(name) or (_format if name.split(".")[0] in _FORMAT else None)
        if rule is not None:
            rule(self, args)
        elif name not in _LOW:
            self.note("medium", f"runs {name}")

    def unwrap(self, argv: list[str]) -> list[str]:
        """The command behind assignments, keywords and wrappers like env/nohup/sudo."""
        while argv:
            head = PurePosixPath(argv[0]).name
            if re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", argv[0]):
                argv = argv[1:]
            elif head in _ESCALATE:
                self.note("critical", f"runs with superuser rights ({head})")
                argv = _skip_options(argv[1:])
                if head == "su" and argv[:1] == ["-c"]:
                    argv = argv[1:]
            elif head == "cd":
                self.cd(argv[1:])
                return []
            elif head == "env" and (split := _env_split_string(argv[1:])) is not None:
                self.visit(split, 1)  # env -S 'rm -rf ~' runs that string as a command
                return []
            elif head in _WRAPPERS and not (head == "env" and len(argv) == 1):
                argv = _skip_options(argv[1:])
                if head in _WRAPPER_OPERAND and argv:
                    argv = argv[1:]  # the duration, lock file, new root...
            else:
                return argv
        return argv

    def cd(self, args: list[str]) -> None:
        target = args[0] if args else "~"
        self.cwd = self.resolve(target) if target != "-" else None

    def resolve(self, target: str) -> str | None:
        """An absolute, normalised path, or None when it cannot be known statically."""
        # ${HOME:?}, ${HOME:-x}... expand to $HOME whenever it is set.
        target = _PARAMETER.sub(r"$\1", target)
        for home in ("~", "$HOME", "${HOME}"):
            if target == home or target.startswith(home + "/"):
                target = str(self.home) + target[len(home) :]
        if target in ("$PWD", "${PWD}"):
            target = self.cwd or ""
        if not target or "$" in target or PLACEHOLDER_RE.search(target):
            return None
        if not target.startswith("/"):
            if self.cwd is None:
                return None
            target = os.path.join(self.cwd, target)
        return os.path.normpath(target).replace("//", "/")

    def dangerous(self, target: str, *, workspace: bool = True) -> bool:
        """Whether deleting (or opening up) ``target`` recursively would be a disaster:
        ``/``, a system folder, home, the workspace root (unless ``workspace`` is False)
        or a folder above one of them."""
        if re.fullmatch(r"\$\{?\w+\}?/*\**", target) and target.strip("${}/*") != "PWD":
            return True  # "$DIR/" is "/" when DIR is unset
        everything = re.fullmatch(r"(.*/)?(\*|\.\*|\{\*,\.\*\}|\.)/?", target)
        base = (everything.group(1) or ".") if everything else target
        path = self.resolve(base.rstrip("/") or "/")
        if path is None:
            return everything is not None and self.cwd is None
        protected = [Path("/"), self.home, *([self.workspace] if workspace else [])]
        candidate = Path(path)
        if path in _SYSTEM_DIRS:
            return True
        return any(candidate == p or p.is_relative_to(candidate) for p in protected)

    def interpreter(
        self, name: str, args: list[str], upstream: list[SimpleCommand], subs: list[str], d: int
    ) -> None:
        fed = [c for c in upstream if _downloads(c.argv)]
        if fed:
            self.note("critical", f"pipes a download into {name}")
        for arg in args:
            for match in PLACEHOLDER_RE.finditer(arg):
                index = int(match.group(1))
                if index < len(subs) and _downloads_text(subs[index]):
                    self.note("critical", f"runs a download with {name}")
        if name in _SHELLS and "-c" in args[:3]:
            script_at = args.index("-c") + 1
            if script_at < len(args):
                self.visit(args[script_at], d + 1)
        elif name == "eval" and args:
            self.visit(" ".join(args), d + 1)

    def redirects(self, cmd: SimpleCommand) -> None:
        for op, target in cmd.redirects:
            if op not in _OUTPUT_REDIRECTS or (op == ">&" and target.isdigit()):
                continue  # reading, or "2>&1"
            if _DISK_DEVICE.match(target):
                self.note("critical", f"writes over the disk device {target}")
            elif target not in _SAFE_DEVICES:
                self.note("medium", "writes files")


def _pwd_placeholder(word: str, subs: list[str]) -> str:
    """``$(pwd)`` as ``$PWD``, which the classifier knows; other words unchanged."""
    match = PLACEHOLDER_RE.fullmatch(word)
    if match and int(match.group(1)) < len(subs) and subs[int(match.group(1))].strip() == "pwd":
        return "$PWD"
    return word


_PARAMETER = re.compile(r"\$\{(\w+)(?::?[-?=+][^}]*)?\}")


def _env_split_string(args: list[str]) -> str | None:
    """The command of ``env -S 'cmd args'`` (or ``--split-string``), if that is the form."""
    for i, arg in enumerate(args):
        if arg in ("-S", "--split-string") and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("--split-string="):
            return arg.split("=", 1)[1]
        if arg.startswith("-S") and len(arg) > 2:
            return arg[2:]
        if not arg.startswith("-"):
            return None
    return None


def _skip_options(argv: list[str]) -> list[str]:
    i = 0
    while i < len(argv) and argv[i].startswith("-") and argv[i] != "-":
        i += 2 if argv[i] in _WRAPPER_VALUE_OPTIONS else 1
        if argv[i - 1] == "--":
            break
    return argv[i:]


def _downloads(argv: tuple[str, ...] | list[str]) -> bool:
    return bool(argv) and PurePosixPath(argv[0]).name in _DOWNLOADERS


def _downloads_text(text: str) -> bool:
    return any(_downloads(c.argv) for c in parse_shell(text).commands)


def _flags(args: list[str]) -> tuple[set[str], list[str]]:
    """Short flags (letters) and long options, and the operands."""
    flags: set[str] = set()
    operands: list[str] = []
    options_done = False
    for arg in args:
        if options_done or not arg.startswith("-") or arg == "-":
            operands.append(arg)
        elif arg == "--":
            options_done = True
        elif arg.startswith("--"):
            flags.add(arg)
        else:
            flags.update(arg[1:])
    return flags, operands


# --- rules per command ------------------------------------------------------------------


def _rm(c: _Classifier, args: list[str]) -> None:
    flags, targets = _flags(args)
    recursive = bool(flags & {"r", "R", "--recursive"})
    if "--no-preserve-root" in flags:
        c.note("critical", "rm --no-preserve-root")
    bad = [t for t in targets if c.dangerous(t)] if recursive else []
    if bad:
        c.note("critical", f"recursive delete of {', '.join(bad)}")
    else:
        c.note("high", "recursive delete" if recursive else "deletes files")


def _recursive_mode_change(c: _Classifier, args: list[str], name: str) -> None:
    flags, operands = _flags(args)
    bad = [t for t in operands[1:] if c.dangerous(t)]
    if flags & {"R", "--recursive"} and bad:
        c.note("critical", f"{name} -R of {', '.join(bad)}")
    else:
        c.note("medium", f"changes permissions ({name})")


def _dd(c: _Classifier, args: list[str]) -> None:
    for arg in args:
        if arg.startswith("of=/dev/") and arg[3:] not in _SAFE_DEVICES:
            c.note("critical", f"dd onto the device {arg[3:]}")
            return
    c.note("high", "dd writes raw data")


def _format(c: _Classifier, args: list[str]) -> None:
    c.note("critical", "formats or partitions a disk")


def _power(c: _Classifier, args: list[str]) -> None:
    c.note("critical", "shuts down or restarts the machine")


def _kill(c: _Classifier, args: list[str]) -> None:
    if "-1" in args[1:]:  # the first "-1" would be a signal number; later it is "every pid"
        c.note("critical", "kills every process")
    else:
        c.note("high", "kills processes")


def _mv(c: _Classifier, args: list[str]) -> None:
    _, operands = _flags(args)
    bad = [t for t in operands[:-1] if c.dangerous(t)]
    if bad:
        c.note("critical", f"moves {', '.join(bad)} away")
    else:
        c.note("medium", "moves files")


def _find(c: _Classifier, args: list[str]) -> None:
    deletes = "-delete" in args or any(a in ("-exec", "-execdir", "-ok") for a in args)
    if "-delete" in args and args and c.dangerous(args[0], workspace=False):
        c.note("critical", f"find -delete in {args[0]}")
    elif deletes:
        c.note("high", "find runs commands or deletes files")


def _git(c: _Classifier, args: list[str]) -> None:
    i = 0
    while i < len(args) and args[i].startswith("-"):
        i += 2 if args[i] in ("-C", "-c", "--git-dir", "--work-tree") else 1
    sub, rest = (args[i], args[i + 1 :]) if i < len(args) else ("", [])
    if sub == "push":
        flags, refs = _flags(rest)
        forced = flags & {"f", "--force", "--force-with-lease", "--mirror", "--force-if-includes"}
        if (
            forced
            or any(r.startswith("+") for r in refs)
            or any(f.startswith("--force") for f in flags)
        ):
            c.note("critical", "force-pushes (rewrites the remote's history)")
        else:
            c.note("high", "pushes to a remote")
    elif sub in _GIT_HIGH or (sub == "branch" and {"-D", "--delete"} & set(rest)):
        c.note("high", f"git {sub} can discard work")
    elif sub == "checkout" and ("--" in rest or "." in rest):
        c.note("high", "git checkout discards changes")
    elif sub not in _GIT_LOW and not (sub == "branch" and not rest):
        c.note("medium", f"git {sub}".strip())


def _always(level: Risk, reason: str) -> Rule:
    def rule(c: _Classifier, args: list[str]) -> None:
        c.note(level, reason)

    return rule


def _mode_change(name: str) -> Rule:
    return lambda c, args: _recursive_mode_change(c, args, name)


def _shred(c: _Classifier, args: list[str]) -> None:
    device = any(_DISK_DEVICE.match(arg) for arg in args)
    c.note("critical" if device else "high", "shred destroys data")


def _init(c: _Classifier, args: list[str]) -> None:
    if args[:1] in (["0"], ["6"]):
        _power(c, args)
    else:
        c.note("medium", "runs init")


Rule = Callable[[_Classifier, list[str]], None]

_RULES: dict[str, Rule] = {
    "rm": _rm,
    "chmod": _mode_change("chmod"),
    "chown": _mode_change("chown"),
    "chgrp": _mode_change("chgrp"),
    "dd": _dd,
    "shred": _shred,
    "kill": _kill,
    "killall": _always("high", "kills processes"),
    "pkill": _always("high", "kills processes"),
    "mv": _mv,
    "find": _find,
    "git": _git,
    "init": _init,
    **{name: _power for name in _POWER},
    **{name: _always("medium", f"network access ({name})") for name in _DOWNLOADERS},
}
