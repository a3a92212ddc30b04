"""Why a server's message cannot be read, said the same for every transport.

Imported with the SDK (by :mod:`.stdio` and :mod:`.http`), never at start-up.
"""

from __future__ import annotations

from mcp.types import JSONRPCMessage
from pydantic import ValidationError

from ..safe_text import printable


def unreadable(body: bytes | bytearray | str) -> str | None:
    """Why the SDK could not read ``body`` as a message, read as it reads it (``None``:
    it can)."""
    try:
        JSONRPCMessage.model_validate_json(body)
    except ValidationError as exc:
        return why(exc, body)
    return None


def why(exc: ValidationError, body: bytes | bytearray | str) -> str:
    """What ``exc`` (pydantic on reading ``body``) means, in a few words: not JSON, JSON
    but no JSON-RPC message, or nested deeper than it reads."""
    errors = exc.errors(include_url=False, include_input=False)
    said = str(errors[0]["msg"]) if errors else ""
    if "recursion limit" in said:
        return "its answer was nested too deep to read"
    start = body[:60]
    head = printable(start if isinstance(start, str) else bytes(start).decode("utf-8", "replace"))
    if errors and errors[0]["type"] == "json_invalid":
        return f"its answer was not JSON: {head!r}"
    return f"its answer was not a JSON-RPC message: {head!r}"
