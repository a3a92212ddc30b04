"""An HTTP server that answers 500, sends an answer without end, dies mid-call or stops
taking connections: a call fails with the reason (sent again only when the server says
the tool is read-only or idempotent), nothing unbounded is read, the circuit breaker
opens and closes, and the session goes on."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from qwen_dev_cli.config.mcp_servers import McpServerSettings
from qwen_dev_cli.mcp import McpServers, breaker
from qwen_dev_cli.mcp import http as guarded
from qwen_dev_cli.mcp import server as mcp_server
from qwen_dev_cli.mcp.server import McpServer, ServerFailed

from .http_server import (
    CROWD_EVENT,
    CROWD_JSON,
    CROWD_LINES,
    DEEP_EVENT,
    DEEP_JSON,
    DRIP,
    DRIP_JSON,
    ENDLESS_EVENT,
    ENDLESS_JSON,
    GZIP,
    HUGE_LENGTH,
    MANY_LINES,
    NOT_RPC,
    STATUS_500,
    Faults,
    serving,
)

LIMIT = 1 << 20


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mcp_server, "CALL_RETRY_DELAYS", (0.05,))
    monkeypatch.setattr(guarded, "RETRY_DELAYS", (0.05,))


@pytest.fixture
def faults() -> Faults:
    return Faults()


@pytest.fixture
async def web(faults: Faults, tmp_path: Path) -> AsyncIterator[McpServer]:
    with serving(faults) as url:
        servers = McpServers(
            [McpServerSettings("web", url=url)], tmp_path / "logs", os.environ, print
        )
        server = servers.servers[0]
        server.max_message = LIMIT
        await servers.wait_ready()
        assert server.state == "ready", server.error
        try:
            yield server
        finally:
            await servers.aclose()


async def test_a_read_only_or_idempotent_call_is_sent_again_after_a_500(
    web: McpServer, faults: Faults
) -> None:
    faults.next = [STATUS_500]
    assert (await web.call("look", {})).text == "1"
    faults.next = [STATUS_500, STATUS_500]
    assert (await web.call("put", {})).text == "1"
    assert faults.calls == 5


async def test_any_other_call_is_sent_once_and_the_session_goes_on(
    web: McpServer, faults: Faults
) -> None:
    faults.next = [STATUS_500]
    with pytest.raises(ServerFailed, match="HTTP 500 Internal Server Error"):
        await web.call("append", {})
    assert faults.calls == 1
    assert "append" not in faults.counts
    assert (await web.call("append", {})).text == "1"
    assert web.state == "ready"


async def test_a_read_only_call_gives_up_after_its_retries(web: McpServer, faults: Faults) -> None:
    faults.next = [STATUS_500] * 3
    with pytest.raises(ServerFailed, match=r"500 Internal Server Error \(tried 3 times\)"):
        await web.call("look", {})
    assert faults.calls == 3
    assert (await web.call("look", {})).text == "1"


@pytest.mark.parametrize("fault", [ENDLESS_JSON, ENDLESS_EVENT, HUGE_LENGTH])
async def test_an_answer_without_end_is_not_read_past_the_limit(
    web: McpServer, faults: Faults, fault: str
) -> None:
    faults.next = [fault]
    with pytest.raises(ServerFailed, match=f"over {LIMIT:,} bytes and was not read"):
        await web.call("look", {})  # read-only, but a retry would not mend this
    assert faults.calls == 1
    # What the server could hand over before the client left: the limit and the
    # socket buffers, never the gigabyte it meant to send.
    assert faults.sent < 64 * LIMIT
    assert (await web.call("shout", {"text": "still here"})).text == "STILL HERE"


@pytest.mark.parametrize(
    ("fault", "said"),
    [
        (DEEP_JSON, "its answer was nested too deep to read"),
        (DEEP_EVENT, "its answer was nested too deep to read"),
        # 200 KB that the SDK read into 1.3 million validation errors (over 1 GB).
        (CROWD_JSON, "its answer held over 20,000 JSON values and was not read"),
        (CROWD_EVENT, "its answer held over 20,000 JSON values and was not read"),
        (NOT_RPC, 'its answer was not a JSON-RPC message: \'{"jsonrpc": "2.0", "id": '),
    ],
)
async def test_an_answer_the_sdk_cannot_read_is_its_calls_error_at_once(
    tmp_path: Path, fault: str, said: str
) -> None:
    # Nested 5,000 deep, the guard's own JSON check raised RecursionError: the
    # connection was lost and the server failed for the session. JSON that is no
    # JSON-RPC answer (or nested deeper than the SDK reads) left the call waiting.
    faults = Faults(next=[fault])
    with serving(faults) as url:
        settings = McpServerSettings("web", url=url, timeout=10.0)
        servers = McpServers([settings], tmp_path / "logs", os.environ, print)
        server = servers.servers[0]
        try:
            await servers.wait_ready()
            with pytest.raises(ServerFailed, match=re.escape(said)):
                await server.call("append", {})
            assert server.state == "ready"
            assert (await server.call("shout", {"text": "after"})).text == "AFTER"
        finally:
            await servers.aclose()


async def test_on_an_sse_server_an_answer_too_long_is_skipped_and_the_stream_goes_on(
    tmp_path: Path,
) -> None:
    with serving(Faults(), sse=True) as url:
        settings = McpServerSettings("old", url=url, transport="sse")
        servers = McpServers([settings], tmp_path / "logs", os.environ, print)
        server = servers.servers[0]
        server.max_message = LIMIT
        try:
            await servers.wait_ready()
            assert server.state == "ready", server.error
            assert (await server.call("big", {"size": 1000})).text == "x" * 1000
            with pytest.raises(ServerFailed, match=f"over {LIMIT:,} bytes"):
                await server.call("big", {"size": 4 * LIMIT})
            assert (await server.call("shout", {"text": "on"})).text == "ON"
        finally:
            await servers.aclose()


async def test_on_an_sse_server_a_post_answered_without_end_holds_nothing(
    tmp_path: Path,
) -> None:
    # The old protocol answers on the GET stream; the SDK reads each POST's body whole
    # to drop it, one POST at a time: an endless body was read for the whole session,
    # and every later message of that server waited behind it.
    faults = Faults(next=[ENDLESS_JSON])
    with serving(faults, sse=True) as url:
        settings = McpServerSettings("old", url=url, transport="sse", timeout=2.0)
        servers = McpServers([settings], tmp_path / "logs", os.environ, print)
        server = servers.servers[0]
        server.max_message = LIMIT
        try:
            await servers.wait_ready()
            assert server.state == "ready", server.error
            # (The fault stands in for the server: no answer ever comes on the stream.)
            with pytest.raises(ServerFailed, match="no answer or progress within 2 s"):
                await server.call("look", {})
            assert (await server.call("shout", {"text": "on"})).text == "ON"
            assert faults.calls == 2
            assert faults.sent < 64 * LIMIT
        finally:
            await servers.aclose()


@pytest.mark.parametrize("fault", [ENDLESS_JSON, DRIP_JSON])
async def test_a_session_end_answered_without_end_does_not_hold_the_exit(
    tmp_path: Path, fault: str
) -> None:
    # The SDK ends a session with a DELETE whose body it reads whole, on the way out:
    # an endless (or dripping) one held the exit.
    faults = Faults(delete=fault)
    with serving(faults, stateful=True) as url:
        servers = McpServers(
            [McpServerSettings("web", url=url)], tmp_path / "logs", os.environ, print
        )
        server = servers.servers[0]
        server.max_message = LIMIT
        try:
            await servers.wait_ready()
            assert server.state == "ready", server.error
            assert (await server.call("shout", {"text": "hi"})).text == "HI"
        finally:
            # A guard against a hang (the bound is CLOSE_WAIT), not a measurement.
            async with asyncio.timeout(60):
                await servers.aclose()
        assert servers.report_of("web")["state"] == "stopped"
        assert 0 < faults.sent < 64 * LIMIT


async def test_a_long_tool_list_may_hold_more_values_than_an_answer(tmp_path: Path) -> None:
    # 1,000 tools list about 30,000 JSON values in one page: over what any other
    # answer may hold, under the tool list's own bound (the first 500 tools kept).
    from qwen_dev_cli.mcp.server import MAX_TOOLS

    with serving(Faults(more_tools=1000)) as url:
        servers = McpServers([McpServerSettings("wide", url=url)], tmp_path, os.environ, print)
        server = servers.servers[0]
        try:
            await servers.wait_ready()
            assert server.state == "ready", server.error
            assert len(server.tools) == MAX_TOOLS
        finally:
            await servers.aclose()


async def test_a_compressed_answer_is_refused_uninflated(web: McpServer, faults: Faults) -> None:
    faults.next = [GZIP]
    with pytest.raises(ServerFailed, match="compressed"):
        await web.call("look", {})
    assert (await web.call("shout", {"text": "ok"})).text == "OK"


@pytest.mark.parametrize("fault", [DRIP, DRIP_JSON])
async def test_a_slow_drip_is_cut_by_the_call_timeout(tmp_path: Path, fault: str) -> None:
    faults = Faults(next=[fault])
    with serving(faults) as url:
        settings = McpServerSettings("web", url=url, timeout=1.0)
        servers = McpServers([settings], tmp_path / "logs", os.environ, print)
        server = servers.servers[0]
        try:
            await servers.wait_ready()
            with pytest.raises(ServerFailed, match=r"no answer or|no whole|did not arrive"):
                await server.call("append", {})
            # The SDK stops waiting but would read the stream on; the guard ends it, so
            # the server sees the client leave and the connection is not held.
            await asyncio.sleep(0.5)
            sent = faults.sent
            await asyncio.sleep(0.5)
            assert faults.sent == sent < 100
            assert (await server.call("shout", {"text": "next"})).text == "NEXT"
        finally:
            await servers.aclose()


async def test_progress_without_end_is_bounded_too(tmp_path: Path) -> None:
    with serving(Faults()) as url:
        # (0.6 s: room for a loaded machine between two progress notifications; at 0.3 s
        # one gap too long under load ended the call at its timeout instead.)
        settings = McpServerSettings("web", url=url, timeout=0.6)
        servers = McpServers([settings], tmp_path / "logs", os.environ, print)
        server = servers.servers[0]
        try:
            await servers.wait_ready()
            # Progress every 0.1 s for 100 s: cut at MAX_CALL_TIMEOUTS times the timeout.
            with pytest.raises(ServerFailed, match="Timed out"):
                await server.call("slow", {"steps": 1000, "pause": 0.1})
        finally:
            await servers.aclose()


async def test_a_progress_notification_restarts_the_call_timeout(tmp_path: Path) -> None:
    with serving(Faults()) as url:
        settings = McpServerSettings("web", url=url, timeout=1.5)
        servers = McpServers([settings], tmp_path / "logs", os.environ, print)
        server = servers.servers[0]
        try:
            await servers.wait_ready()
            # 2 s in all, never 1.5 s without progress.
            done = await server.call("slow", {"steps": 5, "pause": 0.4})
            assert done.text == "done after 5 steps"
            with pytest.raises(ServerFailed, match=r"no answer or progress within 1\.5 s"):
                await server.call("slow", {"steps": 1, "pause": 2.5})
        finally:
            await servers.aclose()


# --- events split anywhere ----------------------------------------------------------------


class Chunks(httpx.AsyncByteStream):
    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk


async def read_events(chunks: list[bytes], request_id: object, limit: int) -> bytes:
    stream = guarded._Events(Chunks(chunks), request_id, limit, breaker.Breaker())
    return b"".join([piece async for piece in stream])


async def test_events_pass_whole_however_the_chunks_fall() -> None:
    text = b"event: message\r\ndata: one\r\n\r\nevent: message\ndata: two\n\n"
    for size in (1, 2, 3, 7):
        chunks = [text[i : i + size] for i in range(0, len(text), size)]
        assert await read_events(chunks, None, 100) == text


async def test_on_the_long_lived_stream_an_event_too_long_is_skipped_and_answered() -> None:
    huge = b'event: message\ndata: {"jsonrpc": "2.0", "id": 7, "result": "' + b"x" * 5000
    after = b'event: message\ndata: {"jsonrpc": "2.0", "method": "ping"}\n\n'
    chunks = [huge[i : i + 512] for i in range(0, len(huge), 512)] + [b'"}\n\n', after]
    out = await read_events(chunks, None, 1000)
    assert b"x" * 100 not in out
    assert b'"id": 7' in out
    assert b"over 1,000 bytes" in out
    assert out.endswith(after)


async def test_an_event_skipped_ends_where_it_ends_however_the_chunks_fall() -> None:
    # The end of the event being skipped ("\n\n", "\r\n\r\n") split between two chunks
    # was missed (what had been read was dropped whole), and the next event, maybe the
    # answer to another call, was skipped with it: that call waited for its timeout.
    huge = b'event: message\ndata: {"jsonrpc": "2.0", "id": 7, "result": "' + b"x" * 5000
    after = b'event: message\ndata: {"jsonrpc": "2.0", "id": 8, "result": {}}\n\n'
    for end in ([b'"}\n', b"\n"], [b'"}\r', b"\n\r\n"], [b'"}\r\n\r', b"\n"]):
        chunks = [huge[i : i + 512] for i in range(0, len(huge), 512)] + end + [after]
        out = await read_events(chunks, None, 1000)
        assert b"over 1,000 bytes" in out
        assert out.endswith(after)


# --- a server process that dies, refuses, and comes back -----------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def process(port: int) -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        proc.kill()
        proc.wait()


def start(port: int, started: list[subprocess.Popen[bytes]], *how: str) -> None:
    root = Path(__file__).parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.mcp.http_server", str(port), *how], env=env, cwd=root
    )
    started.append(proc)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/mcp", timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise AssertionError("the server did not start")


@pytest.mark.slow
async def test_a_server_that_dies_refuses_and_comes_back(
    port: int,
    process: list[subprocess.Popen[bytes]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(breaker, "BREAKER_COOLDOWN", 3.0)  # (room for a slow machine)
    await asyncio.to_thread(start, port, process)
    url = f"http://127.0.0.1:{port}/mcp"
    servers = McpServers([McpServerSettings("proc", url=url)], tmp_path / "logs", os.environ, print)
    server = servers.servers[0]
    try:
        await servers.wait_ready()
        assert server.state == "ready", server.error
        assert (await server.call("look", {})).text == "1"

        # Dies mid-call: said, not sent again (die is not read-only).
        with pytest.raises(ServerFailed, match="connection was lost"):
            await server.call("die", {})
        assert process[0].wait(10) == 3

        # Refuses connections: each attempt tried three times, the call (read-only)
        # three times; the breaker opens on the way.
        with pytest.raises(ServerFailed, match=r"could not connect|circuit breaker"):
            await server.call("look", {})
        assert server.breaker.failures >= breaker.BREAKER_THRESHOLD
        # /mcp and `mcp list` show it open.
        shown = servers.report_of("proc")["breaker"]
        assert shown["state"] == "open"
        assert shown["failures"] >= breaker.BREAKER_THRESHOLD
        assert 0 < shown["retry_in_s"] <= 3.0
        assert f"open ({shown['failures']} failures in a row; tried again in" in table_text(servers)

        # Open: refused at once, without a connection attempt.
        with socket.socket() as listener:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", port))
            listener.listen(8)
            with pytest.raises(ServerFailed, match="circuit breaker"):
                await server.call("shout", {"text": "x"})
            listener.settimeout(0.3)
            with pytest.raises(TimeoutError):
                listener.accept()

        # Back: after the cool-down one request tries, and the session goes on.
        await asyncio.to_thread(start, port, process)
        await asyncio.sleep(3.0)
        assert (await server.call("shout", {"text": "back"})).text == "BACK"
        assert server.breaker.failures == 0
        assert server.state == "ready"
        closed = {"state": "closed", "failures": 0, "retry_in_s": None}
        assert servers.report_of("proc")["breaker"] == closed
    finally:
        await servers.aclose()


def table_text(servers: McpServers) -> str:
    """``/mcp``'s table as the terminal shows it."""
    import io

    from qwen_dev_cli.ui.slash import mcp_table
    from qwen_dev_cli.ui.theme import make_console

    out = io.StringIO()
    make_console(out, width=200).print(mcp_table(servers.report()))
    return out.getvalue()


