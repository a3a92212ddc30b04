#!/usr/bin/env python
"""Requests per second of the fault server, against a bare asyncio server in the same run.

    .venv/bin/python scripts/bench_fault_server.py [--requests 2000] [--rounds 9]

Both servers run in their own processes and are driven by the same lean client (raw
asyncio streams, keep-alive), so the figure is the server's own cost. The baseline
reads each request (head and Content-Length body) and writes back, in one write, the
very bytes the fault server answered that request with. Scenarios: a plain chat
completion on one connection, the same on 8 connections at once, and a streamed one
(12 SSE events) on one connection. Rounds alternate the two servers; reported are
the median requests/s of each and the median over rounds of the ratio fault server /
baseline of adjacent runs (the machine's drift hits both sides of a pair alike).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import asyncio
import json
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from faultserver import FaultServerProcess

SCRIPT = Path(__file__).resolve()
MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Say hello to the benchmark."},
]


@dataclass(frozen=True)
class Scenario:
    name: str
    stream: bool
    connections: int

    def request(self, port: int) -> bytes:
        body = json.dumps({"model": "fault-model", "messages": MESSAGES, "stream": self.stream})
        head = (
            f"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n"
            f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body.encode()


SCENARIOS = [
    Scenario("plain, 1 connection", stream=False, connections=1),
    Scenario("plain, 8 connections", stream=False, connections=8),
    Scenario("stream, 1 connection", stream=True, connections=1),
]


# --- the client -------------------------------------------------------------------------


async def read_response(reader: asyncio.StreamReader) -> bytes:
    """One whole HTTP/1.1 response, raw: a Content-Length body or a chunked one."""
    head = await reader.readuntil(b"\r\n\r\n")
    lowered = head.lower()
    if b"transfer-encoding: chunked" not in lowered:
        length = int(lowered.split(b"content-length: ", 1)[1].split(b"\r\n", 1)[0])
        return head + await reader.readexactly(length)
    parts = [head]
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.strip(), 16)
        parts += [size_line, await reader.readexactly(size + 2)]
        if size == 0:
            return b"".join(parts)


async def drive(port: int, request: bytes, count: int) -> None:
    """``count`` requests one after the other on one keep-alive connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for _ in range(count):
            writer.write(request)
            await read_response(reader)
    finally:
        writer.close()
        await writer.wait_closed()


async def requests_per_second(port: int, scenario: Scenario, total: int) -> float:
    request = scenario.request(port)
    each = total // scenario.connections
    await drive(port, request, 10)  # warm up
    started = time.perf_counter()
    await asyncio.gather(*(drive(port, request, each) for _ in range(scenario.connections)))
    return each * scenario.connections / (time.perf_counter() - started)


async def one_answer(port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        return await read_response(reader)
    finally:
        writer.close()
        await writer.wait_closed()


# --- the baseline server ----------------------------------------------------------------


async def serve_baseline(answer: bytes) -> None:
    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length: ", 1)[1].split(b"\r\n", 1)[0])
                await reader.readexactly(length)
                writer.write(answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    print(f"READY {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


@contextmanager
def baseline_process(answer: bytes) -> Iterator[int]:
    with tempfile.NamedTemporaryFile(suffix=".http") as canned:
        canned.write(answer)
        canned.flush()
        command = [sys.executable, str(SCRIPT), "--serve-baseline", canned.name]
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None
            word, _, port = proc.stdout.readline().partition(" ")
            if word != "READY":
                raise RuntimeError("the baseline server did not start")
            yield int(port)
        finally:
            proc.terminate()
            proc.wait(timeout=5)


# --- the run ----------------------------------------------------------------------------


@dataclass
class Result:
    scenario: Scenario
    fault: list[float]
    baseline: list[float]

    @property
    def ratio(self) -> float:
        """Median over rounds of fault server / baseline requests/s."""
        return statistics.median(f / b for f, b in zip(self.fault, self.baseline, strict=True))


def measure(scenario: Scenario, total: int, rounds: int) -> Result:
    result = Result(scenario, [], [])
    with FaultServerProcess() as fault:
        answer = asyncio.run(one_answer(fault.port, scenario.request(fault.port)))
        with baseline_process(answer) as baseline_port:
            for _ in range(rounds):
                result.fault.append(asyncio.run(requests_per_second(fault.port, scenario, total)))
                result.baseline.append(
                    asyncio.run(requests_per_second(baseline_port, scenario, total))
                )
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=2000, help="per round and scenario")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--serve-baseline", metavar="FILE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_baseline:
        asyncio.run(serve_baseline(Path(args.serve_baseline).read_bytes()))
        return 0
    print(f"{args.requests} requests per round, {args.rounds} rounds; medians")
    print(f"{'scenario':<24} {'fault server':>14} {'baseline':>14} {'ratio':>7}")
    for scenario in SCENARIOS:
        result = measure(scenario, args.requests, args.rounds)
        fault, baseline = statistics.median(result.fault), statistics.median(result.baseline)
        print(
            f"{scenario.name:<24} {fault:>10,.0f} r/s {baseline:>10,.0f} r/s {result.ratio:>6.2f}x"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
