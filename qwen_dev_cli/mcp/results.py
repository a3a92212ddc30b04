"""A tool result as text for the model, bounded.

Text content is the result; images, audio and binary resources are described (their
size and type, never their bytes); embedded text resources are included with their
URI. What the server sends is bounded here before it is joined: past
:data:`RESULT_LIMIT` characters the rest is left out and the model is told how much.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from mcp.types import CallToolResult, ContentBlock

#: Characters of one result kept (the agent elides the middle of anything past its own cap).
RESULT_LIMIT: Final = 40_000


def result_text(result: CallToolResult, limit: int = RESULT_LIMIT) -> str:
    """The model's text for ``result`` (``isError`` is the caller's to report)."""
    parts: list[str] = []
    size = 0
    total = 0
    for block in result.content:
        piece = describe(block)
        total += len(piece)
        if size < limit:
            kept = piece[: limit - size]
            parts.append(kept)
            size += len(kept)
    if not result.content and result.structuredContent is not None:
        piece = json.dumps(result.structuredContent, ensure_ascii=False)
        total = len(piece)
        parts.append(piece[:limit])
        size = min(total, limit)
    text = "\n".join(parts) if parts else "(no content)"
    if total > size:
        text += f"\n[result cut: {total - size:,} more characters left out]"
    return text


def describe(block: ContentBlock) -> str:
    """One content block as text."""
    kind = getattr(block, "type", "")
    if kind == "text":
        return str(getattr(block, "text", ""))
    if kind in ("image", "audio"):
        data = str(getattr(block, "data", ""))
        mime = getattr(block, "mimeType", "?")
        return f"[{kind}: {mime}, about {len(data) * 3 // 4:,} bytes, not shown]"
    if kind == "resource_link":
        return f"[resource link: {getattr(block, 'uri', '')} ({getattr(block, 'name', '')})]"
    if kind == "resource":
        resource = getattr(block, "resource", None)
        uri = getattr(resource, "uri", "")
        text = getattr(resource, "text", None)
        if isinstance(text, str):
            return f"[resource {uri}]\n{text}"
        blob = str(getattr(resource, "blob", ""))
        mime = getattr(resource, "mimeType", None) or "?"
        return f"[resource {uri}: {mime}, about {len(blob) * 3 // 4:,} bytes, not shown]"
    return f"[{kind or 'unknown'} content, not shown]"