@pytest.mark.slow
async def test_a_server_restarted_under_a_session_is_connected_again(
    port: int, process: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    await asyncio.to_thread(start, port, process, "stateful")
    url = f"http://127.0.0.1:{port}/mcp"
    servers = McpServers([McpServerSettings("proc", url=url)], tmp_path / "logs", os.environ, print)
    server = servers.servers[0]
    try:
        await servers.wait_ready()
        assert (await server.call("look", {})).text == "1"
        process[0].kill()
        process[0].wait()
        await asyncio.to_thread(start, port, process, "stateful")
        # The new process does not know the session (404): a new one, and the
        # read-only call sent again on it.
        assert (await server.call("look", {})).text == "1"
        assert server.restarts == 1
        assert server.state == "ready"
    finally:
        await servers.aclose()


async def test_an_event_the_sdk_reads_passes_and_one_it_cannot_is_answered() -> None:
    ok = b'event: message\ndata: {"jsonrpc": "2.0", "id": 3, "result": {"t": "\xff"}}\n\n'
    bad = b'data: {"jsonrpc": "2.0", "id": 4, "result": 5}\n\n'
    note = b'data: {"jsonrpc": "2.0", "method": "x", "params": 5}\n\n'  # not an answer
    ping = b"event: endpoint\ndata: /messages?x=1\n\n"
    out = await read_events([ok, bad, note, ping], None, 1000)
    assert out.startswith(ok)  # (not UTF-8, but the SSE parser replaces it)
    assert b'"id": 4, "error": {"code": -32097' in out
    assert b"not a JSON-RPC message" in out
    assert out.endswith(note + ping)


# A client in a process of its own, so that its peak memory is this call's alone.
MEASURE = """
import asyncio, json, os, sys
from pathlib import Path
from qwen_dev_cli.config.mcp_servers import McpServerSettings
from qwen_dev_cli.mcp import McpServers

def peak():
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0]) * 1024

async def main():
    settings = McpServerSettings("web", url=sys.argv[1], timeout=60.0)
    servers = McpServers([settings], Path(sys.argv[2]), os.environ, print)
    server = servers.servers[0]
    await servers.wait_ready()
    before = peak()
    try:
        said = (await server.call("append", {})).text
    except Exception as exc:
        said = str(exc)
    after = peak()
    shout = (await server.call("shout", {"text": "after"})).text
    await servers.aclose()
    print(json.dumps({"said": said, "grew": after - before, "shout": shout}))

asyncio.run(main())
"""


@pytest.mark.parametrize(
    ("fault", "said"),
    [
        # Refused for its values, its data lines were joined from a list of every line
        # of it: 4 million lines (36 MB) took 635 MB more. (Refused for its lines now,
        # its fields read a block of lines at a time to find the request it answers.)
        (CROWD_LINES, "its answer came in over 100,000 lines and was not read"),
        # Valid (its lines blank but the first), it reached the SDK's event parser,
        # which keeps each line as an object of its own: 4 million lines (28 MB), 424
        # MB more (72 MB now). An event of so many lines is refused.
        (MANY_LINES, "its answer came in over 100,000 lines and was not read"),
    ],
)
async def test_an_event_of_millions_of_data_lines_is_refused_in_little_memory(
    tmp_path: Path, fault: str, said: str
) -> None:
    import json

    faults = Faults(next=[fault])
    with serving(faults) as url:
        run = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-c", MEASURE, url, str(tmp_path / "logs")],
            capture_output=True,
            timeout=300,
            check=False,
        )
    assert run.returncode == 0, run.stderr[-2000:]
    measured = json.loads(run.stdout.splitlines()[-1])
    assert measured["said"] == f"MCP server web: {said}"
    assert measured["grew"] < 150 << 20, measured["grew"]  # bytes of peak memory added
    assert measured["shout"] == "AFTER"  # the session goes on
