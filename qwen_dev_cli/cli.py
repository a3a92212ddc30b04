"""The ``qwen-dev`` command: reads the configuration, builds the pieces and wires them.

Commands stay thin; the work lives in ``ui``, ``agent`` and ``core``. Heavy modules
(httpx, prompt-toolkit, the client) are imported inside the commands that need them,
so ``--version`` and ``--help`` start fast.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, NoReturn, TypeVar

import typer

from . import __version__, exit_codes
from .cli_help import EXAMPLES, EXIT_CODES, GLOBAL_PANEL, Command, Group
from .config import (
    Approval,
    ConfigError,
    Overrides,
    data_dir,
    load_settings,
    redacted,
    user_config_path,
)
from .config.home import Home
from .runtime import Runtime

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Coroutine

    from .config import Settings
    from .core.state import ProviderStateStore
    from .mcp.project import ProjectServers
    from .session.store import LoadedSession, SessionStore
    from .tools.rules import ToolRules

log = logging.getLogger(__name__)
T = TypeVar("T")

app = typer.Typer(
    name="qwen-dev",
    cls=Group,
    help="A terminal coding assistant for Qwen models and any OpenAI-compatible endpoint.",
    epilog=EXAMPLES,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
config_app = typer.Typer(cls=Group, help="Show, locate or create the configuration file.")
app.add_typer(config_app, name="config")
mcp_app = typer.Typer(cls=Group, help="List, add, remove or import MCP servers (tools).")
app.add_typer(mcp_app, name="mcp")

ProviderOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--provider",
        metavar="NAME",
        help="Use only these providers, in this order (repeatable).",
        show_default=False,
        rich_help_panel=GLOBAL_PANEL,
    ),
]
ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        metavar="NAME",
        help="Override the first provider's model.",
        rich_help_panel=GLOBAL_PANEL,
    ),
]
ApprovalOpt = Annotated[
    Approval | None,
    typer.Option(
        "--approval",
        help="What tool calls may do unasked: ask (only reads), auto-edit (file edits "
        "too), yolo (commands too, in the OS sandbox).",
        rich_help_panel=GLOBAL_PANEL,
    ),
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        metavar="FILE",
        help="Config file (else $QWEN_DEV_CONFIG, else the user config).",
        rich_help_panel=GLOBAL_PANEL,
    ),
]


ASK_PANEL = "Headless options (with -p, or after ask)"
OutputFormat = Literal["text", "json", "stream-json"]
OutputFormatOpt = Annotated[
    OutputFormat | None,
    typer.Option(
        "--output-format",
        help="text (the answer), json (one object at the end, as --json) or stream-json "
        "(one JSON event a line as the turn happens, in Claude Code's schema).",
        show_default=False,
        rich_help_panel=ASK_PANEL,
    ),
]
PartialOpt = Annotated[
    bool,
    typer.Option(
        "--include-partial-messages",
        help="stream-json: text deltas as they arrive (stream_event).",
        rich_help_panel=ASK_PANEL,
    ),
]
VerboseOpt = Annotated[
    bool,
    typer.Option(
        "--verbose",
        help="Notices, retries and failovers on stderr even without a terminal.",
        rich_help_panel=ASK_PANEL,
    ),
]
MaxTurnsOpt = Annotated[
    int | None,
    typer.Option(
        "--max-turns",
        min=1,
        metavar="N",
        help="Most model calls in one turn (the same as --max-steps).",
        show_default=False,
        rich_help_panel=ASK_PANEL,
    ),
]
MaxWaitOpt = Annotated[
    float | None,
    typer.Option(
        "--max-wait",
        metavar="SECONDS",
        help="Longest wait for a provider's budget before failing with exit 3 "
        "(default: [rate_limit] max_wait, 120).",
        show_default=False,
        rich_help_panel=ASK_PANEL,
    ),
]

SystemPromptOpt = Annotated[
    str | None,
    typer.Option(
        "--system-prompt",
        metavar="TEXT",
        help="Instead of qwen-dev's identity and rules (the tools and the session's part "
        "stay); empty: ours.",
        show_default=False,
        rich_help_panel=ASK_PANEL,
    ),
]
AppendSystemPromptOpt = Annotated[
    str | None,
    typer.Option(
        "--append-system-prompt",
        metavar="TEXT",
        help="Added at the end of the system prompt.",
        show_default=False,
        rich_help_panel=ASK_PANEL,
    ),
]
PermissionMode = Literal["default", "acceptEdits", "bypassPermissions", "plan"]
PermissionModeOpt = Annotated[
    PermissionMode | None,
    typer.Option(
        "--permission-mode",
        help="Claude Code's names: default (--approval ask), acceptEdits (auto-edit), "
        "bypassPermissions (yolo), plan (read-only tools; the model plans).",
        show_default=False,
        rich_help_panel=ASK_PANEL,
    ),
]
#: ``--permission-mode`` as ``--approval``.
PERMISSION_APPROVAL: dict[str, Approval] = {
    "default": "ask",
    "acceptEdits": "auto-edit",
    "bypassPermissions": "yolo",
    "plan": "ask",
}
InputFormatOpt = Annotated[
    Literal["text", "stream-json"] | None,
    typer.Option(
        "--input-format",
        help="stream-json: user turns and control requests as JSON lines on stdin, one "
        "session (with --output-format stream-json).",
        show_default=False,
        rich_help_panel=ASK_PANEL,
    ),
]
SessionIdOpt = Annotated[
    str | None,
    typer.Option(
        "--session-id",
        metavar="ID",
        help="The new session's id (a UUID, or any safe file name not taken yet).",
        show_default=False,
        rich_help_panel=ASK_PANEL,
    ),
]
AllowedToolsOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--allowedTools",
        "--allowed-tools",
        metavar="RULES",
        help="Tools that run unasked, as if approved always: names, comma or space "
        "separated, Claude Code's (Bash, Read, Edit, Write, Glob, Grep, LS) or ours; "
        "Bash(git diff:*) allows matching commands.",
        show_default=False,
        rich_help_panel=ASK_PANEL,
    ),
]
DisallowedToolsOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--disallowedTools",
        "--disallowed-tools",
        metavar="RULES",
        help="Tools not offered to the model (same names); Bash(rm:*) refuses matching commands.",
        show_default=False,
        rich_help_panel=ASK_PANEL,
    ),
]
TrustProjectMcpOpt = Annotated[
    bool,
    typer.Option(
        "--trust-project-mcp",
        help="Start the MCP servers of this folder's .mcp.json (ignored without it).",
        rich_help_panel=ASK_PANEL,
    ),
]
#: Claude Code flags that mean nothing here, accepted and ignored (an SDK sends them):
#: approvals always go to the caller over stdio; there are no setting sources to pick.
PermissionPromptToolOpt = Annotated[
    str | None, typer.Option("--permission-prompt-tool", hidden=True)
]
SettingSourcesOpt = Annotated[str | None, typer.Option("--setting-sources", hidden=True)]


@dataclass(frozen=True)
class _AskFlags:
    """``ask``'s options, given after ``ask`` or with ``-p`` at the top level."""

    output_format: OutputFormat | None = None
    json_output: bool = False
    no_stream: bool = False
    max_steps: int | None = None
    max_turns: int | None = None
    partial: bool = False
    verbose: bool = False
    system_prompt: str | None = None
    append_system_prompt: str | None = None
    permission_mode: PermissionMode | None = None
    input_format: Literal["text", "stream-json"] | None = None
    session_id: str | None = None
    allowed_tools: tuple[str, ...] = ()
    disallowed_tools: tuple[str, ...] = ()
    continue_latest: bool = False
    resume: str | None = None
    trust_project_mcp: bool = False
    max_wait: float | None = None

    def given(self) -> list[str]:
        """The flags given (for "these go with -p" errors)."""
        names = {
            "--output-format": self.output_format is not None,
            "--json": self.json_output,
            "--no-stream": self.no_stream,
            "--max-steps": self.max_steps is not None,
            "--max-turns": self.max_turns is not None,
            "--include-partial-messages": self.partial,
            "--verbose": self.verbose,
            "--system-prompt": self.system_prompt is not None,
            "--append-system-prompt": self.append_system_prompt is not None,
            "--permission-mode": self.permission_mode is not None,
            "--input-format": self.input_format is not None,
            "--session-id": self.session_id is not None,
            "--allowedTools": bool(self.allowed_tools),
            "--disallowedTools": bool(self.disallowed_tools),
            "--trust-project-mcp": self.trust_project_mcp,
            "--max-wait": self.max_wait is not None,
        }
        return [name for name, given in names.items() if given]

    def resolved_format(self) -> OutputFormat:
        """``--output-format``, ``--json`` standing for ``json``; both, different: exit 2."""
        if self.json_output:
            if self.output_format not in (None, "json"):
                _fail(f"--json means --output-format json, not {self.output_format}", 2)
            return "json"
        return self.output_format or "text"

    def steps(self) -> int:
        """``--max-steps`` or ``--max-turns`` (the same thing); both, different: exit 2."""
        if self.max_steps and self.max_turns and self.max_steps != self.max_turns:
            _fail("--max-steps and --max-turns are the same limit: give one", 2)
        return self.max_steps or self.max_turns or DEFAULT_MAX_STEPS

    def approval(self, given: str | None) -> str | None:
        """``--approval``, or what ``--permission-mode`` stands for; both, different:
        exit 2."""
        if self.permission_mode is None:
            return given
        mode = PERMISSION_APPROVAL[self.permission_mode]
        if given is not None and given != mode:
            _fail(f"--permission-mode {self.permission_mode} is not --approval {given}", 2)
        return mode

    def sessions(self) -> None:
        """``--session-id``, ``--continue`` and ``--resume`` that cannot go together:
        exit 2."""
        if self.continue_latest and self.resume:
            _fail("use --continue or --resume ID, not both", exit_codes.USAGE_ERROR)
        if self.session_id is not None and (self.continue_latest or self.resume):
            _fail(
                "--session-id names a new session: not with --continue or --resume",
                exit_codes.USAGE_ERROR,
            )

    def with_max_wait(self, loaded: _Loaded) -> _Loaded:
        """``loaded`` with ``--max-wait`` in place of ``[rate_limit] max_wait``; a value
        that is not a number of seconds above 0 (at most a day): exit 2."""
        if self.max_wait is None:
            return loaded
        if not 0 < self.max_wait <= MAX_WAIT_LIMIT:
            _fail(
                f"--max-wait must be seconds above 0 and at most {MAX_WAIT_LIMIT:g}, "
                f"not {self.max_wait:g}",
                exit_codes.USAGE_ERROR,
            )
        settings = loaded.settings
        client = dataclasses.replace(settings.client, rate_limit_max_wait=self.max_wait)
        return dataclasses.replace(loaded, settings=dataclasses.replace(settings, client=client))

    def rules(self) -> ToolRules | None:
        """``--allowedTools`` and ``--disallowedTools``; one that cannot be read: exit 2."""
        if not (self.allowed_tools or self.disallowed_tools):
            return None
        from .tools.rules import RuleError, ToolRules

        for flag, values in (
            ("--allowedTools", self.allowed_tools),
            ("--disallowedTools", self.disallowed_tools),
        ):
            try:
                ToolRules.parse(values, ())
            except RuleError as exc:
                _fail(f"{flag}: {exc}", exit_codes.USAGE_ERROR)
        return ToolRules.parse(self.allowed_tools, self.disallowed_tools)


