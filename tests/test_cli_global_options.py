"""Options given before a subcommand mean what they mean after it (issue 12, bug 1):
`qwen-dev --provider beta ask` must not answer from another provider."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # Every test runs real `qwen-dev` processes.


def qwen_dev(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "qwen_dev_cli", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ),
    )


def test_config_before_the_command_is_used(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    run = qwen_dev("--config", str(missing), "ask", "hi")
    assert run.returncode == 2
    assert "config file not found" in run.stderr


def test_provider_before_the_command_is_used(tmp_path: Path) -> None:
    run = qwen_dev("--provider", "beta", "ask", "--json", "hi")
    assert run.returncode == 2
    assert "unknown provider 'beta'" in json.loads(run.stdout)["error"]["message"]


def test_config_before_config_show_is_the_file_shown(tmp_path: Path) -> None:
    config = tmp_path / "mine.toml"
    config.write_text('provider_order = ["local"]\n[retry]\nmax_retries = 7\n')
    run = qwen_dev("--config", str(config), "config", "show")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["retry"]["max_retries"] == 7
    assert qwen_dev("--config", str(config), "config", "path").stdout.strip() == str(config)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("-m", "x", "ask", "-m", "y", "hi"), "--model given before and after"),
        (("--continue", "ask", "hi"), "without a command"),
    ],
)
def test_conflicting_or_misplaced_options_are_refused(args: tuple[str, ...], message: str) -> None:
    run = qwen_dev(*args)
    assert run.returncode == 2
    assert message in run.stderr


def test_resume_of_an_unknown_session_says_so_even_without_a_terminal() -> None:
    run = qwen_dev("--resume", "nosuch")
    assert run.returncode == 2
    assert "no session 'nosuch'" in run.stderr
    assert "terminal" not in run.stderr


def test_the_repl_without_a_terminal_is_a_usage_error() -> None:
    run = qwen_dev()
    assert run.returncode == 2
    assert "needs a terminal" in run.stderr
