"""OpenTelemetry export end to end: a real `qwen-dev ask` process against a scripted
model on loopback, exporting to a real OTLP receiver (HTTP/protobuf and gRPC) that
decodes the official protobuf messages. Span names, kinds, attributes, parent/child
structure and metric points; no content unless log_content; headers never in
attributes; a dead collector costs one warning and nothing else."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from faultserver import FaultServer, Outcome
from qwen_dev_cli.core.telemetry import GENAI_DURATION_BOUNDS_S, GENAI_TOKEN_BOUNDS

pytest.importorskip("opentelemetry.sdk", reason="the [otel] extra is not installed")

from .receiver import OtlpGrpcReceiver, OtlpHttpReceiver, Received, attributes, walk

pytestmark = pytest.mark.slow  # every test runs a real `qwen-dev` process

PROMPT = "what does app.py print?"
SECRET_HEADER = ("x-collector-token", "hunter2-header-value")
SPAN_KIND_INTERNAL, SPAN_KIND_CLIENT = 1, 3
STATUS_ERROR = 2


@dataclass
class Run:
    code: int
    out: str
    err: str


async def qwen_dev(*args: str, cwd: Path, env: dict[str, str]) -> Run:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "qwen_dev_cli",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=cwd,
        env={**os.environ, **env},
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode is not None
    return Run(proc.returncode, out.decode(), err.decode())


def config(path: Path, srv: FaultServer, telemetry: str = "") -> Path:
    path.write_text(
        f"""
provider_order = ["lab"]

[providers.lab]
base_url = "{srv.base_url}"
model = "fault-model"

[retry]
max_retries = 2
base_delay = 0.01
max_delay = 0.02