DEFAULT_MAX_STEPS = 25
#: The most ``--max-wait`` may say: the bound of ``[rate_limit] max_wait``, a day.
MAX_WAIT_LIMIT = 86_400.0


def _fail(message: str, code: int) -> NoReturn:
    typer.echo(f"qwen-dev: {message}", err=True)
    raise typer.Exit(code)


@dataclass(frozen=True)
class _GlobalOptions:
    """Options given before a subcommand (``qwen-dev -p beta ask``): they mean what they
    mean after it."""

    provider: tuple[str, ...] = ()
    model: str | None = None
    approval: str | None = None
    config: Path | None = None


def _global_options(ctx: typer.Context) -> _GlobalOptions:
    found = ctx.find_root().obj
    return found if isinstance(found, _GlobalOptions) else _GlobalOptions()


def _either(flag: str, here: T | None, before: T | None) -> T | None:
    """The value of ``flag`` given after the subcommand or before it; both, different:
    exit 2 rather than guess."""
    if not before:
        return here
    if not here:
        return before
    if here != before:
        _fail(f"{flag} given before and after the command with different values", 2)
    return here


@dataclass(frozen=True)
class _Loaded:
    """Resolved settings, and the file and flags they were resolved from (the REPL
    resolves them again for ``/model`` and ``/provider``)."""

    settings: Settings
    config: Path | None
    overrides: Overrides


