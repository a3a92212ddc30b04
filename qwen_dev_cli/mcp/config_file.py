"""Adding and removing ``[mcp.servers.NAME]`` tables in the user's config file, safely.

The file is the user's: comments, order and every other table stay as they are. A new
server is appended as its own table; a server is removed by cutting out its
``[mcp.servers.NAME]`` table (and its sub-tables). Either way the new text is checked
before anything is written: it must parse, pass the configuration's own checks, and
mean exactly the old file plus (or minus) that one server, else nothing is written and
the user is told to edit the file by hand. The file is replaced atomically and keeps its
mode (a new one is private: headers may hold tokens).
"""

from __future__ import annotations

import os
import re
import tempfile
import tomllib
from pathlib import Path
from typing import Any

from ..config.errors import ConfigError, Where


class ConfigEditError(Exception):
    """The file could not be changed; the message says why and what to do."""


def add_servers(path: Path, servers: dict[str, dict[str, Any]]) -> None:
    """Append a table for each of ``servers`` (by name) to the config file at ``path``."""
    old_text = _read(path)
    old = _parse(old_text, path)
    taken = [name for name in servers if name in _servers_of(old)]
    if taken:
        raise ConfigEditError(
            f"{path}: MCP server {taken[0]!r} is already defined; "
            f"`qwen-dev mcp remove {taken[0]}` first"
        )
    text = old_text
    if text and not text.endswith("\n"):
        text += "\n"
    for name, table in servers.items():
        text += f"\n[mcp.servers.{name}]\n" + "".join(
            f"{_key(key)} = {_value(value)}\n" for key, value in table.items()
        )
    expected = _parse(old_text, path)
    expected.setdefault("mcp", {}).setdefault("servers", {}).update(servers)
    _replace(path, text, expected)


def remove_server(path: Path, name: str) -> None:
    """Cut ``[mcp.servers.NAME]`` (and its sub-tables) out of the config file."""
    old_text = _read(path)
    old = _parse(old_text, path)
    if name not in _servers_of(old):
        raise ConfigEditError(f"{path}: there is no MCP server {name!r}")
    header = re.compile(
        r"^\s*\[\s*mcp\s*\.\s*servers\s*\.\s*(?:"
        + re.escape(name)
        + r'|"'
        + re.escape(name)
        + r'")\s*(?:\.[^\]]*)?\]\s*(?:#.*)?$'
    )
    kept: list[str] = []
    inside = False
    for line in old_text.splitlines(keepends=True):
        if line.lstrip().startswith("["):
            inside = bool(header.match(line.rstrip("\r\n")))
        if not inside:
            kept.append(line)
    expected = _parse(old_text, path)
    servers = expected["mcp"]["servers"]
    del servers[name]
    if not servers:
        del expected["mcp"]["servers"]
    if not expected["mcp"]:
        del expected["mcp"]
    _replace(path, "".join(kept), expected)


def _servers_of(data: dict[str, Any]) -> dict[str, Any]:
    mcp = data.get("mcp", {})
    servers = mcp.get("servers", {}) if isinstance(mcp, dict) else {}
    return servers if isinstance(servers, dict) else {}


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigEditError(f"{path}: cannot read the file: {exc}") from exc


def _parse(text: str, path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigEditError(f"{path}: invalid TOML ({exc}); fix it first") from exc


def _replace(path: Path, text: str, expected: dict[str, Any]) -> None:
    """Write ``text`` over ``path`` if it means ``expected`` and passes the checks."""
    from ..config.layers import file_layer

    try:
        meant = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        meant = None
    if meant != expected:
        raise ConfigEditError(
            f"{path}: the servers there are not written as [mcp.servers.NAME] tables, so "
            "qwen-dev cannot change them safely; edit the file by hand"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o600
    fd, temporary = tempfile.mkstemp(prefix=".config-", suffix=".toml", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(temporary, mode)
        try:
            file_layer(Path(temporary))
        except ConfigError as exc:
            raise ConfigEditError(
                str(exc).replace(temporary, str(path)) + "; nothing was written"
            ) from exc
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(key: str) -> str:
    return key if _BARE.match(key) else _string(key)


def _string(text: str) -> str:
    """A TOML basic string (JSON's escapes are not all TOML's: no surrogates, DEL)."""
    out = ['"']
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def check_table(name: str, table: dict[str, Any], source: str) -> None:
    """Raise the configuration's own error if ``table`` is not a valid server."""
    from ..config.layers import parse_mcp

    parse_mcp({"servers": {name: table}}, Where(source, "mcp"))
