"""How dangerous a shell command is: ``low``, ``medium``, ``high`` or ``critical``.

Compound commands are taken apart (:mod:`.shell`): every simple command of every
pipeline, every ``$(...)``/backtick/process substitution, the scripts of ``sh -c`` and
``eval``, and the commands behind wrappers (``env``, ``nohup``, ``timeout``, ``xargs``,
``sudo``...) are classified, and the worst finding wins. ``cd`` is followed, so
``cd / && rm -rf *`` is seen for what it is.

Critical, whatever the approval mode: recursive deletes (or ``chmod``/``chown -R``) of
``/``, system folders, the home folder, the workspace root or anything above them
(through braces, globs, ``$(...)``, ``xargs`` or ``find -exec`` too); ``mkfs`` and
friends; writing onto a disk device; fork bombs; a shell or interpreter fed a program
through a pipe (unless it is literal text, which is classified), code that downloads,
or a file the same command line downloaded; force pushes; ``sudo`` and other privilege
escalation; shutting the machine down; killing every process; writes that persist
beyond the session (shell start-up files, ``~/.ssh``, ``/etc``, cron, git hooks).

This is the label the user sees in the approval dialog, not the security boundary: a
command can always be written in a way no parser foresees. What makes ``yolo`` safe is
the OS sandbox commands run in (:mod:`.sandbox`).
"""

from __future__ import annotations

import fnmatch
import os
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ..vocabulary import RISK_LEVELS
from ..vocabulary import Risk as Risk
from .private import CREDENTIAL_PLACES
from .shell import PLACEHOLDER_RE, SimpleCommand, parse_shell

LEVELS = RISK_LEVELS

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
_DOWNLOADERS = frozenset(
    {"curl", "wget", "fetch", "aria2c", "http", "https", "iwr", "nc", "ncat", "netcat", "socat",
     "telnet", "openssl", "scp", "sftp", "rsync", "ftp", "tftp"}
)  # fmt: skip
# Interpreters and the options that take inline code: python -c, perl -e, node -e...
_CODE_OPTIONS = {
    "python": ("c",), "python3": ("c",), "perl": ("e", "E"), "ruby": ("e",),
    "node": ("e", "p", "-eval", "-print"), "php": ("r",),
}  # fmt: skip
_NETWORK_CODE = re.compile(
    r"urlopen|urllib|requests\.|http\.client|httpx|socket|LWP|HTTP::Tiny|IO::Socket|"
    r"open-uri|Net::HTTP|\bfetch\(|https?://|\bcurl\b|\bwget\b|\bhttps?\.get\b|"
    r"child_process|XMLHttpRequest",
    re.IGNORECASE,
)
_FORK_LOOP = re.compile(
    r"\bfork\b.*\b(while|for|loop|until)\b|\b(while|for|loop|until)\b.*\bfork\b"
)
# Files that run later, at login or at the next git command, or that grant access.
_PERSISTENT_IN_HOME = _words(
    ".bashrc .bash_profile .bash_login .bash_logout .profile .zshrc .zshenv .zprofile "
    ".zlogin .kshrc .cshrc .tcshrc .xprofile .xinitrc .xsessionrc .pam_environment "
    ".gitconfig .ssh .gnupg .config/fish .config/autostart .config/systemd .config/git "
    "Library/LaunchAgents .netrc .pypirc .npmrc"
)
_PERSISTENT_DIRS = ("/etc", "/var/spool/cron", "/Library/LaunchAgents", "/Library/LaunchDaemons")
_GIT_CONFIG_RUNS = re.compile(
    r"^(core\.(hookspath|fsmonitor|sshcommand|pager|editor|gitproxy|askpass)|"
    r"credential\..*helper|include\.path|includeif\..*|alias\..*|filter\..*|diff\..*\.textconv|"
    r"sequence\.editor|gpg\.program|gpg\..*\.program|uploadpack\..*|protocol\..*)$",
    re.IGNORECASE,
)
# Another process's environment holds its secrets (the assistant's provider keys, where
# there is no sandbox to hide the assistant): reading it is never routine.
_PROCESS_SECRETS = re.compile(r"/proc/[^/\s]+/(environ|cmdline|mem)\b")
_SYSTEMCTL_POWER = _words(
    "poweroff reboot halt kexec suspend hibernate hybrid-sleep suspend-then-hibernate rescue "
    "emergency isolate soft-reboot default"
)
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
# Where a wrapper's own options differ from the generic guess above.
_VALUE_OPTIONS_OF = {
    "env": frozenset({"-u", "--unset", "-C", "--chdir"}),
    "nohup": frozenset(),
    "setsid": frozenset(),
    "time": frozenset({"-o", "-f", "--output", "--format"}),
    "timeout": frozenset({"-s", "--signal", "-k", "--kill-after"}),
    "nice": frozenset({"-n", "--adjustment"}),
    "stdbuf": frozenset({"-i", "-o", "-e"}),
    "xargs": frozenset({"-a", "-d", "-E", "-I", "-L", "-n", "-P", "-s", "--delimiter"}),
}
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


