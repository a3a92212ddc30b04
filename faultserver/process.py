"""The fault server in a child process (``python -m faultserver``), for benchmarks and
tests that run real ``qwen-dev`` processes, driven over its control API.
"""

from __future__ import annotations

import asyncio
import os
import select
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from .cli import cli_args
from .http11 import JsonDict
from .plans import ChaosMix, Outcome

REPO_ROOT = Path(__file__).resolve().parent.parent


class FaultServerProcess:
    """Runs ``python -m faultserver`` in a child process (for benchmarks).

    ``with FaultServerProcess(rpm=600) as proc:`` or ``async with ...``; exposes ``port``,
    ``base_url`` and control helpers that talk to ``/_control/*`` over HTTP.
    """

    def __init__(
        self,
        *,
        text: str | None = None,
        model: str | None = None,
        rpm: int | None = None,
        tpm: int | None = None,
        default: Outcome | None = None,
        chaos: ChaosMix | None = None,
        require_api_key: str | None = None,
        startup_timeout: float = 15.0,
    ) -> None:
        self._args = cli_args(text, model, rpm, tpm, default, chaos, require_api_key)
        self._startup_timeout = startup_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def control_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/_control"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self) -> None:
        if self._proc is not None:
            raise RuntimeError("FaultServerProcess already started")
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        command = [sys.executable, "-m", "faultserver", "--port", "0", *self._args]
        self._proc = subprocess.Popen(
            command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=self._stderr
        )
        try:
            self.port = self._wait_ready(self._proc)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, proc: subprocess.Popen[bytes]) -> int:
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        deadline = time.monotonic() + self._startup_timeout
        buffer = b""
        while b"\n" not in buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"fault server not READY after {self._startup_timeout}s")
            readable, _, _ = select.select([fd], [], [], remaining)
            if readable:
                data = os.read(fd, 4096)
                if not data:
                    raise RuntimeError(f"fault server exited early: {self._stderr_text()}")
                buffer += data
        word, _, port = buffer.split(b"\n", 1)[0].decode().partition(" ")
        if word != "READY":
            raise RuntimeError(f"unexpected fault server output {buffer!r}")
        return int(port)

    def _stderr_text(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 5 s; idempotent."""
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def __enter__(self) -> FaultServerProcess:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> FaultServerProcess:
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)

    # -- control over HTTP (blocking; fine from async tests since the server is elsewhere)

    def script(self, *outcomes: Outcome | str | Mapping[str, Any]) -> None:
        self._control("POST", "script", [Outcome.from_json(o).to_json() for o in outcomes])

    def reset(self) -> None:
        self._control("POST", "reset")

    def requests(self) -> list[JsonDict]:
        result: list[JsonDict] = self._control("GET", "requests")
        return result

    def stats(self) -> JsonDict:
        result: JsonDict = self._control("GET", "stats")
        return result

    def configure(self, **changes: Any) -> JsonDict:
        """Keys: default (Outcome or dict), chaos (ChaosMix, dict or None), rpm, tpm, text."""
        if isinstance(changes.get("default"), Outcome):
            changes["default"] = changes["default"].to_json()
        if isinstance(changes.get("chaos"), ChaosMix):
            changes["chaos"] = changes["chaos"].to_json()
        result: JsonDict = self._control("POST", "config", changes)
        return result

    def _control(self, method: str, name: str, payload: Any = None) -> Any:
        import httpx  # only the helper needs it; keeps the server process lean

        response = httpx.request(method, f"{self.control_url}/{name}", json=payload, timeout=10)
        response.raise_for_status()
        return response.json()
