"""The stdio transport: linear, bounded framing, and the server's whole process group
ended on the way out."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from mcp import ClientSession

from qwen_dev_cli.config.mcp_servers import McpServerSettings
from qwen_dev_cli.mcp.server import McpServer, ServerFailed
from qwen_dev_cli.mcp.stdio import stdio_transport

pytestmark = pytest.mark.slow  # a real server process

SERVER = str(Path(__file__).with_name("stdio_server.py"))


def ended(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True
    return "zombie" in status.split("State:")[1].split("\n")[0]


async def test_a_message_over_the_limit_is_skipped_and_its_request_told(
    tmp_path: Path,
) -> None:
    problems: list[str] = []
    with (tmp_path / "err.log").open("wb") as errlog:
        async with (
            stdio_transport(
                sys.executable,
                [SERVER],
                env={"PATH": os.environ["PATH"]},
                cwd=None,
                errlog=errlog,
                on_problem=problems.append,
                max_message=100_000,
            ) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            # The text comes twice (content, and structured content): about 40 KB.
            small = await session.call_tool("big", {"size": 20_000})
            assert small.content[0].text.endswith("TAIL")  # type: ignore[union-attr]  # text here
            with pytest.raises(Exception, match="over 100,000 bytes and was not read"):
                await session.call_tool("big", {"size": 200_000})
            after = await session.call_tool("echo", {"message": "still connected"})
            assert after.content[0].text == "echo: still connected"  # type: ignore[union-attr]  # text
    assert problems == ["its answer was over 100,000 bytes and was not read"]


async def test_what_the_server_started_ends_with_it(tmp_path: Path) -> None:
    server = McpServer(
        McpServerSettings("t", command=sys.executable, args=(SERVER,)),
        tmp_path / "t.log",
        os.environ,
    )
    server.start()
    await server.wait_ready()
    child = int((await server.call("spawn", {})).text)
    assert not ended(child)
    await server.stop()
    for _ in range(200):  # up to 10 s for the signals to land
        if ended(child):
            break
        await anyio.sleep(0.05)
    assert ended(child)
    with pytest.raises(ServerFailed, match="not available"):
        await server.call("echo", {"message": "x"})


async def test_a_server_offering_thousands_of_large_tools_is_bounded(tmp_path: Path) -> None:
    from qwen_dev_cli.mcp import McpServers
    from qwen_dev_cli.mcp.server import MAX_TOOLS
    from qwen_dev_cli.mcp.servers import MAX_TOTAL_SPECS

    told: list[str] = []
    settings = McpServerSettings("many", command=sys.executable, args=(SERVER, "many", "1000"))
    servers = McpServers([settings], tmp_path, os.environ, told.append)
    try:
        await servers.wait_ready()
        server = servers.servers[0]
        assert server.state == "ready", server.error
        assert len(server.tools) == MAX_TOOLS
        offered = servers.sources()[0].tools()
        size = sum(len(json.dumps(tool.spec(), ensure_ascii=False)) for tool in offered)
        assert 0 < size <= MAX_TOTAL_SPECS
        assert len(told) == 1
        assert f"{MAX_TOOLS - len(offered):,} tools left out" in told[0]
    finally:
        await servers.aclose()


async def test_a_server_writing_stderr_without_end_keeps_its_log_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from qwen_dev_cli.mcp import server as server_module

    limit = 1 << 20
    monkeypatch.setattr(server_module, "MAX_LOG_BYTES", limit)
    log = tmp_path / "noisy.log"
    settings = McpServerSettings("noisy", command=sys.executable, args=(SERVER, "noisy", "40"))
    server = McpServer(settings, log, os.environ)
    server.start()
    try:
        await server.wait_ready()
        assert server.state == "ready", server.error
        for _ in range(600):  # until the server has written its 40 MiB (within a minute)
            if b"noise done" in log.read_bytes():
                break
            await asyncio.sleep(0.1)
        assert b"noise done" in log.read_bytes()
        assert log.stat().st_size <= limit
        assert log.with_name("noisy.log.1").stat().st_size <= limit
        # Each file set aside in the session leaves a line saying output was cut.
        note = log.read_bytes().split(b"\n", 1)[0]
        assert note.startswith(b"[qwen-dev "), note[:80]
        assert b"stderr passed 1,048,576 bytes" in note
        assert b"is in noisy.log.1, anything older was cut]" in note
        result = await server.call("echo", {"message": "still here"})
        assert result.text == "echo: still here"
    finally:
        await server.stop()


RAW = str(Path(__file__).with_name("raw_server.py"))


@pytest.mark.parametrize(
    ("tool", "said"),
    [
        ("deep", "its answer was nested too deep to read"),
        ("not_rpc", """its answer was not a JSON-RPC message: '{"jsonrpc": "2.0", "id": """),
        ("garbage", """its answer was not JSON: '{"jsonrpc": "2.0", "id": """),
        # Counting its values searched for strings again from every escaped quote to
        # the end: hours for these 400 KB, with the session's loop held all along.
        ("quoted", """its answer was not JSON: '{"jsonrpc": "2.0", "id": """),
    ],
)
async def test_an_answer_the_sdk_cannot_read_is_its_calls_error_at_once(
    tmp_path: Path, tool: str, said: str
) -> None:
    # The session only logged such a line, and the call waited its whole timeout.
    import re

    settings = McpServerSettings("raw", command=sys.executable, args=(RAW,), timeout=10.0)
    server = McpServer(settings, tmp_path / "raw.log", os.environ)
    server.start()
    try:
        await server.wait_ready()
        assert server.state == "ready", server.error
        with pytest.raises(ServerFailed, match=re.escape(f"MCP server raw: {said}")):
            await server.call(tool, {})
        assert server.state == "ready"
        assert (await server.call("echo", {})).text == "echo"
    finally:
        await server.stop()


