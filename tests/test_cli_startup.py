"""`qwen-dev --version` and `--help` stay light: the REPL's and the client's heavy
modules are imported only by the commands that use them."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # Every test runs real `qwen-dev` processes.

PROBE = """
import sys, runpy
sys.argv = ["qwen-dev", *{args!r}]
try:
    runpy.run_module("qwen_dev_cli", run_name="__main__")
except SystemExit:
    pass
print(sorted(m for m in ("prompt_toolkit", "httpx", "rich.live") if m in sys.modules))
"""


@pytest.mark.parametrize("args", [["--version"], ["--help"], ["doctor", "--help"]])
def test_version_and_help_import_neither_prompt_toolkit_nor_httpx(args: list[str]) -> None:
    run = subprocess.run(
        [sys.executable, "-c", PROBE.format(args=args)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert run.stdout.strip().splitlines()[-1] == "[]"
