"""The one conversation rendered for native and text-protocol providers."""

from __future__ import annotations

from typing import Any

import pytest

from qwen_dev_cli.agent import protocol
from qwen_dev_cli.agent.formats import resolve_format
from qwen_dev_cli.agent.parser import CallProblem, DecodedCall
from qwen_dev_cli.core import ChatRequest, OpenAICompatProvider
from qwen_dev_cli.session.repair import tool_result

CALL = DecodedCall("call_1", "read_file", {"path": "a.py"})
CONVERSATION: list[dict[str, Any]] = [
    {"role": "user", "content": "read a.py and b.py"},
    protocol.assistant_message(
        "Reading.",
        [protocol.call_entry(CALL), protocol.problem_entry("call_2", CallProblem("bad", "{x"))],
    ),
    tool_result("call_1", "read_file", "A"),
    tool_result("call_2", "unparsed_call", "Error: bad"),
    {"role": "assistant", "content": "Done."},
]


def test_native_keeps_the_calls_and_drops_the_tool_name() -> None:
    rendered = protocol.render(CONVERSATION, native=True)
    assert rendered[1] == CONVERSATION[1]
    assert rendered[2] == {"role": "tool", "tool_call_id": "call_1", "content": "A"}
    assert rendered[1]["tool_calls"][1]["function"] == {"name": "unparsed_call", "arguments": "{}"}


def test_text_writes_calls_into_the_answer_and_merges_results() -> None:
    rendered = protocol.render(CONVERSATION, native=False)
    assert rendered == [
        {"role": "user", "content": "read a.py and b.py"},
        {
            "role": "assistant",
            "content": 'Reading.\n<tool_call>\n{"name": "read_file", "arguments": {"path": "a.py"}}'
            '\n</tool_call>\n<tool_call>\n{"name": "unparsed_call", "arguments": {}}\n</tool_call>',
        },
        {
            "role": "user",
            "content": "<tool_response>\nA\n</tool_response>\n"
            "<tool_response>\nError: bad\n</tool_response>",
        },
        {"role": "assistant", "content": "Done."},
    ]


def test_rendering_does_not_change_the_conversation() -> None:
    before = repr(CONVERSATION)
    protocol.render(CONVERSATION, native=False)
    protocol.render(CONVERSATION, native=True)
    assert repr(CONVERSATION) == before


def test_qwen3_coder_gets_its_xml_and_typed_values_written_as_text() -> None:
    call = DecodedCall("call_3", "read_file", {"path": "a.py", "start_line": 3})
    conversation = [
        {"role": "user", "content": "read it"},
        protocol.assistant_message("", [protocol.call_entry(call)]),
        tool_result("call_3", "read_file", "x = 1"),
    ]
    assert protocol.render_text(conversation, "qwen3_coder")[1:] == [
        {
            "role": "assistant",
            "content": "<tool_call>\n<function=read_file>\n<parameter=path>\na.py\n</parameter>\n"
            "<parameter=start_line>\n3\n</parameter>\n</function>\n</tool_call>",
        },
        {"role": "user", "content": "<tool_response>\nx = 1\n</tool_response>"},
    ]


def test_the_text_protocol_renders_a_request_for_one_provider() -> None:
    request = ChatRequest(
        [{"role": "system", "content": "native prompt"}, *CONVERSATION],
        tools=[{"type": "function", "function": {"name": "read_file"}}],
        max_tokens=100,
    )
    text = protocol.TextProtocol(lambda fmt: f"prompt for {fmt}")
    rendered = text.render(request, model="Qwen/Qwen3-Coder-480B-A35B-Instruct", tool_format="auto")
    assert rendered.tools is None
    assert rendered.text_tools is None
    assert rendered.max_tokens == 100
    assert rendered.messages[0] == {"role": "system", "content": "prompt for qwen3_coder"}
    assert "<function=read_file>" in rendered.messages[2]["content"]
    hermes = text.render(request, model="Qwen3-Coder", tool_format="hermes")
    assert hermes.messages[0]["content"] == "prompt for hermes"
    assert request.messages[0]["content"] == "native prompt"  # the request is left alone


@pytest.mark.parametrize(
    ("setting", "model", "fmt"),
    [
        ("auto", "Qwen3-Coder-30B-A3B-Instruct", "qwen3_coder"),
        ("auto", "qwen3-coder:30b", "qwen3_coder"),
        ("auto", "Qwen/Qwen3-Coder-480B-A35B-Instruct-FP8", "qwen3_coder"),
        ("auto", "Qwen2.5-Coder-32B-Instruct", "hermes"),
        ("auto", "SmolLM2-135M-Instruct", "hermes"),
        ("hermes", "Qwen3-Coder-30B-A3B-Instruct", "hermes"),
        ("qwen3_coder", "my-finetune", "qwen3_coder"),
    ],
)
def test_the_format_follows_the_setting_or_the_model_family(
    setting: str, model: str, fmt: str
) -> None:
    assert resolve_format(setting, model) == fmt


def test_each_provider_has_its_protocol() -> None:
    native = OpenAICompatProvider("a", base_url="http://x/v1", model="m")
    text = OpenAICompatProvider(
        "b", base_url="http://x/v1", model="qwen3-coder", native_tools=False
    )

    class Bare:  # a Provider that says nothing about tools
        model = "m"

    assert protocol.format_for(native) is None
    assert protocol.format_for(text) == "qwen3_coder"
    assert protocol.format_for(Bare()) == "hermes"
