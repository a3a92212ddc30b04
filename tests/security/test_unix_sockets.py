"""Threat (issue 22, finding 4): "no network" still reaches host daemons over Unix
sockets: a read-only mount does not stop connect(). The sandbox empties /run and /tmp,
where the system's daemons keep theirs (dbus, systemd, docker, databases under
/run/...), and its own network namespace cuts off abstract sockets. A socket elsewhere
(a database's in its data folder) stays reachable: the README says so."""

from __future__ import annotations

import os
import socket
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from qwen_dev_cli.tools.command import run_shell
from qwen_dev_cli.tools.sandbox import detect_sandbox

from .conftest import requires_sandbox

pytestmark = [pytest.mark.slow, requires_sandbox]


@pytest.fixture
def listening(request: pytest.FixtureRequest) -> Iterator[str]:
    """A host daemon's socket: a listener at the path the test names."""
    path: str = request.param
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        server.bind(path)
    except OSError as exc:
        server.close()
        pytest.skip(f"cannot make a socket at {path} here: {exc}")
    server.listen(1)
    try:
        yield path
    finally:
        server.close()
        if not path.startswith("\0"):
            os.unlink(path)


def _in(folder: str) -> str:
    return os.path.join(folder, f"qwen-dev-test-{uuid.uuid4().hex[:8]}.sock")


@pytest.mark.parametrize(
    "listening",
    [_in("/run"), _in(tempfile.gettempdir()), f"\0qwen-dev-test-{uuid.uuid4().hex[:8]}"],
    indirect=True,
    ids=["in /run", "in /tmp", "abstract"],
)
async def test_a_host_daemons_socket_is_out_of_reach(listening: str, tmp_path: Path) -> None:
    probe = (
        "import socket,sys\n"
        "s = socket.socket(socket.AF_UNIX)\n"
        f"s.connect({listening!r})\n"
        "print('CONNECTED')\n"
    )
    (tmp_path / "probe.py").write_text(probe)
    sandbox = detect_sandbox().sandbox
    assert sandbox is not None
    result = await run_shell(
        "python3 probe.py", tmp_path, 30, 10_000, writable=tmp_path, sandbox=sandbox
    )
    assert "CONNECTED" not in result.output
    assert result.exit_code != 0, result.output
