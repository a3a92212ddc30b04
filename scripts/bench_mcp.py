#!/usr/bin/env python
"""MCP servers: what they cost the REPL's start, and what qwen-dev adds to a tool call.

    .venv/bin/python scripts/bench_mcp.py [--runs 15] [--calls 400] [--strict]

prompt: the time from spawning ``qwen-dev`` in a pseudo-terminal until its prompt is
ready (the status bar drawn), with three MCP servers configured (the npm
``server-everything`` and ``server-filesystem``, and the FastMCP test server) against
none, in alternating pairs; the median of the paired differences. Target: <= +50 ms
(the servers start in the background).

call: the same ``echo`` tool of the same FastMCP stdio server, called through
qwen-dev's client (our transport, the SDK's session, the result made text for the
model: :meth:`McpServer.call`) and directly with the SDK's own ``stdio_client`` and
``ClientSession``; alternating blocks, the median of the paired block ratios. Target:
<= 1.2x.

http-call: the same for the FastMCP streamable-HTTP test server (a process of its own,
``tests/mcp/http_server.py``) and its ``shout``: qwen-dev's client (its guarded
transport: bounds, retries, breaker) against the SDK's ``streamable_http_client``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import asyncio
import json
import os
import re
import statistics
import tempfile
import time

import pexpect

from faultserver import FaultServerProcess

ROOT = Path(__file__).resolve().parent.parent
SERVER = ROOT / "tests" / "mcp" / "stdio_server.py"
NPM = ROOT / ".mcp-servers" / "node_modules"
EVERYTHING = NPM / "@modelcontextprotocol" / "server-everything" / "dist" / "index.js"
FILESYSTEM = NPM / ".bin" / "mcp-server-filesystem"
CPR = "\x1b[6n"
#: Where the SDK's client sends its server's stderr (each request is logged there).
DEVNULL = open(os.devnull, "w")  # noqa: SIM115  # open for the whole run, by design
PROMPT_TARGET_MS = 50.0
CALL_TARGET = 1.2


def config(srv: FaultServerProcess, folder: Path, servers: bool) -> Path:
    text = f"""
provider_order = ["lab"]

[providers.lab]
base_url = "{srv.base_url}"
model = "fault-model"
"""
    if servers:
        text += f"""
[mcp.servers.everything]
command = "node"
args = ["{EVERYTHING}", "stdio"]

[mcp.servers.files]
command = "{FILESYSTEM}"
args = ["{folder}"]

