"""``--at N`` goes with ``--resume ID``, in the interactive assistant only."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # real `qwen-dev` processes


def qwen_dev(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "qwen_dev_cli", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ),
    )


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("--at", "2"), "--at N needs --resume ID"),
        (("-p", "hi", "--resume", "abc", "--at", "2"), "--at is for the interactive assistant"),
        (("--at", "2", "sessions", "list"), "--at start the interactive assistant"),
        (("--resume", "abc", "--at", "0"), "--at"),
    ],
)
def test_at_without_resume_or_headless_is_a_usage_error(args: tuple[str, ...], said: str) -> None:
    run = qwen_dev(*args)
    assert run.returncode == 2
    assert said in run.stderr