def commands_run(command: str, *, cwd: Path, workspace: Path) -> list[tuple[str, ...]]:
    """Every command ``command`` would run, as the classifier reads it: ``FOO=1 rm x``,
    ``env rm x``, ``time rm x``, ``xargs rm``, ``sh -c 'rm x'``, ``if true; then rm x; fi``
    all run ``rm``. A name computed when it runs (``rm$IFS``, ``$(which rm)``) is kept as
    written (it starts with ``$`` or holds one)."""
    classifier = _Classifier(workspace=workspace, home=Path.home(), cwd=str(cwd))
    classifier.visit(command, depth=0)
    return classifier.ran


@dataclass
class _Classifier:
    workspace: Path
    home: Path
    cwd: str | None
    findings: list[tuple[Risk, str]] = field(default_factory=list)
    # What the command being classified was fed: the commands before it in its pipeline,
    # the substitutions' bodies, whether xargs gives it its operands.
    upstream: list[SimpleCommand] = field(default_factory=list)
    subs: list[str] = field(default_factory=list)
    via_xargs: bool = False
    variables: dict[str, str] = field(default_factory=dict)
    downloaded: set[str] = field(default_factory=set)
    #: Every command the line would run, as judged: behind assignments, keywords and
    #: wrappers, inside shells' scripts and substitutions (:func:`commands_run`).
    ran: list[tuple[str, ...]] = field(default_factory=list)

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
        words = [self.expand(_literal_placeholders(word, subs)) for word in cmd.argv]
        self.secrets([*words, *(target for _, target in cmd.redirects)])
        if words and all(_ASSIGNMENT.match(word) for word in words):
            for word in words:
                key, _, value = word.partition("=")
                self.variables[key] = value
        self.via_xargs = False
        argv = self.unwrap(words, depth)
        self.redirects(cmd)
        if not argv:
            return
        self.ran.append(tuple(argv))
        name = PurePosixPath(argv[0]).name
        args = argv[1:]
        self.upstream, self.subs = upstream, subs
        if name in self.downloaded or (
            name in _INTERPRETERS and _first_operand(args) in self.downloaded
        ):
            self.note("critical", "runs a file this command line downloads")
        if PLACEHOLDER_RE.search(argv[0]) or argv[0].startswith("$"):
            self.note("high", "the command name is computed when it runs")
            if upstream and self.via_pipe_program(upstream):
                self.note("critical", "pipes into a command computed when it runs")
            return
        if name in _DOWNLOADERS:
            self.downloaded.update(_download_targets(name, args))
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

    def expand(self, word: str) -> str:
        """``word`` with the variables assigned earlier on the line filled in."""
        if "$" not in word or not self.variables:
            return word
        return _VARIABLE.sub(
            lambda m: self.variables.get(m.group(1) or m.group(2), m.group(0)), word
        )

    def via_pipe_program(self, upstream: list[SimpleCommand]) -> bool:
        """Whether a program read from the pipe could be anything (not literal text)."""
        return not all(_literal_echo(c) is not None for c in upstream)

    def unwrap(self, argv: list[str], depth: int = 0) -> list[str]:
        """The command behind assignments, keywords and wrappers like env/nohup/sudo;
        command strings given to wrappers (``script -c``, ``watch``) are classified."""
        while argv:
            head = PurePosixPath(argv[0]).name
            if _ASSIGNMENT.match(argv[0]):
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
                self.visit(split, depth + 1)  # env -S 'rm -rf ~' runs that string
                return []
            elif head in ("script", "flock", "su") and (
                script := _option_script(argv[1:], "c", "--command")
            ):
                self.visit(script, depth + 1)  # script -qc 'cmd', flock f -c 'cmd'
                return []
            elif head == "watch":
                self.visit(" ".join(_skip_options(argv[1:])), depth + 1)  # via sh -c
                return []
            elif head in _WRAPPERS and not (head == "env" and len(argv) == 1):
                if head == "env":
                    self.env_chdir(argv[1:])
                self.via_xargs = self.via_xargs or head == "xargs"
                argv = _skip_options(argv[1:], _VALUE_OPTIONS_OF.get(head))
                if head in _WRAPPER_OPERAND and argv:
                    argv = argv[1:]  # the duration, lock file, new root...
            else:
                return argv
        return argv

    def env_chdir(self, args: list[str]) -> None:
        """Follow ``env -C DIR`` / ``--chdir=DIR``."""
        for i, arg in enumerate(args):
            if not arg.startswith("-"):
                return
            if arg in ("-C", "--chdir") and i + 1 < len(args):
                self.cd([args[i + 1]])
            elif arg.startswith("--chdir="):
                self.cd([arg.split("=", 1)[1]])
            elif arg.startswith("-C") and len(arg) > 2:
                self.cd([arg[2:]])

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
        for pwd in ("$PWD", "${PWD}"):
            if target == pwd or target.startswith(pwd + "/"):
                target = (self.cwd or "$") + target[len(pwd) :]
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
        if "{" in target and "," in target and (expanded := _expand_braces(target)) != [target]:
            return any(self.dangerous(t, workspace=workspace) for t in expanded)
        everything = re.fullmatch(r"(.*/)?(\*|\.\*|\{\*,\.\*\}|\.)/?", target)
        base = (everything.group(1) or ".") if everything else target
        path = self.resolve(base.rstrip("/") or "/")
        if path is None:
            return everything is not None and self.cwd is None
        protected = [Path("/"), self.home, *([self.workspace] if workspace else [])]
        if any(char in path for char in "*?["):  # /r??t, /u*: could it name one of them?
            names = {*_SYSTEM_DIRS, *(str(q) for p in protected for q in (p, *p.parents))}
            return any(fnmatch.fnmatchcase(name, path) for name in names)
        candidate = Path(path)
        if path in _SYSTEM_DIRS:
            return True
        return any(candidate == p or p.is_relative_to(candidate) for p in protected)

    def persistent(self, target: str) -> bool:
        """Whether writing ``target`` changes what runs later or who may log in."""
        path = self.resolve(target)
        if path is None:
            return False
        if any(path == d or path.startswith(d + "/") for d in _PERSISTENT_DIRS):
            return True
        home = str(self.home)
        if not path.startswith(home + "/"):
            return False
        inside = path[len(home) + 1 :]
        return any(inside == p or inside.startswith(p + "/") for p in _PERSISTENT_IN_HOME)

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
        code = _inline_code(name, args)
        if code is not None:
            if name in _SHELLS:
                self.visit(code, d + 1)
            elif _NETWORK_CODE.search(code):
                self.note("critical", f"runs {name} code that uses the network")
            if name not in _SHELLS and _FORK_LOOP.search(code):
                self.note("critical", "fork bomb")
        elif name == "eval" and args:
            self.visit(" ".join(args), d + 1)
        elif (
            upstream
            and not fed
            and name not in ("eval", "source", ".")
            and (_first_operand(args) in (None, "-"))
        ):
            texts = [_literal_echo(c) for c in upstream]
            if any(text is None for text in texts):
                self.note("critical", f"pipes a program into {name}")
            for text in texts:
                if text:
                    self.visit(text, d + 1)

    def secrets(self, words: list[str]) -> None:
        """Words naming another process's environment or memory, or a credential store:
        what they read would go to the model, and on to its provider."""
        for word in words:
            if _PROCESS_SECRETS.search(word):
                self.note("critical", f"reads a process's environment or memory ({word})")
            elif (store := _credential_store(word)) is not None:
                self.note("high", f"reads or writes a credential store ({store})")

    def redirects(self, cmd: SimpleCommand) -> None:
        for op, target in cmd.redirects:
            if op not in _OUTPUT_REDIRECTS or (op == ">&" and target.isdigit()):
                continue  # reading, or "2>&1"
            if _DISK_DEVICE.match(target):
                self.note("critical", f"writes over the disk device {target}")
            elif self.persistent(target):
                self.note("critical", f"writes {target}, which persists beyond the session")
            elif target not in _SAFE_DEVICES:
                self.note("medium", "writes files")


