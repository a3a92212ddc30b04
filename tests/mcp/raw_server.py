"""An MCP server over stdio written by hand, for answers no SDK server would send:
``python raw_server.py``. Its tools: ``echo`` (a plain answer), ``deep`` (an answer
nested 5,000 deep), ``not_rpc`` (JSON whose result is a number), ``garbage`` (a line
that is not JSON but names the request's id), ``crowd`` (a content list of ``count``
empty objects: a small answer that becomes millions of objects and errors), ``rows``
(structured content of ``count`` numbers, valid), ``strings`` (``count`` short strings
in structured content: many values, each a match of a pattern that blanked strings),
``escapes`` (a text of ``count`` escaped line breaks, and then many values)."""

from __future__ import annotations

import json
import sys
from typing import Any

DEPTH = 5_000


def answer(request_id: object, result: Any) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": request_id, "result": result}).encode()


def reply(request: dict[str, Any]) -> bytes | None:
    method, request_id = request.get("method"), request.get("id")
    if request_id is None:
        return None  # a notification
    if method == "initialize":
        return answer(
            request_id,
            {
                "protocolVersion": request["params"]["protocolVersion"],
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "raw", "version": "1"},
            },
        )
    if method == "tools/list":
        names = (
            "echo",
            "deep",
            "not_rpc",
            "garbage",
            "quoted",
            "crowd",
            "rows",
            "strings",
            "escapes",
        )
        tools = [{"name": name, "inputSchema": {"type": "object"}} for name in names]
        return answer(request_id, {"tools": tools})
    if method != "tools/call":
        error = {"code": -32601, "message": f"no method {method}"}
        return json.dumps({"jsonrpc": "2.0", "id": request_id, "error": error}).encode()
    tool = request["params"]["name"]
    head = b'{"jsonrpc": "2.0", "id": ' + json.dumps(request_id).encode() + b', "result": '
    if tool == "deep":
        text = b'{"content": [{"type": "text", "text": "deep"}], "deep": '
        return head + text + b"[" * DEPTH + b"]" * DEPTH + b"}}"
    if tool == "not_rpc":
        return head + b"5}"
    if tool == "garbage":
        return head + b"{{{ not JSON"
    if tool == "quoted":  # a string never closed, of escaped quotes, then many commas
        return head + b'{"content": "' + b'\\"' * 200_000 + b"," * 30_000
    count = int(request["params"].get("arguments", {}).get("count", 0))
    if tool == "crowd":
        return head + b'{"content": [' + b",".join([b"{}"] * count) + b"]}}"
    if tool == "strings":
        text = b'{"type": "text", "text": "strings"}'
        strings = b",".join([b'"a"'] * count)
        return (
            head + b'{"content": [' + text + b'], "structuredContent": {"s": [' + strings + b"]}}}"
        )
    if tool == "escapes":
        text = b'{"type": "text", "text": "' + b"\\n" * count + b'"}'
        rows = b",".join([b"0"] * 30_000)
        return (
            head + b'{"content": [' + text + b'], "structuredContent": {"rows": [' + rows + b"]}}}"
        )
    if tool == "rows":
        rows = b",".join([b"0"] * count)
        text = b'{"type": "text", "text": "rows"}'
        return (
            head + b'{"content": [' + text + b'], "structuredContent": {"rows": [' + rows + b"]}}}"
        )
    return answer(request_id, {"content": [{"type": "text", "text": "echo"}]})


def main() -> None:
    for line in sys.stdin.buffer:
        if not line.strip():
            continue
        out = reply(json.loads(line))
        if out is not None:
            sys.stdout.buffer.write(out + b"\n")
            sys.stdout.buffer.flush()


if __name__ == "__main__":
    main()
