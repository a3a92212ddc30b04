"""Drive qwen-dev with the Claude Agent SDK for Python (``pip install claude-agent-sdk``).

    python examples/sdk_driver.py "what does app.py do?"

The SDK starts ``qwen-dev`` (found on PATH) in place of Claude Code: any
OpenAI-compatible model, qwen-dev's retries, failover and shared budget underneath. File
edits and commands the approval mode leaves to the user come to ``approve`` below.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
from collections.abc import AsyncIterator
from typing import Any

from claude_agent_sdk import (
    AssistantMessage,
    ClaudeAgentOptions,
    PermissionResultAllow,
    PermissionResultDeny,
    ResultMessage,
    TextBlock,
    ToolUseBlock,
    query,
)


async def approve(tool: str, arguments: dict[str, Any], context: Any) -> Any:
    """Allow reads and edits inside the project; refuse commands."""
    if tool == "run_command":
        return PermissionResultDeny(message="no commands from this driver")
    return PermissionResultAllow()


async def prompt(text: str) -> AsyncIterator[dict[str, Any]]:
    # A callback needs the streaming form of the prompt.
    message = {"role": "user", "content": text}
    yield {"type": "user", "message": message, "parent_tool_use_id": None, "session_id": ""}


async def main(text: str) -> int:
    cli = shutil.which("qwen-dev")
    if cli is None:
        print("qwen-dev is not on PATH", file=sys.stderr)
        return 2
    options = ClaudeAgentOptions(cli_path=cli, can_use_tool=approve, max_turns=10)
    async for message in query(prompt=prompt(text), options=options):
        if isinstance(message, AssistantMessage):
            for block in message.content:
                if isinstance(block, TextBlock):
                    print(block.text)
                elif isinstance(block, ToolUseBlock):
                    print(f"[{block.name} {block.input}]", file=sys.stderr)
        elif isinstance(message, ResultMessage):
            print(f"[{message.subtype}, {message.num_turns} model calls]", file=sys.stderr)
            return 1 if message.is_error else 0
    return 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main(" ".join(sys.argv[1:]) or "hello")))
