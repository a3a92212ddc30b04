"""An MCP server over stdio for the tests, built with the SDK's FastMCP:
``python stdio_server.py [MODE]``.

Modes: ``tools`` (the default: echo, add, a result of N bytes, a failing tool, the
environment it was given, a tool with a 200-character name and one with odd
characters), ``hang`` (reads stdin and never answers initialize), ``twin`` (a second
server offering ``echo`` too), ``slow SECONDS`` (the tools, once SECONDS have passed).
"""

from __future__ import annotations

import os
import sys
import time


def serve(twin: bool) -> None:
    from mcp.server.fastmcp import FastMCP

    server = FastMCP("twin" if twin else "test")

    @server.tool()
    def echo(message: str) -> str:
        """Say the message back."""
        return f"{'twin ' if twin else ''}echo: {message}"

    if not twin:

        @server.tool()
        def add(a: int, b: int) -> str:
            """Add two integers."""
            return str(a + b)

        @server.tool()
        def big(size: int) -> str:
            """A result of ``size`` characters."""
            return "x" * (size - 4) + "TAIL"

        @server.tool()
        def fail() -> str:
            """Always fails."""
            raise RuntimeError("the tool broke on purpose")

        @server.tool()
        def environment() -> str:
            """The names of the variables this server was given."""
            return " ".join(sorted(os.environ))

        @server.tool()
        def die() -> str:
            """Ends the server in the middle of the call."""
            os._exit(3)

        @server.tool()
        def spawn() -> str:
            """Starts a long sleep in this server's process group; its pid."""
            import subprocess

            return str(subprocess.Popen(["sleep", "300"]).pid)

        @server.tool()
        def pid() -> str:
            """This server's process id."""
            return str(os.getpid())

        @server.tool(name="L" * 200)
        def long_name() -> str:
            """A tool with a 200-character name."""
            return "long"

        @server.tool(name="odd name/with.dots!")
        def odd_name() -> str:
            """A tool with characters providers refuse."""
            return "odd"

    print("test server starting", file=sys.stderr, flush=True)
    server.run("stdio")


def many(count: int) -> None:
    from mcp.server.fastmcp import FastMCP

    server = FastMCP("many")

    def tool(x: str = "") -> str:
        return x

    for index in range(count):
        server.add_tool(tool, name=f"t{index}", description="d" * 1000)
        # A large schema: one property described at length.
        registered = server._tool_manager._tools[f"t{index}"]
        registered.parameters["properties"]["x"]["description"] = "p" * 2000
    server.run("stdio")


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else "tools"
    if mode == "many":
        many(int(sys.argv[2]))
    elif mode == "noisy":
        import threading

        def noise(mebibytes: int) -> None:
            line = b"n" * 1023 + b"\n"
            for _ in range(mebibytes * 1024):
                sys.stderr.buffer.write(line)
            sys.stderr.buffer.write(b"noise done\n")
            sys.stderr.flush()

        threading.Thread(target=noise, args=(int(sys.argv[2]),), daemon=True).start()
        serve(twin=False)
    elif mode == "hang":
        sys.stdin.read()
        time.sleep(3600)
    elif mode == "slow":
        time.sleep(float(sys.argv[2]))
        serve(twin=False)
    else:
        serve(twin=mode == "twin")