def _credential_store(word: str) -> str | None:
    """The credential store (:data:`~.private.CREDENTIAL_PLACES`) ``word`` names as a
    path, wherever it is rooted (``~/.aws/credentials``, ``$HOME/.codex/auth.json``,
    ``/home/u/.netrc``), if any."""
    if "/" not in word and not word.startswith("."):
        return None
    path = word.split("=", 1)[-1]
    for place in _CREDENTIAL_SUFFIXES:
        at = path.find(place)
        if at >= 0 and (at == 0 or path[at - 1] == "/"):
            rest = path[at + len(place) :]
            if not rest or rest.startswith("/"):
                return place
    return None


_CREDENTIAL_SUFFIXES = tuple(
    sorted(CREDENTIAL_PLACES, key=len, reverse=True)  # the most specific first
)


def _literal_placeholders(word: str, subs: list[str]) -> str:
    """``word`` with ``$(pwd)`` as ``$PWD`` and ``$(echo TEXT)`` as TEXT, which the
    classifier can judge; other substitutions stay placeholders."""

    def literal(match: re.Match[str]) -> str:
        index = int(match.group(1))
        body = subs[index].strip() if index < len(subs) else ""
        if body == "pwd":
            return "$PWD"
        parsed = parse_shell(body)
        if len(parsed.commands) == 1 and not parsed.substitutions:
            text = _literal_echo(parsed.commands[0])
            if text is not None:
                return text.strip()
        return match.group(0)

    return PLACEHOLDER_RE.sub(literal, word)


