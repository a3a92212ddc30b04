"""Qwen3-Coder's XML calls (and Qwen-Agent's ✿FUNCTION✿) through the real `qwen-dev ask`
process, against the fault server answering in each form a model writes; and a turn
that fails over from a provider with native tools to one on the text protocol."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from faultserver import FaultServer, Outcome

from .test_cli_ask import qwen_dev

pytestmark = pytest.mark.slow  # Every test runs a real `qwen-dev` process.

CODER = "Qwen3-Coder-30B-A3B-Instruct"
XML_LIST = (
    "<tool_call>\n<function=list_dir>\n<parameter=path>\n.\n</parameter>\n</function>\n</tool_call>"
)
RESPONSE = re.compile(r"<tool_response>\n(.*?)\n</tool_response>", re.DOTALL)
XML_READ = (
    "<tool_call>\n<function=read_file>\n<parameter=path>\napp.py\n</parameter>\n"
    "</function>\n</tool_call>"
)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    (root / "app.py").write_text("print('hello')\nprint('bye')\n", encoding="utf-8")
    return root


def provider(name: str, srv: FaultServer, model: str = CODER, extra: str = "") -> str:
    return f'[providers.{name}]\nbase_url = "{srv.base_url}"\nmodel = "{model}"\n{extra}\n'


async def ask(workspace: Path, config: str, *args: str) -> tuple[int, dict[str, Any], str]:
    path = workspace.parent / "c.toml"
    path.write_text(config + "\n[retry]\nmax_retries = 1\nbase_delay = 0.01\nmax_delay = 0.02\n")
    run = await qwen_dev("ask", "--json", "--config", str(path), *args, cwd=workspace)
    assert run.code == 0, run.err
    return run.code, run.json(), run.err


def sent(srv: FaultServer, index: int = -1) -> dict[str, Any]:
    body = srv.requests[index].json
    assert isinstance(body, dict)
    return body


def results(body: dict[str, Any]) -> list[str]:
    """The tool results a request carries, native or in <tool_response> blocks."""
    out = []
    for message in body["messages"]:
        if message["role"] == "tool":
            out.append(message["content"])
        elif message["role"] == "user":
            out += re.findall(RESPONSE, message["content"])
    return out


#: What the model writes, and the calls (name, arguments) it stands for.
VARIANTS: dict[str, tuple[str, list[tuple[str, dict[str, object]]]]] = {
    "wrapped": (XML_READ, [("read_file", {"path": "app.py"})]),
    "prose on the same line": (
        "Sure! Let me read it for you." + XML_READ,
        [("read_file", {"path": "app.py"})],
    ),
    "several calls": (
        f"{XML_LIST}\n{XML_READ}",
        [("list_dir", {"path": "."}), ("read_file", {"path": "app.py"})],
    ),
    "no wrapper": (
        "<function=read_file>\n<parameter=path>\napp.py\n</parameter>\n</function>",
        [("read_file", {"path": "app.py"})],
    ),
    "typed values": (
        "<tool_call>\n<function=read_file>\n<parameter=path>\napp.py\n</parameter>\n"
        "<parameter=start_line>\n2\n</parameter>\n<parameter=end_line>\n2\n</parameter>\n"
        "</function>\n</tool_call>",
        [("read_file", {"path": "app.py", "start_line": 2, "end_line": 2})],
    ),
    "closing tags left out": (
        "<tool_call>\n<function=read_file>\n<parameter=path>\napp.py\n</tool_call>",
        [("read_file", {"path": "app.py"})],
    ),
    "qwen-agent markers": (
        'I will read it.\n✿FUNCTION✿: read_file\n✿ARGS✿: {"path": "app.py"}\n✿RESULT✿: ...',
        [("read_file", {"path": "app.py"})],
    ),
}  # fmt: skip


@pytest.mark.parametrize("answer", list(VARIANTS), ids=list(VARIANTS))
async def test_each_variant_runs_its_tools(workspace: Path, answer: str) -> None:
    text, wanted = VARIANTS[answer]
    async with FaultServer() as srv:
        srv.script(Outcome.ok(text, chunk_size=5), Outcome.ok("It prints hello."))
        _, payload, _ = await ask(
            workspace, provider("lab", srv, extra="native_tools = false"), "read app.py"
        )
        assert payload["text"] == "It prints hello."
        assert [(c["name"], c["arguments"], c["status"]) for c in payload["tool_calls"]] == [
            (name, arguments, "ok") for name, arguments in wanted
        ]
        first, last = sent(srv, 0), sent(srv)
        assert "tools" not in first  # the text protocol, in the model's own format
        assert "<tools>\n<function>\n<name>read_file</name>" in first["messages"][0]["content"]
        assert len(results(last)) == len(wanted)
        assert any("print('" in result for result in results(last))


async def test_a_qwen3_coder_answer_on_a_native_provider_runs_and_is_not_printed(
    workspace: Path,
) -> None:
    """The user's report: a server without tool parsing returns the XML as text."""
    async with FaultServer() as srv:
        srv.script(
            Outcome.ok("Reading.\n" + XML_READ, chunk_size=4), Outcome.ok("It prints hello.")
        )
        path = workspace.parent / "c.toml"
        path.write_text(provider("lab", srv))
        run = await qwen_dev("ask", "--config", str(path), "what does app.py print?", cwd=workspace)
        assert run.code == 0, run.err
        assert "<function=" not in run.out
        assert "<tool_call>" not in run.out
        assert run.out.startswith("Reading.")
        assert "It prints hello." in run.out
        assert "tools" in sent(srv, 0)  # native tools stayed on
        assert "print('hello')" in results(sent(srv))[0]


