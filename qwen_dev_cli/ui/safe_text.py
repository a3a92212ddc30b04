"""Text made safe for a terminal: :func:`qwen_dev_cli.safe_text.printable`, the one rule,
which lives in a leaf module so that the client can apply it to what servers send."""

from __future__ import annotations

from ..safe_text import printable

__all__ = ["printable"]