def _literal_echo(cmd: SimpleCommand) -> str | None:
    """The text ``echo``/``printf`` prints when it is literal, else None."""
    argv = list(cmd.argv)
    if not argv or argv[0] not in ("echo", "printf") or cmd.redirects:
        return None
    words = [w for w in argv[1:] if not (argv[0] == "echo" and w in ("-n", "-e", "-E"))]
    if any("$" in w or "`" in w or PLACEHOLDER_RE.search(w) for w in words):
        return None
    return " ".join(words)


def _inline_code(name: str, args: list[str]) -> str | None:
    """The program given on the command line: ``sh -lc CODE``, ``python3 -c CODE``."""
    if name in _SHELLS:
        return _option_script(args, "c", None, shell=True)
    letters = _CODE_OPTIONS.get(name)
    if not letters:
        return None
    for i, arg in enumerate(args):
        if arg == "--" or not arg.startswith("-"):
            return None
        if any(arg == "-" + letter for letter in letters):
            return args[i + 1] if i + 1 < len(args) else ""
        if len(arg) > 2 and arg[1] != "-" and arg[-1] in letters:
            return args[i + 1] if i + 1 < len(args) else ""  # perl -ne CODE
    return None


def _option_script(
    args: list[str], letter: str, long: str | None, *, shell: bool = False
) -> str | None:
    """The command string of ``-c CMD`` among ``args``, flags combined (``-lc``,
    ``-qc``) or not; for shells, the first operand after the options."""
    wants = False
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            i += 1
            break
        if long and (arg == long or arg.startswith(long + "=")):
            return (
                arg.split("=", 1)[1] if "=" in arg else (args[i + 1] if i + 1 < len(args) else "")
            )
        if shell and arg in ("--rcfile", "--init-file"):
            i += 2
            continue
        if len(arg) > 1 and arg[0] in "-+" and not arg.startswith("--"):
            if letter in arg[1:]:
                if not shell:
                    return args[i + 1] if i + 1 < len(args) else ""
                wants = True
            if shell and arg[-1] in "oO":  # -o pipefail
                i += 1
            i += 1
            continue
        if arg.startswith("--"):
            i += 1
            continue
        break
    if wants and i < len(args):
        return args[i]
    return None


