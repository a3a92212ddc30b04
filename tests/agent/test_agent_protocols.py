"""How the agent speaks each protocol: damaged calls, mixed providers, what streams,
and a turn that fails over between native tools and the text protocol."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from faultserver import Outcome
from qwen_dev_cli.agent.turn import AssistantText, MessageAdded

from .harness import Lab, bodies, calls, harness, labs, tool_results, xml_call


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


async def test_each_provider_is_given_the_tools_its_own_way(tmp_path: Path) -> None:
    coder = Lab(native_tools=False, model="Qwen3-Coder-30B-A3B-Instruct")
    async with labs(tmp_path, Lab(native_tools=True), coder) as h:
        hosted, local = h.servers
        hosted.script(Outcome.ok("hi"), Outcome.status(401))
        await h.agent().run([], "hello", h.events.append)
        await h.agent().run([], "hello again", h.events.append)  # the hosted key is refused
        [native] = bodies(hosted)[:1]
        assert native["tools"][0]["function"]["name"] == "read_file"
        assert "<tools>" not in native["messages"][0]["content"]
        [text] = bodies(local)
        assert "tools" not in text
        assert "<tools>\n<function>\n<name>read_file</name>" in text["messages"][0]["content"]


async def test_a_turn_fails_over_from_native_tools_to_the_text_protocol_and_back(
    tmp_path: Path,
) -> None:
    coder = Lab(native_tools=False, tool_format="qwen3_coder")
    async with labs(tmp_path, Lab(native_tools=True), coder) as h:
        (h.workspace / "a.py").write_text("A = 1\n")
        (h.workspace / "b.py").write_text("B = 2\n")
        hosted, local = h.servers
        hosted.script(
            calls("native", ("read_file", {"path": "a.py"})),
            Outcome.status(503),  # down in the middle of the turn: the local model takes over
            Outcome.ok("A is 1 and B is 2."),  # and back for the last step
        )
        local.script(Outcome.ok("Now b.py.\n" + xml_call("read_file", path="b.py", start_line=1)))

        result = await h.agent().run([], "read a.py and b.py", h.events.append)

        assert result.text == "A is 1 and B is 2."
        assert [(r.name, r.arguments, r.status) for r in result.tool_calls] == [
            ("read_file", {"path": "a.py"}, "ok"),
            ("read_file", {"path": "b.py", "start_line": 1}, "ok"),
        ]
        # The text provider got the native call written in its format, with its result.
        [sent] = bodies(local)
        assert "tools" not in sent
        assert [m["role"] for m in sent["messages"]] == ["system", "user", "assistant", "user"]
        assert "<tools>\n<function>\n<name>read_file</name>" in sent["messages"][0]["content"]
        assert sent["messages"][2]["content"] == xml_call("read_file", path="a.py")
        assert sent["messages"][3]["content"] == "<tool_response>\nA = 1\n\n</tool_response>"
        # Back on native tools, the call made in XML is a native call with its result.
        last = bodies(hosted)[-1]
        assert "tools" in last
        messages = last["messages"]
        assert [m["role"] for m in messages] == [
            "system", "user", "assistant", "tool", "assistant", "tool"
        ]  # fmt: skip
        second = messages[4]
        assert second["content"] == "Now b.py."
        [entry] = second["tool_calls"]
        assert json.loads(entry["function"]["arguments"]) == {"path": "b.py", "start_line": 1}
        assert messages[5]["tool_call_id"] == entry["id"]
        assert messages[3]["tool_call_id"] == messages[2]["tool_calls"][0]["id"]
        assert "B = 2" in messages[5]["content"]


async def test_an_old_session_resumes_on_a_text_protocol_provider(tmp_path: Path) -> None:
    history: list[dict[str, Any]] = [
        {"role": "user", "content": "read a.py"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "read_file", "arguments": '{"path": "a.py"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "name": "read_file", "content": "A = 1\n"},
        {"role": "assistant", "content": "A is 1."},
    ]
    async with labs(tmp_path, Lab(native_tools=False, model="qwen3-coder:30b")) as h:
        h.server.script(Outcome.ok("Still 1."))
        await h.agent().run(history, "and now?", h.events.append)
        messages = h.bodies[0]["messages"]
        assert messages[2:] == [
            {"role": "assistant", "content": xml_call("read_file", path="a.py")},
            {"role": "user", "content": "<tool_response>\nA = 1\n\n</tool_response>"},
            {"role": "assistant", "content": "A is 1."},
            {"role": "user", "content": "and now?"},
        ]


async def test_xml_calls_run_with_values_typed_by_the_schema(tmp_path: Path) -> None:
    async with labs(tmp_path, Lab(native_tools=False, tool_format="qwen3_coder")) as h:
        (h.workspace / "a.py").write_text("one\ntwo\nthree\n")
        h.server.script(
            Outcome.ok(xml_call("read_file", path="a.py", start_line=2, end_line=2)),
            Outcome.ok("Line 2 is two."),
        )
        result = await h.agent().run([], "line 2?", h.events.append)
        assert result.tool_calls[0].arguments == {"path": "a.py", "start_line": 2, "end_line": 2}
        [read] = tool_results(h.bodies[1])
        assert "two" in read
        assert "three" not in read


async def test_an_untypable_xml_value_is_explained_in_the_models_own_format(
    tmp_path: Path,
) -> None:
    async with labs(tmp_path, Lab(native_tools=False, tool_format="qwen3_coder")) as h:
        (h.workspace / "a.py").write_text("one\ntwo\n")
        h.server.script(
            Outcome.ok(xml_call("read_file", path="a.py", start_line="second")),
            Outcome.ok(xml_call("read_file", path="a.py", start_line=2)),
            Outcome.ok("two"),
        )
        result = await h.agent().run([], "line 2?", h.events.append)
        assert [r.status for r in result.tool_calls] == ["error", "ok"]
        [explained] = tool_results(h.bodies[1])
        assert "parameter 'start_line' must be an integer, not 'second'" in explained
        assert "<tool_call><function=NAME><parameter=NAME>value</parameter>" in explained


async def test_xml_calls_stream_as_prose_only(tmp_path: Path) -> None:
    async with labs(tmp_path, Lab(native_tools=False, tool_format="qwen3_coder")) as h:
        (h.workspace / "a.py").write_text("x = 1\n")
        h.server.script(
            Outcome.ok("Let me look.\n" + xml_call("read_file", path="a.py"), chunk_size=3),
            Outcome.ok("x is 1."),
        )
        await h.agent().run([], "read", h.events.append)
        shown = "".join(e.text for e in h.events if isinstance(e, AssistantText))
        assert shown == "Let me look.\nx is 1."
