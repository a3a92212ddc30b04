"""Threat: a command reads the provider's API key and hands it to the model (and from
there to whoever wrote the injected prompt).

The sandbox gives a command only PATH, HOME, LANG and TERM, and a PID namespace of its
own: the assistant's process, and so ``/proc/$PPID/environ``, is not there to read."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import requires_sandbox, yolo

pytestmark = pytest.mark.slow  # A real `qwen-dev ask` process.

KEY = "sk-lab-0123456789-do-not-leak"


@requires_sandbox
async def test_the_parents_environment_and_the_providers_key_are_out_of_reach(
    workspace: Path,
) -> None:
    statuses, told = await yolo(
        workspace,
        "env; cat /proc/$PPID/environ; cat /proc/1/environ; ps -eo pid,args",
        api_key=KEY,
    )
    assert statuses in (["ok"], ["error"])
    assert KEY not in told[0]
    assert "LAB_API_KEY" not in told[0]
    assert "qwen_dev_cli" not in told[0]  # the assistant's process is not visible