def _load(
    ctx: typer.Context,
    config: Path | None,
    provider: list[str] | None = None,
    model: str | None = None,
    approval: str | None = None,
    *,
    errors_as: str = "text",
) -> _Loaded:
    """The settings, or exit 2 with the error (also on stdout as the JSON object, or the
    stream-json result event, when a script asked for those). Options given before the
    subcommand count too."""
    before = _global_options(ctx)
    config = _either("--config", config, before.config)
    provider = _either("--provider", provider, list(before.provider) or None)
    model = _either("--model", model, before.model)
    approval = _either("--approval", approval, before.approval)
    overrides = Overrides(providers=tuple(provider or ()), model=model, approval=approval)
    try:
        return _Loaded(load_settings(config, overrides=overrides), config, overrides)
    except ConfigError as exc:
        if errors_as == "json":
            from .ui.output import config_failure_payload

            typer.echo(json.dumps(config_failure_payload(str(exc))))
        elif errors_as == "stream-json":
            from .ui.stream_json import config_failure_event

            typer.echo(json.dumps(config_failure_event(str(exc))))
        _fail(str(exc), exc.exit_code)


def _settings(ctx: typer.Context, config: Path | None) -> Settings:
    return _load(ctx, config).settings


def _run(work: Coroutine[object, object, T]) -> T:
    """``work`` on a new event loop. asyncio is imported here, not at start-up: it
    costs ``--version`` and ``--help`` about 45 ms they never use."""
    import asyncio

    return asyncio.run(work)


def _warn(message: str) -> None:
    # sys.stderr is looked up at each call: while an answer streams, rich's live
    # display stands in for it and prints the line above its footer.
    print(f"qwen-dev: {message}", file=sys.stderr, flush=True)


def _open_state_store(settings: Settings) -> ProviderStateStore:
    """The store ``[state] store`` names (docs/architecture.md section 8), for every
    client and check of this process. Opening is lazy: nothing connects, and neither
    sqlite3 nor redis is imported, until the client first uses it. Store trouble is told
    on stderr."""
    from .core.state import open_store

    return open_store(settings.client.state_store, home=settings.home, warn=_warn)


async def _with_runtime(
    loaded: _Loaded,
    run: Callable[[Runtime], Awaitable[int]],
    *,
    wait_mcp: bool = True,
    project_mcp: Callable[[ProjectServers], Awaitable[bool | None]] | bool = False,
) -> int:
    """``run(runtime)`` on this process's runtime (settings, workspace, home, the state
    store every client shares, the tools, the user's MCP servers started and, unless
    ``wait_mcp`` is false (the REPL: its first request waits), waited for), then the
    servers ended and the store closed (after the clients ``run`` closed).
    ``project_mcp``: whether the workspace's ``.mcp.json`` servers start (``True``:
    ``--trust-project-mcp``), or how the user is asked (the REPL)."""
    from .core.state import StoreError

    store = _open_state_store(loaded.settings)
    runtime = Runtime(
        loaded.settings,
        store,
        workspace=Path.cwd(),
        config_path=loaded.config,
        overrides=loaded.overrides,
    )
    try:
        async with runtime.mcp_servers(_warn, wait=wait_mcp, project=project_mcp) as running:
            return await run(running)
    finally:
        # A store that fails to close must not turn a finished answer into an error.
        try:
            await store.aclose()
        except (StoreError, OSError) as exc:
            log.info("closing state store %s failed: %s", store.location, exc)


