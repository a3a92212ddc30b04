"""A real ``redis-server`` for tests: its own loopback port, folder and lifetime.

``scripts/bootstrap --dev`` installs ``redis-server``; a system service it may start is
never used. Tests import the fixtures::

    from tests.redis_server import redis_server, redis_url  # noqa: F401

``redis_server`` is one server for the session; ``redis_url`` empties it (FLUSHALL,
and undoes any CONFIG SET a test made) and gives its URL. A test that stops, restarts
or starves its server should make its own :class:`RedisServer` rather than break the
shared one.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import pytest
import redis

MISSING = (
    "redis-server is not installed: run scripts/bootstrap --dev (as root it installs "
    "Debian's redis-server package; otherwise install redis-server yourself)"
)

#: For tests the fast loop runs wherever redis-server exists (the Lua/Python parity); the
#: Redis store tests use :func:`new_server` instead, which fails without one.
requires_redis_server = pytest.mark.skipif(shutil.which("redis-server") is None, reason=MISSING)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """One ``redis-server`` process on ``127.0.0.1:port`` keeping nothing on disk.

    Args:
        password: started with ``--requirepass`` when given.
        port: a free one by default; kept across :meth:`restart`.
    """

    def __init__(self, *, password: str | None = None, port: int | None = None) -> None:
        executable = shutil.which("redis-server")
        if executable is None:
            raise RuntimeError(MISSING)
        self.executable = executable
        self.password = password
        self.port = port or free_port()
        self._dir = Path(tempfile.mkdtemp(prefix="qwen-dev-redis-"))
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def client(self) -> redis.Redis:
        """A synchronous client for setting up and inspecting (not the code under test)."""
        return redis.Redis.from_url(self.url, socket_timeout=2.0)

    def start(self, timeout: float = 10.0) -> None:
        args = [
            self.executable,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self._dir),
            "--daemonize", "no",
            "--protected-mode", "no",
            "--loglevel", "warning",
        ]  # fmt: skip
        if self.password:
            args += ["--requirepass", self.password]
        log = (self._dir / "redis.log").open("ab")
        self._process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self._process.poll() is not None:
                raise RuntimeError(f"redis-server exited at start: {self.log_tail()}")
            try:
                with self.client() as client:
                    if client.ping():
                        return
            except redis.RedisError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server did not answer PING: {self.log_tail()}")
            time.sleep(0.02)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def pause(self) -> None:
        """SIGSTOP: connections are accepted by the kernel, but nothing answers."""
        assert self._process is not None
        self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self._process is not None
        self._process.send_signal(signal.SIGCONT)

    def restart(self) -> None:
        """Stop and start again on the same port: every key and loaded script is gone."""
        self.stop()
        self.start()

    def config_set(self, name: str, value: str) -> None:
        with self.client() as client:
            client.config_set(name, value)

    def flush(self) -> None:
        """Every key gone, and the settings tests may change back to their defaults."""
        with self.client() as client:
            client.config_set("maxmemory", "0")
            client.config_set("maxmemory-policy", "noeviction")
            client.flushall()
            client.script_flush()

    def log_tail(self, lines: int = 20) -> str:
        path = self._dir / "redis.log"
        if not path.exists():
            return "(no log)"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def new_server(password: str | None = None) -> RedisServer:
    """A started server, or a failed test saying how to install one (never a skip:
    CI must run these tests)."""
    try:
        server = RedisServer(password=password)
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    server.start()
    return server


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = new_server()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    if not redis_server.running:  # a test stopped it: bring it back for the next
        redis_server.start()
    redis_server.flush()
    return redis_server.url


__all__ = [
    "MISSING",
    "RedisServer",
    "free_port",
    "new_server",
    "redis_server",
    "redis_url",
    "requires_redis_server",
]