# A client in a process of its own, so that its peak memory is this call's alone.
MEASURE = """
import asyncio, json, os, sys
from pathlib import Path
from qwen_dev_cli.config.mcp_servers import McpServerSettings
from qwen_dev_cli.mcp.server import McpServer

def peak():
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0]) * 1024

async def main():
    tool, count, log = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    settings = McpServerSettings("raw", command=sys.executable, args=(sys.argv[4],))
    server = McpServer(settings, log, os.environ)
    server.start()
    await server.wait_ready()
    await server.call("echo", {})
    before = peak()
    try:
        said = (await server.call(tool, {"count": count})).text
    except Exception as exc:
        said = str(exc)
    after = peak()
    echo = (await server.call("echo", {})).text
    await server.stop()
    print(json.dumps({"said": said, "grew": after - before, "echo": echo}))

asyncio.run(main())
"""


async def measured_call(tmp_path: Path, tool: str, count: int) -> dict[str, object]:
    """:data:`MEASURE`'s report of one call of ``tool`` (the raw server's), run in a
    process of its own off the event loop."""

    def run() -> dict[str, object]:
        done = subprocess.run(
            [sys.executable, "-c", MEASURE, tool, str(count), str(tmp_path / "r.log"), RAW],
            capture_output=True,
            timeout=300,
            check=True,
        )
        measured: dict[str, object] = json.loads(done.stdout)
        return measured

    return await anyio.to_thread.run_sync(run)


async def test_a_small_answer_of_many_values_is_not_read(tmp_path: Path) -> None:
    # 200 KB of "{}" in a tool's content: the SDK read it into 1.3 million validation
    # errors, 1.1 GB and 10 s (600 KB: 3.3 GB). Now it is refused before it is read.
    crowd = await measured_call(tmp_path, "crowd", 100_000)
    assert crowd["said"] == (
        "MCP server raw: its answer held over 20,000 JSON values and was not read"
    )
    assert isinstance(crowd["grew"], int)
    assert crowd["grew"] < 20 << 20  # bytes of peak memory the call added
    assert crowd["echo"] == "echo"  # the server goes on
    # Under the bound, a valid answer is read as before, and one the SDK refuses is
    # said in one line (its message would list every error).
    rows = await measured_call(tmp_path, "rows", 15_000)
    assert rows["said"] == "rows"
    few = await measured_call(tmp_path, "crowd", 100)
    assert (
        few["said"] == "MCP server raw: its answer was not a valid CallToolResult: 1,300 problems"
    )


@pytest.mark.parametrize(("tool", "count"), [("strings", 8_000_000), ("escapes", 16_000_000)])
async def test_counting_a_crowded_answer_takes_no_memory_of_its_own(
    tmp_path: Path, tool: str, count: int
) -> None:
    # 32 MB of a hostile server's line: its values were counted with every string
    # replaced by "" (a match and a list entry each: 8 million strings took 1.5 GB more)
    # or with a frame of the regex engine per escape (16 million escaped line breaks:
    # 2.9 GB). Counted now as it is read, nothing copied, up to one past the bound.
    measured = await measured_call(tmp_path, tool, count)
    assert measured["said"] == (
        "MCP server raw: its answer held over 20,000 JSON values and was not read"
    )
    assert isinstance(measured["grew"], int)
    # The line itself is held while it is read (32 MB, and its copy as bytes).
    assert measured["grew"] < 120 << 20, measured["grew"]  # bytes of peak memory added (64 MB)
    assert measured["echo"] == "echo"  # the server goes on
