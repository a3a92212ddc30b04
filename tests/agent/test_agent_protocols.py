"""How the agent speaks each protocol: damaged calls, mixed providers, what streams."""

from __future__ import annotations

from pathlib import Path

from qwen_dev_cli.agent.turn import AssistantText, MessageAdded
from tests.fault_server import Outcome

from .harness import harness, tool_results


async def test_an_unparseable_text_call_is_explained_and_the_retry_works(tmp_path: Path) -> None:
    async with harness(tmp_path, "text") as h:
        (h.workspace / "a.py").write_text("x = 1\n")
        h.server.script(
            Outcome.ok("<tool_call>\n{name: read_file, path: a.py}\n</tool_call>"),
            Outcome.ok(
                '<tool_call>{"name": "read_file", "arguments": {"path": "a.py"}}</tool_call>'
            ),
            Outcome.ok("x is 1."),
        )
        result = await h.agent().run([], "read a.py", h.events.append)
        assert result.text == "x is 1."
        assert [r.status for r in result.tool_calls] == ["error", "ok"]
        [explained] = tool_results(h.bodies[1])
        assert explained.startswith(
            "Error: your tool call could not be used: the call is invalid JSON"
        )
        assert "{name: read_file, path: a.py}" in explained
        assert '<tool_call>{"name": ..., "arguments": {...}}</tool_call>' in explained
        assert tool_results(h.bodies[2])[-1] == "x = 1\n"


async def test_damaged_native_arguments_are_repaired(tmp_path: Path) -> None:
    async with harness(tmp_path, "native") as h:
        (h.workspace / "a.py").write_text("x = 1\n")
        h.server.script(
            Outcome.ok(tool_calls=[{"name": "read_file", "arguments": "{'path': 'a.py',}"}]),
            Outcome.ok("ok"),
        )
        result = await h.agent().run([], "read", h.events.append)
        assert result.tool_calls[0].status == "ok"
        assert tool_results(h.bodies[1]) == ["x = 1\n"]


async def test_unusable_native_arguments_are_reported_without_poisoning_the_next_request(
    tmp_path: Path,
) -> None:
    async with harness(tmp_path, "native") as h:
        h.server.script(
            Outcome.ok(tool_calls=[{"name": "read_file", "arguments": "path=a.py"}]),
            Outcome.ok("sorry"),
        )
        result = await h.agent().run([], "read", h.events.append)
        assert result.tool_calls[0].status == "error"
        sent = h.bodies[1]["messages"]
        assistant = next(m for m in sent if m["role"] == "assistant")
        # the broken arguments are not echoed back: a strict server would reject them
        assert assistant["tool_calls"][0]["function"] == {"name": "read_file", "arguments": "{}"}
        [explained] = tool_results(h.bodies[1])
        assert "could not be used" in explained
        assert "path=a.py" in explained


async def test_a_native_provider_whose_model_writes_text_calls_still_works(tmp_path: Path) -> None:
    async with harness(tmp_path, "native") as h:
        (h.workspace / "a.py").write_text("x = 1\n")
        h.server.script(
            Outcome.ok(
                '<tool_call>{"name": "read_file", "arguments": {"path": "a.py"}}</tool_call>'
            ),
            Outcome.ok("x is 1."),
        )
        result = await h.agent().run([], "read", h.events.append)
        assert result.tool_calls[0].status == "ok"
        assert [m["role"] for m in h.bodies[1]["messages"]][-2:] == ["assistant", "tool"]
        assert tool_results(h.bodies[1]) == ["x = 1\n"]


async def test_one_provider_without_native_tools_puts_everyone_on_the_text_protocol(
    tmp_path: Path,
) -> None:
    async with harness(tmp_path, "native", providers=2) as h:
        # Provider (the protocol) does not declare native_tools; this one has it.
        h.client.providers[1].native_tools = False  # type: ignore[attr-defined]
        (h.workspace / "a.py").write_text("x = 1\n")
        h.server.script(
            Outcome.ok(
                '<tool_call>{"name": "read_file", "arguments": {"path": "a.py"}}</tool_call>'
            ),
            Outcome.ok("x is 1."),
        )
        await h.agent().run([], "read", h.events.append)
        assert all("tools" not in body for body in h.bodies)
        last = h.bodies[1]["messages"]
        assert last[-2]["role"] == "assistant"
        assert "<tool_call>" in last[-2]["content"]
        assert last[-1] == {"role": "user", "content": "<tool_response>\nx = 1\n\n</tool_response>"}


async def test_text_calls_stream_as_prose_only(tmp_path: Path) -> None:
    async with harness(tmp_path, "text") as h:
        (h.workspace / "a.py").write_text("x = 1\n")
        h.server.script(
            Outcome.ok(
                "Let me look.\n<tool_call>\n"
                '{"name": "read_file", "arguments": {"path": "a.py"}}\n</tool_call>',
                chunk_size=3,
            ),
            Outcome.ok("x is 1."),
        )
        await h.agent().run([], "read", h.events.append)
        shown = "".join(e.text for e in h.events if isinstance(e, AssistantText))
        assert shown == "Let me look.\nx is 1."
        first = next(
            e.message
            for e in h.events
            if isinstance(e, MessageAdded) and e.message["role"] == "assistant"
        )
        assert first["content"] == "Let me look."


async def test_several_results_go_back_in_order_in_one_message(tmp_path: Path) -> None:
    async with harness(tmp_path, "text") as h:
        (h.workspace / "a.py").write_text("A\n")
        (h.workspace / "b.py").write_text("B\n")
        h.server.script(
            Outcome.ok(
                '<tool_call>{"name": "read_file", "arguments": {"path": "a.py"}}</tool_call>\n'
                '<tool_call>{"name": "read_file", "arguments": {"path": "b.py"}}</tool_call>'
            ),
            Outcome.ok("A and B."),
        )
        await h.agent().run([], "read both", h.events.append)
        last = h.bodies[1]["messages"][-1]
        assert last["content"] == (
            "<tool_response>\nA\n\n</tool_response>\n<tool_response>\nB\n\n</tool_response>"
        )
