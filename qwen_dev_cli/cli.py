"""The ``qwen-dev`` command: reads the configuration, builds the pieces and wires them.

Commands stay thin; the work lives in ``ui``, ``agent`` and ``core``. Heavy modules
(httpx, prompt-toolkit, the client) are imported inside the commands that need them,
so ``--version`` and ``--help`` start fast.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from . import __version__, exit_codes
from .config import ConfigError, Overrides, load_settings, redacted

if TYPE_CHECKING:
    from .config import Settings

app = typer.Typer(
    name="qwen-dev",
    help="A terminal coding assistant for Qwen models and any OpenAI-compatible endpoint.",
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
config_app = typer.Typer(help="Show, locate or create the configuration file.")
app.add_typer(config_app, name="config")

ProviderOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--provider",
        "-p",
        help="Use only these providers, in this order (repeatable).",
        show_default=False,
    ),
]
ModelOpt = Annotated[
    str | None, typer.Option("--model", "-m", help="Override the first provider's model.")
]
ApprovalOpt = Annotated[
    str | None,
    typer.Option("--approval", help="What tool calls may do unasked: ask, auto-edit or yolo."),
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", help="Config file (else $QWEN_DEV_CONFIG, else the user config)."),
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"qwen-dev {__version__}")
        raise typer.Exit()


def _fail(message: str, code: int) -> NoReturn:
    typer.echo(f"qwen-dev: {message}", err=True)
    raise typer.Exit(code)


def _settings(
    config: Path | None,
    provider: list[str] | None = None,
    model: str | None = None,
    approval: str | None = None,
) -> Settings:
    overrides = Overrides(providers=tuple(provider or ()), model=model, approval=approval)
    try:
        return load_settings(config, overrides=overrides)
    except ConfigError as exc:
        _fail(str(exc), exc.exit_code)


@app.callback(invoke_without_command=True)
def main_callback(
    ctx: typer.Context,
    provider: ProviderOpt = None,
    model: ModelOpt = None,
    approval: ApprovalOpt = None,
    config: ConfigOpt = None,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Start the interactive assistant, or run one of the commands below."""
    if ctx.invoked_subcommand is not None:
        return
    _settings(config, provider, model, approval)
    _fail(
        "the interactive REPL is not built yet; use `qwen-dev ask PROMPT` for now",
        exit_codes.USAGE_ERROR,
    )


@app.command()
def ask(
    prompt: Annotated[
        str, typer.Argument(help="The question. Piped stdin is appended as context.")
    ] = "",
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one JSON object on stdout, nothing else.")
    ] = False,
    no_stream: Annotated[
        bool, typer.Option("--no-stream", help="Print the answer when it is complete.")
    ] = False,
    max_steps: Annotated[
        int, typer.Option("--max-steps", min=1, help="Most model calls in one turn.")
    ] = 25,
    provider: ProviderOpt = None,
    model: ModelOpt = None,
    approval: ApprovalOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Answer one prompt and exit (for scripts: --json, exit codes)."""
    from .ui.oneshot import AskOptions, compose_prompt, run_ask

    settings = _settings(config, provider, model, approval)
    piped = None if sys.stdin is None or sys.stdin.isatty() else sys.stdin.buffer.read()
    text, note = compose_prompt(prompt, piped)
    if not text.strip():
        _fail('nothing to ask: give a prompt, e.g. qwen-dev ask "explain this"', 2)
    if note:
        typer.echo(f"qwen-dev: {note}", err=True)
    options = AskOptions(text, json_output=json_output, stream=not no_stream)
    try:
        code = asyncio.run(
            run_ask(
                settings,
                options,
                out=sys.stdout,
                err=sys.stderr,
                interactive_err=sys.stderr.isatty(),
            )
        )
    except KeyboardInterrupt:
        typer.echo("\nqwen-dev: interrupted", err=True)
        code = exit_codes.INTERRUPTED
    raise typer.Exit(code)


@config_app.command("show")
def config_show(config: ConfigOpt = None) -> None:
    """Print the resolved configuration as JSON (keys redacted)."""
    typer.echo(json.dumps(redacted(_settings(config)), indent=2))


@config_app.command("path")
def config_path(config: ConfigOpt = None) -> None:
    """Print the path of the user config file (which may not exist yet)."""
    typer.echo(str(_settings(config).config_path))


@config_app.command("init")
def config_init(
    config: ConfigOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented starter config file."""
    from .config import STARTER_CONFIG, user_config_path

    path = config or user_config_path()
    if path.exists() and not force:
        _fail(f"{path} exists; use --force to overwrite it", exit_codes.USAGE_ERROR)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(STARTER_CONFIG, encoding="utf-8")
    typer.echo(f"wrote {path}")


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(exit_codes.INTERRUPTED)
