"""The JSON dialects users already have, as ``[mcp.servers.NAME]`` tables.

- Claude Code's ``.mcp.json``: ``{"mcpServers": {NAME: {"type": "stdio" | "http" |
  "sse", "command", "args", "env", "url", "headers"}}}``.
- Gemini CLI's and Qwen Code's ``settings.json``: ``{"mcpServers": {NAME: {"command",
  "args", "env", "cwd", "url" (SSE), "httpUrl" (streamable HTTP), "headers", "timeout"
  (milliseconds), "trust", "includeTools", "excludeTools"}}}``.

Anything else in a server's entry is a mistake worth hearing about: :class:`McpImportError`
names the file and the key, and nothing is imported.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Final

#: An import file larger than this is not a settings file.
MAX_IMPORT_BYTES: Final = 1024 * 1024
_NAME_OUTSIDE: Final = re.compile(r"[^A-Za-z0-9_-]")

#: Keys accepted and ignored: they mean nothing to qwen-dev (descriptions, OAuth set-up
#: it does not do yet) and are said as skipped.
_IGNORED: Final = frozenset({"description", "oauth", "authProviderType", "disabled", "tcp"})


class McpImportError(Exception):
    """A file that cannot be imported; the message names the file and the key."""


def read_servers(
    path: Path, content: bytes | None = None
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """The servers of ``path`` (or of ``content``, the bytes read from it) as config
    tables, and notes for the user (renamed servers, keys left out)."""
    data = _load(path) if content is None else _parse(path, content)
    if not isinstance(data, dict) or not isinstance(data.get("mcpServers"), dict):
        raise McpImportError(f"{path}: mcpServers: expected an object of servers")
    servers: dict[str, dict[str, Any]] = {}
    notes: list[str] = []
    for raw_name, entry in data["mcpServers"].items():
        key = f"mcpServers.{raw_name}"
        name = _NAME_OUTSIDE.sub("_", raw_name)[:32].strip("_-") or "server"
        if name != raw_name:
            notes.append(f"{raw_name!r} is imported as {name!r}")
        if name in servers:
            raise McpImportError(f"{path}: {key}: two servers would both be named {name!r}")
        if not isinstance(entry, dict):
            raise McpImportError(f"{path}: {key}: expected an object")
        servers[name] = _table(path, key, entry, notes)
    return servers, notes


def _parse(path: Path, content: bytes) -> object:
    if len(content) > MAX_IMPORT_BYTES:
        raise McpImportError(f"{path}: larger than 1 MiB; not a settings file")
    try:
        return json.loads(content.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise McpImportError(f"{path}: cannot read it: {exc}") from None
    except json.JSONDecodeError as exc:
        raise McpImportError(f"{path}: not JSON: {exc}") from None
    except RecursionError:
        raise McpImportError(f"{path}: not JSON: nested too deeply") from None


def _load(path: Path) -> object:
    try:
        if path.stat().st_size > MAX_IMPORT_BYTES:
            raise McpImportError(f"{path}: larger than 1 MiB; not a settings file")
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise McpImportError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise McpImportError(f"{path}: cannot read it: {exc}") from None
    except json.JSONDecodeError as exc:
        raise McpImportError(f"{path}: not JSON: {exc}") from None
    except RecursionError:
        raise McpImportError(f"{path}: not JSON: nested too deeply") from None


def _table(path: Path, key: str, entry: dict[str, Any], notes: list[str]) -> dict[str, Any]:
    def bad(item: str, expected: str) -> McpImportError:
        return McpImportError(f"{path}: {key}.{item}: expected {expected}")

    table: dict[str, Any] = {}
    kind = entry.get("type")
    for item, value in entry.items():
        if item in ("command", "cwd"):
            if not isinstance(value, str):
                raise bad(item, "a string")
            table[item] = value
        elif item == "args":
            if not isinstance(value, list) or not all(isinstance(a, str) for a in value):
                raise bad(item, "an array of strings")
            table[item] = value
        elif item in ("env", "headers"):
            if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
                raise bad(item, "an object of strings")
            table[item] = value
        elif item == "url":
            if not isinstance(value, str):
                raise bad(item, "a string")
            if "httpUrl" not in entry:
                table["url"] = value
                # Claude says which with "type"; Gemini's and Qwen Code's url is SSE.
                if kind in (None, "sse"):
                    table["transport"] = "sse"
        elif item == "httpUrl":
            if not isinstance(value, str):
                raise bad(item, "a string")
            table["url"] = value
        elif item == "type":
            if value not in ("stdio", "http", "sse", "streamable-http"):
                raise bad(item, '"stdio", "http" or "sse"')
        elif item == "timeout":
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise bad(item, "a positive number of milliseconds")
            table["timeout"] = min(float(value) / 1000, 86_400.0)
        elif item == "trust":
            if not isinstance(value, bool):
                raise bad(item, "true or false")
            if value:  # an imported file may be someone else's: trust is the user's word
                notes.append(
                    f"{key}.trust left out: its calls will ask; set trust = true in your "
                    "config yourself if you trust it"
                )
        elif item in ("includeTools", "excludeTools"):
            if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
                raise bad(item, "an array of tool names")
            table["include_tools" if item == "includeTools" else "exclude_tools"] = value
        elif item in _IGNORED:
            notes.append(f"{key}.{item} left out (qwen-dev does not use it)")
        else:
            raise McpImportError(f"{path}: {key}.{item}: unknown key")
    if "command" not in table and "url" not in table:
        raise McpImportError(f"{path}: {key}: expected command, url or httpUrl")
    return table