[telemetry]
{telemetry}
""",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    (root / "app.py").write_text("print('hello')\n", encoding="utf-8")
    return root


def script_a_turn_with_a_retry_and_a_tool(srv: FaultServer) -> None:
    call = {"name": "read_file", "arguments": json.dumps({"path": "app.py"})}
    srv.script(
        Outcome.status(503),
        Outcome.ok(tool_calls=[call]),
        Outcome.ok("it prints hello"),
    )


def export_env(rx: Received, **more: str) -> dict[str, str]:
    assert isinstance(rx, OtlpHttpReceiver | OtlpGrpcReceiver)
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": rx.endpoint,
        "OTEL_EXPORTER_OTLP_HEADERS": f"{SECRET_HEADER[0]}={SECRET_HEADER[1]}",
        "OTEL_SERVICE_NAME": "ci-bot",
        "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=ci",
        **more,
    }


def every_value(rx: Received) -> Iterator[str]:
    """Every attribute key and value sent: spans, their events, resources, metrics."""
    for span in rx.spans():
        yield span.name
        for group in [span.attributes, *(event.attributes for event in span.events)]:
            for key, value in attributes(group).items():
                yield key
                yield json.dumps(value)
    for resource in rx.resources():
        for key, value in resource.items():
            yield key
            yield json.dumps(value)
    for request in rx.metrics:
        for resource in request.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    points: Any = getattr(metric, metric.WhichOneof("data") or "sum").data_points
                    for point in points:
                        for key, value in attributes(point.attributes).items():
                            yield key
                            yield json.dumps(value)


def named(rx: Received, name: str) -> list[Any]:
    return [span for span in rx.spans() if span.name == name]


async def test_ask_exports_genai_spans_and_metrics_over_http(workspace: Path) -> None:
    async with FaultServer() as srv:
        script_a_turn_with_a_retry_and_a_tool(srv)
        with OtlpHttpReceiver() as rx:
            cfg = config(workspace.parent / "c.toml", srv)
            run = await qwen_dev(
                "ask", "--json", "--config", str(cfg), PROMPT, cwd=workspace, env=export_env(rx)
            )
            assert run.code == 0, run.err
            assert json.loads(run.out)["text"] == "it prints hello"
    assert "telemetry" not in run.err  # nothing to say: the collector took everything

    parents = {span.name: parent for span, parent in walk(rx.spans())}
    (turn,) = named(rx, "invoke_agent qwen-dev")
    assert turn.kind == SPAN_KIND_INTERNAL
    assert parents["invoke_agent qwen-dev"] is None
    assert attributes(turn.attributes)["gen_ai.operation.name"] == "invoke_agent"

    chats = named(rx, "chat fault-model")
    assert len(chats) == 2  # the tool call's request, then the answer's
    for chat, parent in walk([*chats, turn]):
        if chat.name.startswith("chat"):
            assert parent is turn
            assert chat.kind == SPAN_KIND_CLIENT
    first = min(chats, key=lambda span: span.start_time_unix_nano)
    got = attributes(first.attributes)
    assert got["gen_ai.operation.name"] == "chat"
    assert got["gen_ai.provider.name"] == "lab"
    assert got["gen_ai.request.model"] == "fault-model"
    assert got["gen_ai.response.model"]
    assert got["gen_ai.usage.input_tokens"] > 0
    assert got["gen_ai.usage.output_tokens"] >= 0
    assert got["gen_ai.response.finish_reasons"] == ["tool_calls"]
    assert got["server.address"] == "127.0.0.1"
    assert got["qwen_dev.attempts"] == 2
    assert "error.type" not in got  # the request succeeded
    assert [event.name for event in first.events] == ["qwen_dev.retry"]

    attempts = [span for span, parent in walk(rx.spans()) if parent is first]
    assert sorted(span.name for span in attempts) == ["attempt lab", "attempt lab"]
    failed = min(attempts, key=lambda span: span.start_time_unix_nano)
    assert failed.kind == SPAN_KIND_CLIENT
    assert failed.status.code == STATUS_ERROR
    failed_attrs = attributes(failed.attributes)
    assert failed_attrs["error.type"] == "server_error"
    assert failed_attrs["http.response.status_code"] == 503
    assert failed_attrs["qwen_dev.failure.kind"] == "5xx"

    (tool,) = named(rx, "execute_tool read_file")
    assert tool.kind == SPAN_KIND_INTERNAL
    assert parents["execute_tool read_file"] is turn
    tool_attrs = attributes(tool.attributes)
    assert tool_attrs["gen_ai.tool.name"] == "read_file"
    assert tool_attrs["gen_ai.tool.call.id"]
    assert tool_attrs["qwen_dev.outcome"] == "ok"

    # No content by default, and the exporter's headers reach the collector only.
    sent = list(every_value(rx))
    for secret in (PROMPT, "print('hello')", "it prints hello", *SECRET_HEADER):
        assert not any(secret in value for value in sent), secret
    assert all(h.get(SECRET_HEADER[0]) == SECRET_HEADER[1] for h in rx.headers)
    resource = rx.resources()[0]
    assert resource["service.name"] == "ci-bot"
    assert resource["deployment.environment"] == "ci"

    (duration,) = rx.metric("gen_ai.client.operation.duration")
    assert duration.unit == "s"
    points = list(duration.histogram.data_points)
    assert sum(p.count for p in points) == 2
    assert list(points[0].explicit_bounds) == list(GENAI_DURATION_BOUNDS_S)
    point = attributes(points[0].attributes)
    assert point["gen_ai.operation.name"] == "chat"
    assert (point["gen_ai.provider.name"], point["gen_ai.request.model"]) == ("lab", "fault-model")
    (usage,) = rx.metric("gen_ai.client.token.usage")
    assert usage.unit == "{token}"
    kinds = {attributes(p.attributes)["gen_ai.token.type"] for p in usage.histogram.data_points}
    assert kinds == {"input", "output"}
    assert list(usage.histogram.data_points[0].explicit_bounds) == list(GENAI_TOKEN_BOUNDS)
    (tried,) = rx.metric("qwen_dev.attempts")
    outcomes = {
        attributes(p.attributes)["qwen_dev.outcome"]: p.as_int for p in tried.sum.data_points
    }
    assert outcomes == {"5xx": 1, "ok": 2}
    (retries,) = rx.metric("qwen_dev.retries")
    assert sum(p.as_int for p in retries.sum.data_points) == 1


async def test_content_is_exported_only_with_log_content(workspace: Path) -> None:
    async with FaultServer() as srv:
        script_a_turn_with_a_retry_and_a_tool(srv)
        with OtlpHttpReceiver() as rx:
            # The endpoint from the configuration this time, not the variables.
            cfg = config(
                workspace.parent / "c.toml",
                srv,
                f'otlp_endpoint = "{rx.endpoint}"\nlog_content = true',
            )
            run = await qwen_dev(
                "ask", "--json", "--config", str(cfg), PROMPT, cwd=workspace, env={}
            )
            assert run.code == 0, run.err
    (turn,) = named(rx, "invoke_agent qwen-dev")
    assert PROMPT in attributes(turn.attributes)["gen_ai.input.messages"]
    assert "it prints hello" in attributes(turn.attributes)["gen_ai.output.messages"]
    last = max(named(rx, "chat fault-model"), key=lambda span: span.start_time_unix_nano)
    chat = attributes(last.attributes)
    assert PROMPT in chat["gen_ai.input.messages"]
    output = json.loads(chat["gen_ai.output.messages"])
    assert output[0]["parts"][0] == {"type": "text", "content": "it prints hello"}
    (tool,) = named(rx, "execute_tool read_file")
    tool_attrs = attributes(tool.attributes)
    assert json.loads(tool_attrs["gen_ai.tool.call.arguments"]) == {"path": "app.py"}
    assert "print('hello')" in tool_attrs["gen_ai.tool.call.result"]
    assert rx.resources()[0]["service.name"] == "qwen-dev"


async def test_nothing_planted_reaches_the_collector_without_log_content(
    workspace: Path,
) -> None:
    """The whole of every protobuf message sent (spans, events, statuses, resources,
    metric points: re-encoded, then searched as bytes) holds none of what was planted:
    the provider's API key, the prompt (also quoted back in a 503's message, as servers
    do), a tool's arguments and output, the answer, the collector's header value."""
    key = "sk-planted-key-7c1e9a"
    argument = "planted_argument_5f3a.py"
    (workspace / argument).write_text("print('planted tool output')\n", encoding="utf-8")
    call = {"name": "read_file", "arguments": json.dumps({"path": argument})}
    async with FaultServer() as srv:
        srv.script(
            Outcome.status(503, message=f"overloaded while answering: {PROMPT}"),
            Outcome.ok(tool_calls=[call]),
            Outcome.ok("planted answer text"),
        )
        with OtlpHttpReceiver() as rx:
            cfg = config(workspace.parent / "c.toml", srv)
            text = cfg.read_text(encoding="utf-8")
            planted = 'model = "fault-model"\napi_key_env = "PLANTED_LAB_KEY"\n'
            cfg.write_text(text.replace('model = "fault-model"\n', planted), encoding="utf-8")
            run = await qwen_dev(
                "ask",
                "--json",
                "--config",
                str(cfg),
                PROMPT,
                cwd=workspace,
                env=export_env(rx, PLANTED_LAB_KEY=key),
            )
            assert run.code == 0, run.err
            assert json.loads(run.out)["text"] == "planted answer text"
    # Planted for real: the key went to the model, the tool read the file.
    assert all(r.headers.get("authorization") == f"Bearer {key}" for r in srv.requests)
    assert len(srv.requests) == 3
    assert named(rx, "execute_tool read_file")
    sent = b"".join(
        [*(r.SerializeToString() for r in rx.traces), *(r.SerializeToString() for r in rx.metrics)]
    )
    assert b"chat fault-model" in sent  # the search reaches what was exported
    for secret in (
        key,
        PROMPT,
        "overloaded while answering",
        argument,
        "planted tool output",
        "planted answer text",
        *SECRET_HEADER,
    ):
        assert secret.encode() not in sent, secret


async def test_grpc_export(workspace: Path) -> None:
    async with FaultServer() as srv:
        srv.script(Outcome.ok("plain answer"))
        with OtlpGrpcReceiver() as rx:
            cfg = config(workspace.parent / "c.toml", srv)
            env = export_env(rx, OTEL_EXPORTER_OTLP_PROTOCOL="grpc")
            run = await qwen_dev(
                "ask", "--json", "--config", str(cfg), "hi", cwd=workspace, env=env
            )
            assert run.code == 0, run.err
    (chat,) = named(rx, "chat fault-model")
    assert attributes(chat.attributes)["gen_ai.provider.name"] == "lab"
    assert named(rx, "attempt lab")
    assert "gen_ai.client.operation.duration" in rx.metric_names()
    assert all(h.get(SECRET_HEADER[0]) == SECRET_HEADER[1] for h in rx.headers)


async def test_a_dead_collector_costs_one_warning_and_nothing_else(workspace: Path) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
    async with FaultServer() as srv:
        srv.script(Outcome.ok("answer despite the collector"))
        cfg = config(workspace.parent / "c.toml", srv)
        run = await qwen_dev(
            "ask",
            "--json",
            "--config",
            str(cfg),
            "hi",
            cwd=workspace,
            env={"OTEL_EXPORTER_OTLP_ENDPOINT": dead},
        )
    assert run.code == 0, run.err
    assert json.loads(run.out)["text"] == "answer despite the collector"
    said = [line for line in run.err.splitlines() if "telemetry" in line]
    assert len(said) == 1, run.err
    assert "Traceback" not in run.err


PROBE = """
import sys, runpy
sys.argv = ["qwen-dev", *{args!r}]
try:
    runpy.run_module("qwen_dev_cli", run_name="__main__")