def _first_operand(args: list[str]) -> str | None:
    """The first argument that is not an option (a script to run), as a file name."""
    for arg in args:
        if not arg.startswith("-") or arg == "-":
            return PurePosixPath(arg).name if arg != "-" else arg
    return None


def _download_targets(name: str, args: list[str]) -> set[str]:
    """The names of the files a ``curl``/``wget`` call writes."""
    out: set[str] = set()
    urls = [a for a in args if "://" in a]
    remote = {PurePosixPath(u.split("?")[0].rstrip("/")).name for u in urls}
    for i, arg in enumerate(args):
        value = args[i + 1] if i + 1 < len(args) else ""
        if (name == "curl" and arg in ("-o", "--output")) or (
            name == "wget" and arg in ("-O", "--output-document")
        ):
            out.add(PurePosixPath(value).name)
        elif arg.startswith(("--output=", "--output-document=")):
            out.add(PurePosixPath(arg.split("=", 1)[1]).name)
        elif name == "curl" and arg in ("-O", "--remote-name", "--remote-name-all"):
            out.update(remote)
    if name == "wget" and not out:
        out.update(remote)
    return {n for n in out if n and n != "-"}


def _expand_braces(word: str) -> list[str]:
    """Bash brace expansion of ``word`` (``{/,}`` gives ``/`` and the empty word)."""
    match = re.search(r"\{([^{}]*,[^{}]*)\}", word)
    if match is None:
        return [word]
    head, tail = word[: match.start()], word[match.end() :]
    return [w for part in match.group(1).split(",") for w in _expand_braces(head + part + tail)]


_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")
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


def _skip_options(argv: list[str], takes_value: frozenset[str] | None = None) -> list[str]:
    values = _WRAPPER_VALUE_OPTIONS if takes_value is None else takes_value
    i = 0
    while i < len(argv) and argv[i].startswith("-") and argv[i] != "-":
        i += 2 if argv[i] in values else 1
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
    computed = [t for t in targets if PLACEHOLDER_RE.search(t)] if recursive else []
    listed = _fed_operands(c) if recursive and c.via_xargs else []
    if bad:
        c.note("critical", f"recursive delete of {', '.join(bad)}")
    elif computed:
        c.note("critical", "recursive delete of a path computed when it runs")
    elif any(c.dangerous(t, workspace=False) for t in listed):
        c.note("critical", f"recursive delete of what {c.upstream[0].argv[0]} lists")
    else:
        c.note("high", "recursive delete" if recursive else "deletes files")


def _fed_operands(c: _Classifier) -> list[str]:
    """What the commands feeding ``xargs`` name (their folder when they name none)."""
    out: list[str] = []
    for cmd in c.upstream:
        _, operands = _flags(list(cmd.argv[1:]))
        out.extend(operands or ["."])
    return out


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
    roots = [a for a in _until_expression(args)] or ["."]
    bad = [root for root in roots if c.dangerous(root, workspace=False)]
    if "-delete" in args and bad:
        c.note("critical", f"find -delete in {bad[0]}")
    elif deletes:
        c.note("high", "find runs commands or deletes files")
    for i, arg in enumerate(args):
        if arg in ("-exec", "-execdir", "-ok", "-okdir"):
            end = next((j for j in range(i + 1, len(args)) if args[j] in (";", "+")), len(args))
            found = bad[0] if bad else "found-file"  # {} could be the root itself
            words = [w.replace("{}", found) for w in args[i + 1 : end]]
            c.visit(" ".join(shlex.quote(w) for w in words), 1)