@app.callback(invoke_without_command=True)
def main_callback(
    ctx: typer.Context,
    provider: ProviderOpt = None,
    model: ModelOpt = None,
    approval: ApprovalOpt = None,
    config: ConfigOpt = None,
    continue_latest: Annotated[
        bool,
        typer.Option("--continue", "-c", help="Resume the latest chat of this folder."),
    ] = False,
    resume: Annotated[
        str | None,
        typer.Option("--resume", "-r", metavar="ID", help="Resume a session (id or prefix)."),
    ] = None,
    at: Annotated[
        int | None,
        typer.Option(
            "--at",
            metavar="N",
            min=1,
            help="With --resume: the conversation as it was before turn N (/rewind lists "
            "the turns and restores files).",
        ),
    ] = None,
    version: Annotated[bool, typer.Option("--version", help="Print the version.")] = False,
    prompt: Annotated[
        str | None,
        typer.Option(
            "--prompt",
            "-p",
            metavar="TEXT",
            help="Answer TEXT in one headless turn and exit, as `qwen-dev ask TEXT`.",
            show_default=False,
            rich_help_panel=ASK_PANEL,
        ),
    ] = None,
    output_format: OutputFormatOpt = None,
    partial: PartialOpt = False,
    verbose: VerboseOpt = False,
    max_turns: MaxTurnsOpt = None,
    max_wait: MaxWaitOpt = None,
    system_prompt: SystemPromptOpt = None,
    append_system_prompt: AppendSystemPromptOpt = None,
    permission_mode: PermissionModeOpt = None,
    input_format: InputFormatOpt = None,
    session_id: SessionIdOpt = None,
    allowed_tools: AllowedToolsOpt = None,
    disallowed_tools: DisallowedToolsOpt = None,
    _permission_prompt_tool: PermissionPromptToolOpt = None,
    _setting_sources: SettingSourcesOpt = None,
    trust_project_mcp: TrustProjectMcpOpt = False,
) -> None:
    """Start the interactive assistant, or run one of the commands below."""
    flags = _AskFlags(
        output_format=output_format,
        max_turns=max_turns,
        max_wait=max_wait,
        partial=partial,
        verbose=verbose,
        system_prompt=system_prompt,
        append_system_prompt=append_system_prompt,
        permission_mode=permission_mode,
        input_format=input_format,
        session_id=session_id,
        allowed_tools=tuple(allowed_tools or ()),
        disallowed_tools=tuple(disallowed_tools or ()),
        trust_project_mcp=trust_project_mcp,
    )
    # Not an eager option: ``--version true`` must be refused (no command "true"), not
    # answered before the rest of the line is read.
    if version:
        if ctx.invoked_subcommand is not None:
            _fail("--version takes no command", exit_codes.USAGE_ERROR)
        typer.echo(f"qwen-dev {__version__}")
        raise typer.Exit()
    if ctx.invoked_subcommand is not None:
        if continue_latest or resume or at is not None:
            _fail(
                "--continue, --resume and --at start the interactive assistant: give them "
                "without a command",
                exit_codes.USAGE_ERROR,
            )
        if prompt is not None or flags.given():
            flag = "-p/--prompt" if prompt is not None else flags.given()[0]
            _fail(
                f"{flag} is for a headless turn: give it without a command, or after `ask`",
                exit_codes.USAGE_ERROR,
            )
        ctx.obj = _GlobalOptions(tuple(provider or ()), model, approval, config)
        return
    _check_at(at, resume, prompt is not None or input_format == "stream-json")
    if prompt is not None or input_format == "stream-json":
        # Headless, --continue and --resume go on in a saved session, as Claude Code's.
        flags = dataclasses.replace(flags, continue_latest=continue_latest, resume=resume)
        _ask(ctx, prompt or "", flags, provider, model, approval, config)
    if flags.given():
        _fail(f"{flags.given()[0]} needs a prompt: -p TEXT, or `qwen-dev ask`", 2)
    if continue_latest and resume:
        _fail("use --continue or --resume ID, not both", exit_codes.USAGE_ERROR)
    loaded = _load(ctx, config, provider, model, approval)
    if resume:
        # A session that does not exist is the first thing to say, terminal or not.
        from .session.store import SessionError

        try:
            Home(loaded.settings.home).session_store().path_of(resume)
        except SessionError as exc:
            _fail(str(exc), exit_codes.USAGE_ERROR)
    if sys.stdin is None or not sys.stdin.isatty():
        _fail(
            "the interactive assistant needs a terminal; for scripts use `qwen-dev ask PROMPT`",
            exit_codes.USAGE_ERROR,
        )
    # Imported here: --help and --version must not pay for prompt-toolkit and the client.
    from .ui.repl import ReplOptions, run_repl

    options = ReplOptions(continue_latest=continue_latest, resume_id=resume, resume_at=at)
    try:
        code = _run(
            _with_runtime(
                loaded,
                lambda runtime: run_repl(runtime, options),
                wait_mcp=False,
                project_mcp=_ask_about_project_servers,
            )
        )
    except KeyboardInterrupt:
        code = exit_codes.INTERRUPTED
    raise typer.Exit(code)


def _check_at(at: int | None, resume: str | None, headless: bool) -> None:
    """``--at N`` opens a resumed session before turn N, in the REPL only."""
    if at is None:
        return
    if resume is None:
        _fail("--at N needs --resume ID (the session to open before its turn N)", 2)
    if headless:
        _fail("--at is for the interactive assistant, not a headless turn", 2)


