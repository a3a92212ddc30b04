"""Threat: a command reads the provider's API key, or the user's credentials, and
hands them to the model (and from there to the provider's server and whoever wrote the
injected prompt).

The sandbox gives a command only PATH, HOME, LANG and TERM, and a PID namespace of its
own: the assistant's process, and so ``/proc/$PPID/environ``, is not there to read.
The credential stores of the home folder and qwen-dev's own files are covered."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

from faultserver import FaultServer, Outcome
from tests.test_cli_ask import write_config

from .conftest import call, requires_sandbox, yolo

pytestmark = pytest.mark.slow  # A real `qwen-dev ask` process.

KEY = "sk-lab-0123456789-do-not-leak"


@requires_sandbox
async def test_the_parents_environment_and_the_providers_key_are_out_of_reach(
    workspace: Path,
) -> None:
    statuses, told = await yolo(
        workspace,
        "env; ps -eo pid,args",
        "cat /proc/$PPID/environ; cat /proc/1/environ",
        api_key=KEY,
    )
    assert statuses[0] in ("ok", "error")
    assert statuses[1] == "denied"  # reading a process's environment is critical
    for result in told:
        assert KEY not in result
        assert "LAB_API_KEY" not in result
    assert "qwen_dev_cli" not in told[0]  # the assistant's process is not visible


@requires_sandbox
async def test_credentials_and_past_conversations_are_out_of_reach_in_the_home_folder(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The user works in their home folder: the sandbox binds it writable, whole.
    secrets = {
        ".ssh/id_ed25519": "-----BEGIN OPENSSH PRIVATE KEY----- leak-1",
        ".aws/credentials": "aws_secret_access_key = leak-2",
        ".netrc": "machine example.com password leak-3",
        ".bash_history": "export OPENAI_API_KEY=sk-leak-4",
        ".local/share/qwen-dev/sessions/old.jsonl": "a past conversation leak-5",
    }
    for name, text in secrets.items():
        (workspace / name).parent.mkdir(parents=True, exist_ok=True)
        (workspace / name).write_text(text + "\n", encoding="utf-8")
    monkeypatch.setenv("HOME", str(workspace))
    monkeypatch.setenv("QWEN_DEV_HOME", str(workspace / ".local/share/qwen-dev"))
    statuses, told = await yolo(
        workspace,
        "cat ~/app.py; cat ~/.ssh/id_ed25519 ~/.aws/credentials ~/.netrc ~/.bash_history;"
        " cat ~/.local/share/qwen-dev/sessions/*.jsonl; ls -la ~/.ssh",
    )
    assert statuses in (["ok"], ["error"])
    assert "print('hello')" in told[0]  # the command ran, in the home folder
    for text in secrets.values():
        assert text.split()[-1] not in told[0]


async def test_a_key_a_tool_reads_is_removed_before_the_model_sees_it(workspace: Path) -> None:
    # Issue 22, finding 9: whatever a tool outputs passes the client's key redactor.
    (workspace / "deploy.env").write_text(f"LAB_API_KEY={KEY}\nREGION=eu\n")
    async with FaultServer() as srv:
        srv.script(
            Outcome.ok(tool_calls=[call("read_file", path="deploy.env")]), Outcome.ok("done")
        )
        config = write_config(
            workspace.parent / "c.toml", srv, provider_extra='api_key_env = "LAB_API_KEY"'
        )
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "qwen_dev_cli", "ask", "--json", "--config", str(config), "go",
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, cwd=workspace,
            env={**os.environ, "LAB_API_KEY": KEY},
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, err.decode()
    sent = json.dumps(srv.requests[-1].json)
    assert "REGION=eu" in sent  # the file was read...
    assert KEY not in sent  # ...without the key
    session_id = json.loads(out)["session_id"]
    sessions = Path(os.environ["QWEN_DEV_HOME"]) / "sessions"
    assert KEY not in next(sessions.glob(f"{session_id}*")).read_text()