[mcp.servers.test]
command = "{sys.executable}"
args = ["{SERVER}"]
"""
    path = folder / ("three.toml" if servers else "none.toml")
    path.write_text(text, encoding="utf-8")
    return path


def prompt_ready(path: Path, workspace: Path, home: Path) -> float:
    """Seconds from spawn until the status bar is drawn."""
    env = {**os.environ, "TERM": "xterm-256color", "QWEN_DEV_HOME": str(home)}
    began = time.perf_counter()
    child = pexpect.spawn(
        sys.executable,
        ["-m", "qwen_dev_cli", "--config", str(path)],
        cwd=str(workspace),
        env=env,
        dimensions=(40, 160),
        encoding="utf-8",
        timeout=60,
    )
    while child.expect(["lab CLOSED", re.escape(CPR)]) == 1:
        child.send("\x1b[1;1R")
    took = time.perf_counter() - began
    child.send("\x04")
    while child.expect([pexpect.EOF, re.escape(CPR)]) == 1:
        child.send("\x1b[1;1R")
    child.close()
    return took


def bench_prompt(runs: int) -> dict[str, float]:
    with FaultServerProcess() as srv, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        home = folder / "home"
        none, three = config(srv, folder, False), config(srv, folder, True)
        prompt_ready(none, folder, home)  # warm-up: bytecode, disk cache
        prompt_ready(three, folder, home)
        without: list[float] = []
        with_servers: list[float] = []
        for index in range(runs):
            order = [(none, without), (three, with_servers)]
            for path, into in order if index % 2 == 0 else order[::-1]:
                into.append(prompt_ready(path, folder, home))
        diffs = [(b - a) * 1000 for a, b in zip(without, with_servers, strict=True)]
    return {
        "none_ms": statistics.median(without) * 1000,
        "three_ms": statistics.median(with_servers) * 1000,
        "added_ms": statistics.median(diffs),
    }


async def through_qwen_dev(calls: int, blocks: int) -> list[float]:
    from qwen_dev_cli.config.mcp_servers import McpServerSettings
    from qwen_dev_cli.mcp.server import McpServer

    with tempfile.TemporaryDirectory() as tmp:
        server = McpServer(
            McpServerSettings("t", command=sys.executable, args=(str(SERVER),)),
            Path(tmp) / "t.log",
            os.environ,
        )
        server.start()
        await server.wait_ready()
        try:
            times = []
            for _ in range(blocks):
                began = time.perf_counter()
                for _ in range(calls):
                    result = await server.call("echo", {"message": "hi"})
                    assert result.text == "echo: hi"
                times.append(time.perf_counter() - began)
            return times
        finally:
            await server.stop()


async def through_sdk(calls: int, blocks: int) -> list[float]:
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    params = StdioServerParameters(command=sys.executable, args=[str(SERVER)])
    async with (
        stdio_client(params, errlog=DEVNULL) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        times = []
        for _ in range(blocks):
            began = time.perf_counter()
            for _ in range(calls):
                result = await session.call_tool("echo", {"message": "hi"})
                assert result.content[0].text == "echo: hi"  # type: ignore[union-attr]  # SDK union; echo is text
            times.append(time.perf_counter() - began)
        return times


async def http_through_qwen_dev(url: str, calls: int) -> float:
    from qwen_dev_cli.config.mcp_servers import McpServerSettings
    from qwen_dev_cli.mcp.server import McpServer

    with tempfile.TemporaryDirectory() as tmp:
        server = McpServer(McpServerSettings("w", url=url), Path(tmp) / "w.log", os.environ)
        server.start()
        await server.wait_ready()
        try:
            began = time.perf_counter()
            for _ in range(calls):
                result = await server.call("shout", {"text": "hi"})
                assert result.text == "HI"
            return time.perf_counter() - began
        finally:
            await server.stop()


async def http_through_sdk(url: str, calls: int) -> float:
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async with (
        streamable_http_client(url) as (read, write, _),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        began = time.perf_counter()
        for _ in range(calls):
            result = await session.call_tool("shout", {"text": "hi"})
            assert result.content[0].text == "HI"  # type: ignore[union-attr]  # SDK union; shout is text
        return time.perf_counter() - began


def bench_http_call(calls: int, blocks: int = 8) -> dict[str, float]:
    import socket
    import subprocess

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/mcp"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.mcp.http_server", str(port)],
        cwd=ROOT,
        env=env,
        stderr=subprocess.DEVNULL,
    )
    try:
        import httpx

        for _ in range(300):
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        per_block = max(1, calls // blocks)
        asyncio.run(http_through_qwen_dev(url, 10))  # warm-up
        asyncio.run(http_through_sdk(url, 10))
        ratios, ours_all, sdk_all = [], [], []
        for index in range(blocks):
            pair = [("ours", http_through_qwen_dev), ("sdk", http_through_sdk)]
            got: dict[str, float] = {}
            for name, run in pair if index % 2 == 0 else pair[::-1]:
                got[name] = asyncio.run(run(url, per_block)) / per_block
            ours_all.append(got["ours"])
            sdk_all.append(got["sdk"])
            ratios.append(got["ours"] / got["sdk"])
    finally:
        process.kill()
        process.wait()
    return {
        "ours_us": statistics.median(ours_all) * 1e6,
        "sdk_us": statistics.median(sdk_all) * 1e6,
        "ratio": statistics.median(ratios),
    }


def bench_call(calls: int, blocks: int = 8) -> dict[str, float]:
    per_block = max(1, calls // blocks)
    asyncio.run(through_qwen_dev(20, 1))  # warm-up: imports, the server's bytecode
    asyncio.run(through_sdk(20, 1))
    ratios = []
    ours_all: list[float] = []
    sdk_all: list[float] = []
    for index in range(blocks):
        pair = [("ours", through_qwen_dev), ("sdk", through_sdk)]
        got: dict[str, float] = {}
        for name, run in pair if index % 2 == 0 else pair[::-1]:
            got[name] = asyncio.run(run(per_block, 1))[0] / per_block
        ours_all.append(got["ours"])
        sdk_all.append(got["sdk"])
        ratios.append(got["ours"] / got["sdk"])
    return {
        "ours_us": statistics.median(ours_all) * 1e6,
        "sdk_us": statistics.median(sdk_all) * 1e6,
        "ratio": statistics.median(ratios),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=15, help="pairs of REPL starts")
    parser.add_argument("--calls", type=int, default=400, help="tool calls per client")
    parser.add_argument("--only", choices=("prompt", "call", "http-call"))
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--json", type=Path, help="write every number here")
    args = parser.parse_args()
    missed = False
    results: dict[str, dict[str, float]] = {}
    if args.only in (None, "prompt"):
        prompt = results["prompt"] = bench_prompt(args.runs)
        ok = prompt["added_ms"] <= PROMPT_TARGET_MS
        missed |= not ok
        print(
            f"prompt ready: none {prompt['none_ms']:.0f} ms, three servers "
            f"{prompt['three_ms']:.0f} ms; median paired difference "
            f"{prompt['added_ms']:+.1f} ms (<= +{PROMPT_TARGET_MS:.0f}) "
            f"{'ok' if ok else 'MISSED'}"
        )
    if args.only in (None, "call"):
        call = results["call"] = bench_call(args.calls)
        ok = call["ratio"] <= CALL_TARGET
        missed |= not ok
        print(
            f"tool call: qwen-dev {call['ours_us']:.0f} us, SDK {call['sdk_us']:.0f} us; "
            f"median paired ratio {call['ratio']:.3f}x (<= {CALL_TARGET}x) "
            f"{'ok' if ok else 'MISSED'}"
        )
    if args.only in (None, "http-call"):
        http = results["http_call"] = bench_http_call(args.calls // 2)
        ok = http["ratio"] <= CALL_TARGET
        missed |= not ok
        print(
            f"HTTP tool call: qwen-dev {http['ours_us']:.0f} us, SDK {http['sdk_us']:.0f} us; "
            f"median paired ratio {http['ratio']:.3f}x (<= {CALL_TARGET}x) "
            f"{'ok' if ok else 'MISSED'}"
        )
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 1 if missed and args.strict else 0


if __name__ == "__main__":
    raise SystemExit(main())