async def _ask_about_project_servers(project: ProjectServers) -> bool | None:
    """The REPL's question about a project's ``.mcp.json``, before its prompt."""
    from .ui.approval import approve_project_servers
    from .ui.theme import make_console

    return await approve_project_servers(project, make_console())


@app.command(cls=Command, epilog=EXIT_CODES)
def ask(
    ctx: typer.Context,
    prompt: Annotated[
        str,
        typer.Argument(
            metavar="PROMPT",
            help="The question; @path attaches a workspace file. Piped stdin is appended "
            "as context.",
            show_default=False,
        ),
    ] = "",
    output_format: OutputFormatOpt = None,
    json_output: Annotated[
        bool,
        typer.Option("--json", help="Print one JSON object on stdout, nothing else."),
    ] = False,
    no_stream: Annotated[
        bool, typer.Option("--no-stream", help="Print the answer when it is complete.")
    ] = False,
    max_steps: Annotated[
        int | None,
        typer.Option(
            "--max-steps",
            min=1,
            metavar="N",
            help=f"Most model calls in one turn  [default: {DEFAULT_MAX_STEPS}]",
            show_default=False,
        ),
    ] = None,
    max_turns: MaxTurnsOpt = None,
    max_wait: MaxWaitOpt = None,
    partial: PartialOpt = False,
    verbose: VerboseOpt = False,
    system_prompt: SystemPromptOpt = None,
    append_system_prompt: AppendSystemPromptOpt = None,
    permission_mode: PermissionModeOpt = None,
    input_format: InputFormatOpt = None,
    session_id: SessionIdOpt = None,
    allowed_tools: AllowedToolsOpt = None,
    disallowed_tools: DisallowedToolsOpt = None,
    continue_latest: Annotated[
        bool,
        typer.Option(
            "--continue",
            "-c",
            help="Go on in this folder's latest session.",
            rich_help_panel=ASK_PANEL,
        ),
    ] = False,
    resume: Annotated[
        str | None,
        typer.Option(
            "--resume",
            "-r",
            metavar="ID",
            help="Go on in a saved session (id or prefix).",
            show_default=False,
            rich_help_panel=ASK_PANEL,
        ),
    ] = None,
    _permission_prompt_tool: PermissionPromptToolOpt = None,
    _setting_sources: SettingSourcesOpt = None,
    provider: ProviderOpt = None,
    model: ModelOpt = None,
    approval: ApprovalOpt = None,
    config: ConfigOpt = None,
    trust_project_mcp: TrustProjectMcpOpt = False,
) -> None:
    """Answer one prompt and exit (for scripts: --output-format json|stream-json, exit codes).

    Tool calls needing approval are denied (no one to ask): stderr lists them, and the fix.
    """
    flags = _AskFlags(
        output_format=output_format,
        json_output=json_output,
        no_stream=no_stream,
        max_steps=max_steps,
        max_turns=max_turns,
        max_wait=max_wait,
        partial=partial,
        verbose=verbose,
        system_prompt=system_prompt,
        append_system_prompt=append_system_prompt,
        permission_mode=permission_mode,
        input_format=input_format,
        session_id=session_id,
        allowed_tools=tuple(allowed_tools or ()),
        disallowed_tools=tuple(disallowed_tools or ()),
        continue_latest=continue_latest,
        resume=resume,
        trust_project_mcp=trust_project_mcp,
    )
    _ask(ctx, prompt, flags, provider, model, approval, config)


def _ask(
    ctx: typer.Context,
    prompt: str,
    flags: _AskFlags,
    provider: list[str] | None,
    model: str | None,
    approval: str | None,
    config: Path | None,
) -> NoReturn:
    """One headless turn (``ask PROMPT`` and ``-p PROMPT``): the exit code its end
    (``flags.trust_project_mcp``: start the servers of the workspace's ``.mcp.json``)."""
    from .ui.oneshot import MAX_STDIN_BYTES, AskOptions, prepare_prompt, run_ask

    output_format = flags.resolved_format()
    steps = flags.steps()
    approval = flags.approval(approval or _global_options(ctx).approval)
    turns_in = flags.input_format == "stream-json"
    if turns_in and output_format != "stream-json":
        _fail("--input-format stream-json needs --output-format stream-json", 2)
    flags.sessions()
    rules = flags.rules()
    loaded = flags.with_max_wait(
        _load(ctx, config, provider, model, approval, errors_as=output_format)
    )
    _check_session(loaded.settings, flags, output_format)
    # One byte past the cap is enough to know the input was cut.
    piped = (
        None
        if turns_in or sys.stdin is None or sys.stdin.isatty()
        else sys.stdin.buffer.read(MAX_STDIN_BYTES + 1)
    )
    prepared = prepare_prompt(prompt, piped, loaded.settings, workspace=Path.cwd())
    if not turns_in and not prepared.text.strip():
        _fail('nothing to ask: give a prompt, e.g. qwen-dev ask "explain this"', 2)
    for note in prepared.notes:
        typer.echo(f"qwen-dev: {note}", err=True)
    if prepared.attached and sys.stderr.isatty():
        typer.echo(f"qwen-dev: attached {', '.join(prepared.attached)}", err=True)
    options = AskOptions(
        prepared.text,
        output_format=output_format,
        stream=not flags.no_stream,
        max_steps=steps,
        partial=flags.partial,
        verbose=flags.verbose,
        system_prompt=flags.system_prompt,
        append_system_prompt=flags.append_system_prompt,
        read_only=flags.permission_mode == "plan",
        input_format="stream-json" if turns_in else "text",
        session_id=flags.session_id,
        resume_id=flags.resume,
        continue_latest=flags.continue_latest,
        rules=rules,
    )
    try:
        code = _run(
            _with_runtime(
                loaded,
                lambda runtime: run_ask(
                    runtime,
                    options,
                    out=sys.stdout,
                    err=sys.stderr,
                    interactive_err=sys.stderr.isatty(),
                    stdin=None if sys.stdin is None else sys.stdin.buffer,
                ),
                project_mcp=flags.trust_project_mcp,
            )
        )
    except KeyboardInterrupt:
        typer.echo("\nqwen-dev: interrupted", err=True)
        code = exit_codes.INTERRUPTED
    raise typer.Exit(code)