except SystemExit:
    pass
print(sorted({{m.split(".")[0] for m in sys.modules if m.startswith(("opentelemetry", "grpc"))}}))
"""


async def test_without_an_endpoint_nothing_of_opentelemetry_is_imported(
    workspace: Path,
) -> None:
    async with FaultServer() as srv:
        srv.script(Outcome.ok("hi"))
        cfg = config(workspace.parent / "c.toml", srv)
        args = ["ask", "--json", "--config", str(cfg), "hi"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            PROBE.format(args=args),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=workspace,
            env=env,
        )
        out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode == 0, err.decode()
    assert out.decode().strip().splitlines()[-1] == "[]"


async def test_batch_exports_one_chat_span_per_prompt_with_its_own_attempts(
    workspace: Path,
) -> None:
    """Concurrent requests in one process keep their attempts apart."""
    prompts = workspace / "in.jsonl"
    lines = [json.dumps({"id": f"p{i}", "prompt": f"question {i}"}) for i in range(4)]
    prompts.write_text("\n".join(lines) + "\n", encoding="utf-8")
    async with FaultServer() as srv:
        srv.script(Outcome.status(503), Outcome.status(502))  # two prompts need a retry
        with OtlpHttpReceiver() as rx:
            cfg = config(workspace.parent / "c.toml", srv)
            args = [str(prompts), "-o", str(workspace / "out.jsonl"), "--config", str(cfg)]
            run = await qwen_dev(
                "batch", *args, "--concurrency", "4", cwd=workspace, env=export_env(rx)
            )
            assert run.code == 0, run.err
    spans = rx.spans()
    chats = [span for span in spans if span.name == "chat fault-model"]
    assert len(chats) == 4
    children = {chat.span_id: 0 for chat in chats}
    for span, parent in walk(spans):
        if span.name == "attempt lab":
            assert parent is not None
            children[parent.span_id] += 1
    assert sorted(children.values()) == [1, 1, 2, 2]
    for chat in chats:
        assert attributes(chat.attributes)["qwen_dev.attempts"] == children[chat.span_id]
        assert not chat.parent_span_id  # no agent turn in a batch: each request a root
    (duration,) = rx.metric("gen_ai.client.operation.duration")
    assert sum(p.count for p in duration.histogram.data_points) == 4
