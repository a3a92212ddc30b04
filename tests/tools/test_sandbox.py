"""The sandbox's shape: the bwrap command line, the environment, detection."""

from __future__ import annotations

from pathlib import Path

import pytest

from qwen_dev_cli.tools.command import run_shell
from qwen_dev_cli.tools.sandbox import (
    Bubblewrap,
    Seatbelt,
    probe,
    sandbox_environment,
)


def test_bubblewrap_confines_writes_namespaces_and_network() -> None:
    argv = Bubblewrap("/usr/bin/bwrap").argv(
        "make", cwd=Path("/w/sub"), writable=Path("/w"), network=False
    )
    assert argv[:4] == ["/usr/bin/bwrap", "--ro-bind", "/", "/"]
    assert argv[-4:] == ["--", "/bin/sh", "-c", "make"]
    joined = " ".join(argv)
    assert "--bind /w /w" in joined
    assert "--chdir /w/sub" in joined
    assert joined.index("--tmpfs /tmp") < joined.index("--bind /w /w")
    for option in ("--unshare-pid", "--unshare-net", "--die-with-parent", "--new-session"):
        assert option in argv
    assert "--cap-drop ALL" in joined
    online = Bubblewrap("bwrap").argv("make", cwd=Path("/w"), writable=Path("/w"), network=True)
    assert "--unshare-net" not in online


def test_seatbelt_profile_denies_by_default_and_network_only_when_allowed() -> None:
    off = Seatbelt().argv("ls", cwd=Path("/w"), writable=Path("/w"), network=False)
    on = Seatbelt().argv("ls", cwd=Path("/w"), writable=Path("/w"), network=True)
    assert off[0] == "/usr/bin/sandbox-exec"
    assert "WRITABLE=/w" in off
    assert "(deny default)" in off[2]
    assert "network" not in off[2]
    assert "(allow network-outbound)" in on[2]


def test_the_environment_keeps_only_the_basics() -> None:
    env = sandbox_environment(
        {"PATH": "/opt/bin:/usr/bin", "HOME": "/home/u", "OPENAI_API_KEY": "sk-x", "LANG": ""}
    )
    assert env["PATH"] == "/opt/bin:/usr/bin"
    assert env["HOME"] == "/home/u"
    assert env["LANG"] == "C.UTF-8"
    assert "OPENAI_API_KEY" not in env
    assert set(env) == {"PATH", "HOME", "LANG", "TERM", "GIT_TERMINAL_PROMPT", "PAGER", "GIT_PAGER"}


def test_detection_says_why_there_is_no_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    missing = probe("linux")
    assert not missing.available
    assert "bubblewrap is not installed" in missing.detail
    assert "yolo asks" in missing.describe()
    assert not probe("win32").available


async def test_a_sandbox_that_fails_to_start_is_an_error_not_a_silent_bypass(
    tmp_path: Path,
) -> None:
    broken = Bubblewrap(str(tmp_path / "no-such-bwrap"))
    with pytest.raises(FileNotFoundError):
        await run_shell("true", tmp_path, 5, 1000, sandbox=broken)