def _check_session(settings: Settings, flags: _AskFlags, output_format: str) -> None:
    """A ``--resume`` session that does not exist, a ``--session-id`` that is taken or
    not a safe name: exit 2 before anything runs (also as the JSON object, or the
    stream-json result event, when a script asked for those)."""
    if flags.resume is None and flags.session_id is None:
        return
    from .session.store import SessionError

    store = Home(settings.home).session_store()
    try:
        if flags.resume is not None:
            store.path_of(flags.resume)
        if flags.session_id is not None:
            store.check_new_id(flags.session_id)
    except SessionError as exc:
        if output_format == "json":
            from .ui.output import config_failure_payload

            typer.echo(json.dumps(config_failure_payload(str(exc), kind="session_error")))
        elif output_format == "stream-json":
            from .ui.stream_json import config_failure_event

            typer.echo(json.dumps(config_failure_event(str(exc), kind="session_error")))
        _fail(str(exc), exit_codes.USAGE_ERROR)


@config_app.command("show", cls=Command)
def config_show(ctx: typer.Context, config: ConfigOpt = None) -> None:
    """Print the resolved configuration as JSON (keys redacted)."""
    typer.echo(json.dumps(redacted(_settings(ctx, config)), indent=2))


@config_app.command("path", cls=Command)
def config_path(ctx: typer.Context, config: ConfigOpt = None) -> None:
    """Print the path of the user config file (which may not exist yet)."""
    # Only where the file is: a broken file or a missing key must not stop this answer.
    typer.echo(str(_either("--config", config, _global_options(ctx).config) or user_config_path()))