async def test_a_multi_line_value_is_written_exactly(workspace: Path) -> None:
    content = 'def main():\n    """Entry point."""\n    print(`x`)\n\n\n```\nnot a fence end\n'
    answer = (
        "I'll create it.\n<tool_call>\n<function=write_file>\n<parameter=path>\nmain.py\n"
        f"</parameter>\n<parameter=content>\n{content}\n</parameter>\n</function>\n</tool_call>"
    )
    async with FaultServer() as srv:
        srv.script(Outcome.ok(answer, chunk_size=7), Outcome.ok("Created main.py."))
        config = provider("lab", srv, extra='native_tools = false\ntool_format = "qwen3_coder"')
        _, payload, _ = await ask(workspace, config, "--approval", "auto-edit", "create main.py")
        assert payload["tool_calls"][0]["status"] == "ok"
        assert (workspace / "main.py").read_text(encoding="utf-8") == content


async def test_a_value_of_the_wrong_type_is_sent_back_to_the_model(workspace: Path) -> None:
    wrong = XML_READ.replace(
        "</function>", "<parameter=start_line>\nsecond\n</parameter>\n</function>"
    )
    async with FaultServer() as srv:
        srv.script(Outcome.ok(wrong), Outcome.ok(XML_READ), Outcome.ok("done"))
        _, payload, _ = await ask(
            workspace, provider("lab", srv, extra="native_tools = false"), "read"
        )
        assert [c["status"] for c in payload["tool_calls"]] == ["error", "ok"]
        [told] = results(sent(srv, 1))
        assert "parameter 'start_line' must be an integer, not 'second'" in told
        assert "<function=NAME>" in told


async def test_a_turn_fails_over_from_native_tools_to_a_qwen3_coder_provider(
    workspace: Path,
) -> None:
    (workspace / "notes.txt").write_text("remember the milk\n", encoding="utf-8")
    call = {"name": "read_file", "arguments": json.dumps({"path": "app.py"})}
    async with FaultServer() as hosted, FaultServer() as local:
        hosted.script(
            Outcome.ok(tool_calls=[call]),
            Outcome.status(503),  # down mid-turn: the local Qwen3-Coder takes over
            Outcome.ok("app.py prints hello; the notes say: remember the milk."),
        )
        local.script(Outcome.ok(XML_READ.replace("app.py", "notes.txt")))
        config = (
            'provider_order = ["hosted", "coder"]\n'
            + provider("hosted", hosted, model="Qwen3-Coder-480B-A35B-Instruct")
            + provider("coder", local, model="qwen3-coder:30b", extra="native_tools = false")
        )
        _, payload, _ = await ask(workspace, config, "read app.py, then my notes")
        assert payload["text"].endswith("remember the milk.")
        assert [(c["arguments"], c["status"]) for c in payload["tool_calls"]] == [
            ({"path": "app.py"}, "ok"),
            ({"path": "notes.txt"}, "ok"),
        ]
        # The local model got the hosted model's native call in its own XML, and the result.
        to_local = sent(local)
        assert "tools" not in to_local
        assert [m["role"] for m in to_local["messages"]] == ["system", "user", "assistant", "user"]
        assert to_local["messages"][2]["content"] == XML_READ
        assert "print('hello')" in results(to_local)[0]
        # Back on the hosted provider, the local model's call is a native call, answered.
        back = sent(hosted)
        assert "tools" in back
        assistant = [m for m in back["messages"] if m["role"] == "assistant"]
        ids = [entry["id"] for m in assistant for entry in m["tool_calls"]]
        answered = [m["tool_call_id"] for m in back["messages"] if m["role"] == "tool"]
        assert len(ids) == 2
        assert answered == ids
        assert "remember the milk" in results(back)[1]