def _until_expression(args: list[str]) -> list[str]:
    roots = []
    for arg in args:
        if arg.startswith(("-", "(", "!")):
            break
        roots.append(arg)
    return roots


def _git(c: _Classifier, args: list[str]) -> None:
    i = 0
    while i < len(args) and args[i].startswith("-"):
        if args[i] == "-c" and i + 1 < len(args):
            _git_setting(c, args[i + 1].split("=", 1)[0], once=True)
        i += 2 if args[i] in ("-C", "-c", "--git-dir", "--work-tree") else 1
    sub, rest = (args[i], args[i + 1 :]) if i < len(args) else ("", [])
    if sub == "config":
        _, operands = _flags(rest)
        reading = {"-l", "--list", "--get", "--get-all", "--get-regexp", "--show-origin"}
        if len(operands) >= 2 and not reading & set(rest):
            _git_setting(c, operands[0], once=False)
        if len(operands) >= 2 or {"--unset", "--unset-all", "--edit", "-e"} & set(rest):
            c.note("medium", "git config")
        return
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


def _git_setting(c: _Classifier, key: str, *, once: bool) -> None:
    if _GIT_CONFIG_RUNS.match(key):
        when = "for this command" if once else "from now on"
        c.note("critical", f"git setting {key} runs commands {when}")


def _systemctl(c: _Classifier, args: list[str]) -> None:
    _, operands = _flags(args)
    if operands and operands[0] in _SYSTEMCTL_POWER:
        _power(c, args)
    else:
        c.note("high", f"{'systemctl ' + operands[0] if operands else 'systemctl'}")


def _crontab(c: _Classifier, args: list[str]) -> None:
    if "-l" in args and not {"-r", "-e", "-i"} & set(args):
        c.note("low", "lists cron jobs")
        return
    c.note("critical", "installs cron jobs (they run later, outside the session)")


def _copy(name: str) -> Rule:
    """cp, mv, install, ln, rsync, tee: writing onto a device or a start-up file."""

    def rule(c: _Classifier, args: list[str]) -> None:
        _, operands = _flags(args)
        targets = operands if name == "tee" else operands[-1:]
        for target in targets:
            if _DISK_DEVICE.match(target):
                c.note("critical", f"writes over the disk device {target}")
            elif c.persistent(target):
                c.note("critical", f"writes {target}, which persists beyond the session")
        if name == "mv":
            _mv(c, args)
        else:
            c.note("medium", f"{name} writes files")

    return rule


def _sed(c: _Classifier, args: list[str]) -> None:
    if any(a.startswith("-i") or a.startswith("--in-place") for a in args):
        _, operands = _flags(args)
        persistent = [t for t in operands[1:] if c.persistent(t)]
        if persistent:
            c.note("critical", f"edits {persistent[0]}, which persists beyond the session")
        else:
            c.note("medium", "edits files (sed -i)")
    else:
        c.note("low", "sed")


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
    "mv": _copy("mv"),
    "cp": _copy("cp"),
    "install": _copy("install"),
    "ln": _copy("ln"),
    "rsync": _copy("rsync"),
    "tee": _copy("tee"),
    "sed": _sed,
    "systemctl": _systemctl,
    "loginctl": _systemctl,
    "crontab": _crontab,
    "at": _always("critical", "schedules a command (it runs later, outside the session)"),
    "telinit": _init,
    "find": _find,
    "git": _git,
    "init": _init,
    **{name: _power for name in _POWER},
    **{name: _always("medium", f"network access ({name})") for name in _DOWNLOADERS},
}