@config_app.command("init", cls=Command)
def config_init(
    ctx: typer.Context,
    config: ConfigOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented starter config file."""
    from .config import STARTER_CONFIG

    path = _either("--config", config, _global_options(ctx).config) or user_config_path()
    if path.exists() and not force:
        _fail(f"{path} exists; use --force to overwrite it", exit_codes.USAGE_ERROR)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(STARTER_CONFIG, encoding="utf-8")
    typer.echo(f"wrote {path}")


def _user_config(ctx: typer.Context, config: Path | None) -> Path:
    return _either("--config", config, _global_options(ctx).config) or user_config_path()


@mcp_app.command("list", cls=Command)
def mcp_list(
    ctx: typer.Context,
    json_output: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
    config: ConfigOpt = None,
) -> None:
    """Start each configured MCP server and list its state and tools (this folder's
    .mcp.json too, once approved in the interactive assistant)."""
    import os

    from .mcp import McpServers
    from .mcp.project import project_servers

    settings = _settings(ctx, config)
    said: list[str] = []
    home = Home(settings.home)

    async def unapproved(project: ProjectServers) -> None:
        # Not asked here, not remembered: said, and left to the interactive assistant.
        typer.echo(
            f"qwen-dev: {project.path}: not approved yet (start qwen-dev here to be asked); "
            "its servers are not listed",
            err=True,
        )

    async def survey() -> list[dict[str, object]]:
        names = [server.name for server in settings.mcp_servers]
        extra = await project_servers(
            Path.cwd(),
            home.mcp_trust,
            names,
            approve=unapproved,
            warn=lambda message: typer.echo(f"qwen-dev: {message}", err=True),
        )
        servers = McpServers.of(
            settings.mcp_servers,
            extra,
            home.mcp_logs,
            os.environ,
            said.append,
            hidden=settings.secret_env_names,
        )
        try:
            await servers.wait_ready()
            return servers.report()
        finally:
            await servers.aclose()

    rows = _run(survey())
    if json_output:
        typer.echo(json.dumps({"servers": rows}))
        return
    if not rows:
        typer.echo("no MCP servers: add one with qwen-dev mcp add NAME -- COMMAND ARGS...")
    for row in rows:
        trust = ", trusted" if row["trust"] else ""
        line = f"{row['name']} ({row['transport']}{trust}): {row['state']}"
        if row["breaker"] is not None:
            from .mcp.breaker import describe

            line += f", breaker {describe(row['breaker'])}"
        if row["error"]:
            line += f": {row['error']}"
        typer.echo(line)
        tools = row["tools"]
        for tool in tools if isinstance(tools, list) else ():
            typer.echo(f"  {tool}")


@mcp_app.command("add", cls=Command)
def mcp_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The server's name (its tools: mcp__NAME__TOOL).")],
    command: Annotated[
        list[str] | None,
        typer.Argument(help="After --: the command of a stdio server and its arguments."),
    ] = None,
    url: Annotated[str | None, typer.Option("--url", help="The URL of an HTTP server.")] = None,
    env: Annotated[
        list[str] | None,
        typer.Option(
            "--env", metavar="K=V", help="A variable for a stdio server (${VAR} expands)."
        ),
    ] = None,
    header: Annotated[
        list[str] | None,
        typer.Option("--header", metavar="K:V", help="A header for an HTTP server."),
    ] = None,
    sse: Annotated[
        bool, typer.Option("--sse", help="The URL speaks the older SSE protocol.")
    ] = False,
    trust: Annotated[bool, typer.Option("--trust", help="Run its tools without asking.")] = False,
    config: ConfigOpt = None,
) -> None:
    """Add an MCP server to the user config: NAME -- COMMAND ARGS..., or NAME --url URL."""
    from .mcp.config_file import ConfigEditError, add_servers, check_table

    path = _user_config(ctx, config)
    table: dict[str, object] = {}
    if command:
        table["command"], table["args"] = command[0], command[1:]
    if url is not None:
        table["url"] = url
    if env:
        table["env"] = dict(_pair(item, "=", "--env") for item in env)
    if header:
        table["headers"] = dict(_pair(item, ":", "--header") for item in header)
    if sse:
        table["transport"] = "sse"
    if trust:
        table["trust"] = True
    if not command and url is None:
        _fail("give the server's command after --, or --url", exit_codes.USAGE_ERROR)
    try:
        check_table(name, table, "the command line")
        add_servers(path, {name: table})
    except (ConfigError, ConfigEditError) as exc:
        _fail(str(exc), exit_codes.USAGE_ERROR)
    typer.echo(f"added MCP server {name} to {path}")


def _pair(item: str, separator: str, flag: str) -> tuple[str, str]:
    key, found, value = item.partition(separator)
    if not found or not key.strip():
        _fail(f"{flag} expects KEY{separator}VALUE, got {item!r}", exit_codes.USAGE_ERROR)
    return key.strip(), value.strip() if separator == ":" else value


@mcp_app.command("remove", cls=Command)
def mcp_remove(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The server's name.")],
    config: ConfigOpt = None,
) -> None:
    """Remove an MCP server from the user config."""
    from .mcp.config_file import ConfigEditError, remove_server

    path = _user_config(ctx, config)
    try:
        remove_server(path, name)
    except ConfigEditError as exc:
        _fail(str(exc), exit_codes.USAGE_ERROR)
    typer.echo(f"removed MCP server {name} from {path}")


@mcp_app.command("import", cls=Command)
def mcp_import(
    ctx: typer.Context,
    file: Annotated[
        Path, typer.Argument(help="Claude Code's .mcp.json, or Gemini/Qwen Code's settings.json.")
    ],
    config: ConfigOpt = None,
) -> None:
    """Add the servers of another tool's JSON settings to the user config."""
    from .mcp.config_file import ConfigEditError, add_servers, check_table
    from .mcp.imports import McpImportError, read_servers

    path = _user_config(ctx, config)
    try:
        servers, notes = read_servers(file)
        for name, table in servers.items():
            check_table(name, table, f"{file}: mcpServers")
        add_servers(path, servers)
    except (McpImportError, ConfigError, ConfigEditError) as exc:
        _fail(str(exc), exit_codes.USAGE_ERROR)
    for note in notes:
        typer.echo(f"qwen-dev: {note}", err=True)
    typer.echo(f"imported {len(servers)} MCP server(s) into {path}:")
    # What each will run or reach, said plainly: an imported file may be someone else's.
    from .mcp.expand import variables_of
    from .ui.safe_text import printable

    for name, table in servers.items():
        target = table.get("url") or " ".join([table["command"], *table.get("args", [])])
        texts = [target, *table.get("env", {}).values(), *table.get("headers", {}).values()]
        names = variables_of(texts)
        given = f"; given {', '.join('$' + name for name in names)}" if names else ""
        typer.echo(printable(f"  {name}: {target}{given}"))


sessions_app = typer.Typer(cls=Group, help="List, show, export or delete saved sessions.")
app.add_typer(sessions_app, name="sessions")


def _store() -> SessionStore:
    # State lives in QWEN_DEV_HOME whatever the config says: a config error must not
    # lock the user out of their sessions.
    return Home(data_dir()).session_store()


@sessions_app.command("list", cls=Command)
def sessions_list(
    json_output: Annotated[bool, typer.Option("--json", help="One JSON array.")] = False,
) -> None:
    """Saved sessions, most recent first: chats (the REPL) and asks (qwen-dev ask)."""
    infos = _store().list()
    if json_output:
        typer.echo(json.dumps([info.to_dict() for info in infos], indent=2))
        return
    if not infos:
        typer.echo("no sessions yet")
        return
    import time

    for info in infos:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(info.updated))
        typer.echo(f"{info.id}  {when}  {info.kind:<4}  {info.message_count:>3} msgs  {info.title}")
        typer.echo(f"{'':22}{info.cwd}")


SessionIdArg = Annotated[str, typer.Argument(metavar="ID", help="Id or its prefix.")]


@sessions_app.command("show", cls=Command)
def sessions_show(session_id: SessionIdArg) -> None:
    """A session at a glance: when, where, which model, each turn abbreviated."""
    from .session.summary import to_summary
    from .ui.safe_text import printable

    typer.echo(printable(to_summary(_load_session(session_id))), nl=False)


@sessions_app.command("export", cls=Command)
def sessions_export(
    session_id: SessionIdArg,
    format_: Annotated[
        Literal["md", "json"], typer.Option("--format", help="Markdown or JSON.")
    ] = "md",
) -> None:
    """The whole conversation as Markdown or JSON, for saving or sharing."""
    from .session.export import to_json, to_markdown

    loaded = _load_session(session_id)
    typer.echo(to_markdown(loaded) if format_ == "md" else to_json(loaded), nl=False)


