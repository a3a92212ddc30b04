"""Tools travel per provider, per attempt: natively to a provider that takes them,
rewritten by the request's ``text_tools`` for one that does not (the seam the agent's
text protocol plugs into)."""

from __future__ import annotations

import dataclasses
import random

from qwen_dev_cli.core import LLMClient, RetryPolicy, ServerError, request_for
from qwen_dev_cli.core.types import ChatRequest

from .fakes import FakeClock
from .scripted import Outcome, ScriptedProvider

USER = [{"role": "system", "content": "native"}, {"role": "user", "content": "hello"}]
TOOLS = [{"type": "function", "function": {"name": "read_file", "parameters": {}}}]


class Recorder:
    """A TextTools that notes what it was asked and says which format it rendered."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []

    def render(self, request: ChatRequest, *, model: str, tool_format: str) -> ChatRequest:
        self.asked.append((model, tool_format))
        system = {"role": "system", "content": f"tools in {tool_format}"}
        return dataclasses.replace(
            request, messages=[system, *request.messages[1:]], tools=None, text_tools=None
        )


def provider(name: str, *script: Outcome, native: bool | None) -> ScriptedProvider:
    made = ScriptedProvider(name, *script)
    if native is not None:
        made.native_tools = native  # type: ignore[attr-defined]  # the optional attribute
    return made


async def test_a_failover_changes_the_protocol_within_one_call() -> None:
    clock = FakeClock()
    hosted = provider("hosted", ServerError("down", status_code=503), native=True)
    local = provider("local", "from local", native=False)
    local.tool_format = "qwen3_coder"  # type: ignore[attr-defined]  # an optional attribute
    text_tools = Recorder()
    client = LLMClient(
        [hosted, local],
        clock=clock,
        sleep=clock.sleep,
        rng=random.Random(1),
        retry=RetryPolicy(max_retries=0),
    )
    result = await client.chat(USER, TOOLS, text_tools=text_tools)
    assert result.text == "from local"
    [sent_hosted] = hosted.requests
    assert sent_hosted.tools == TOOLS
    assert sent_hosted.messages == USER
    [sent_local] = local.requests
    assert sent_local.tools is None
    assert sent_local.messages[0] == {"role": "system", "content": "tools in qwen3_coder"}
    assert text_tools.asked == [("local-model", "qwen3_coder")]


def test_the_request_is_left_alone_when_nothing_is_to_be_rendered() -> None:
    text_tools = Recorder()
    with_tools = ChatRequest(USER, TOOLS, text_tools=text_tools)
    native = provider("a", native=True)
    silent = provider("b", native=None)  # says nothing: the text protocol, format "auto"
    assert request_for(native, with_tools) is with_tools
    assert request_for(silent, ChatRequest(USER, None, text_tools=text_tools)).tools is None
    assert request_for(silent, ChatRequest(USER, TOOLS)).tools == TOOLS  # no renderer
    assert text_tools.asked == []
    assert request_for(silent, with_tools).messages[0]["content"] == "tools in auto"