@sessions_app.command("delete", cls=Command)
def sessions_delete(
    session_id: SessionIdArg,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Do not ask (only a terminal is asked).")
    ] = False,
) -> None:
    """Delete a session (on a terminal, after a yes)."""
    from .session.store import SessionError

    if not yes and sys.stdin is not None and sys.stdin.isatty():
        from .session.summary import describe

        question = f"Delete session {describe(_load_session(session_id))}?"
        if not typer.confirm(question, default=False, err=True):
            typer.echo("not deleted", err=True)
            return
    try:
        _store().delete(session_id)
    except SessionError as exc:
        _fail(str(exc), exit_codes.USAGE_ERROR)
    typer.echo(f"deleted {session_id}")


def _load_session(session_id: str) -> LoadedSession:
    from .session.store import SessionError

    try:
        return _store().load(session_id)
    except SessionError as exc:
        _fail(str(exc), exit_codes.USAGE_ERROR)


@app.command(cls=Command)
def metrics(
    json_output: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """Telemetry aggregated over past runs."""
    merged = Home(data_dir()).metrics_log().aggregate()
    if json_output:
        typer.echo(json.dumps(merged))
        return
    from .ui.metrics_table import print_metrics

    print_metrics(merged)


@app.command(cls=Command)
def doctor(
    ctx: typer.Context,
    config: ConfigOpt = None,
    timeout: Annotated[
        float,
        typer.Option("--timeout", min=0.1, metavar="SECONDS", help="Seconds each probe may take."),
    ] = 10.0,
) -> None:
    """Probe each provider (key present, reachable, model, latency) and the state store."""
    from .ui.doctor import run_doctor
    from .ui.theme import make_console

    loaded = _load(ctx, config)
    code = _run(
        _with_runtime(
            loaded,
            lambda runtime: run_doctor(
                runtime.settings,
                make_console(),
                seconds=timeout,
                state=runtime.state,
                mcp=runtime.mcp,
            ),
            wait_mcp=False,
        )
    )
    raise typer.Exit(code)


@app.command(cls=Command)
def batch(
    ctx: typer.Context,
    input_path: Annotated[
        str,
        typer.Argument(
            metavar="INPUT",
            help='JSONL, one {"id", "prompt"} or {"id", "messages"} per line; - reads stdin.',
            show_default=False,
        ),
    ],
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            metavar="FILE",
            help="JSONL results, one line per prompt. Also the checkpoint: the same command "
            "again skips what is answered and retries what failed.",
            show_default=False,
        ),
    ],
    concurrency: Annotated[
        int | None,
        typer.Option(
            "--concurrency",
            min=1,
            max=256,
            metavar="N",
            help="Prompts in flight (default: one per 10 requests/min of budget, at most 8).",
            show_default=False,
        ),
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one summary object on stdout.")
    ] = False,
    shard: Annotated[
        str | None,
        typer.Option(
            "--shard",
            metavar="K/N",
            help="Only the ids in shard K of N (a stable hash of the id): one input, N machines.",
        ),
    ] = None,
    max_wait: Annotated[
        float,
        typer.Option(
            "--max-wait",
            min=0,
            metavar="SECONDS",
            help="Seconds a prompt may wait in all for rate limits and outages to pass; "
            "beyond, it fails and the batch stops (resume later).",
        ),
    ] = 600.0,
    system: Annotated[
        str | None,
        typer.Option("--system", metavar="TEXT", help="System message for prompts that have none."),
    ] = None,
    max_tokens: Annotated[
        int | None,
        typer.Option("--max-tokens", min=1, metavar="N", help="Most tokens in each answer."),
    ] = None,
    temperature: Annotated[
        float | None,
        typer.Option("--temperature", min=0.0, max=2.0, metavar="T", help="Sampling temperature."),
    ] = None,
    report_every: Annotated[
        float,
        typer.Option(
            "--report-every",
            min=0.1,
            metavar="SECONDS",
            help="Seconds between progress lines when stderr is not a terminal.",
        ),
    ] = 30.0,
    provider: ProviderOpt = None,
    model: ModelOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Answer many prompts at the budget's pace; resumable (run it again) after a crash."""
    import shlex

    from .batch import BatchOptions, RequestOptions, run_batch

    loaded = _load(ctx, config, provider, model)
    options = BatchOptions(
        input=input_path,
        output=output,
        resume_command=shlex.join(["qwen-dev", *sys.argv[1:]]),
        concurrency=concurrency,
        json_output=json_output,
        shard=shard,
        max_wait=max_wait,
        report_every=report_every,
        request=RequestOptions(system=system, max_tokens=max_tokens, temperature=temperature),
    )
    err_console = None
    if sys.stderr is not None and sys.stderr.isatty():
        from .ui.theme import make_console

        err_console = make_console(stderr=True)
    try:
        code = _run(
            _with_runtime(
                loaded,
                lambda runtime: run_batch(
                    runtime,
                    options,
                    stdin=None if sys.stdin is None else sys.stdin.buffer,
                    out=sys.stdout,
                    err=sys.stderr,
                    err_console=err_console,
                ),
            )
        )
    except KeyboardInterrupt:
        code = exit_codes.INTERRUPTED
    raise typer.Exit(code)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(exit_codes.INTERRUPTED)
