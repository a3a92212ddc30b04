"""Driving the agent against the fault server: scripted tool calls, native or as text,
and what the model received in return."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from faultserver import FaultServer, Outcome
from qwen_dev_cli.agent import Agent
from qwen_dev_cli.agent.approval import ApprovalMode
from qwen_dev_cli.agent.turn import (
    AgentEvent,
    ApprovalDecision,
    ApprovalRequest,
    Approver,
    DenyAll,
    ToolCallFinished,
)
from qwen_dev_cli.core import LLMClient, OpenAICompatProvider, RetryPolicy

Protocol = Literal["native", "text"]
PROTOCOLS: list[Protocol] = ["native", "text"]
#: Quick retries: a test waits milliseconds, not seconds, on a scripted failure.
FAST_RETRY = RetryPolicy(max_retries=1, base_delay=0.01, max_delay=0.02)


def calls(protocol: Protocol, *wanted: tuple[str, dict[str, Any]], prose: str = "") -> Outcome:
    """An answer that calls tools, the way a model on ``protocol`` would write it."""
    if protocol == "native":
        specs = [{"name": name, "arguments": json.dumps(args)} for name, args in wanted]
        return Outcome.ok(text=prose or None, tool_calls=specs)
    blocks = [
        f"<tool_call>\n{json.dumps({'name': name, 'arguments': args})}\n</tool_call>"
        for name, args in wanted
    ]
    return Outcome.ok(text="\n".join([prose, *blocks] if prose else blocks))


def xml_call(name: str, **parameters: object) -> str:
    """A call in Qwen3-Coder's XML, as its chat template writes one."""
    body = "".join(
        f"<parameter={key}>\n{value if isinstance(value, str) else json.dumps(value)}\n"
        "</parameter>\n"
        for key, value in parameters.items()
    )
    return f"<tool_call>\n<function={name}>\n{body}</function>\n</tool_call>"


def tool_results(body: dict[str, Any]) -> list[str]:
    """The tool results of a chat request, in order, as the model received them."""
    out: list[str] = []
    for message in body["messages"]:
        if message["role"] == "tool":
            out.append(message["content"])
        elif message["role"] == "user" and "<tool_response>" in message["content"]:
            out += re.findall(
                r"<tool_response>\n(.*?)\n</tool_response>", message["content"], re.DOTALL
            )
    return out


@dataclass
class Recorder:
    """An interactive user who answers from a script (yes by default)."""

    answers: list[ApprovalDecision] = field(default_factory=list)
    asked: list[ApprovalRequest] = field(default_factory=list)

    async def approve(self, request: ApprovalRequest) -> ApprovalDecision:
        self.asked.append(request)
        return self.answers.pop(0) if self.answers else ApprovalDecision(True)


@dataclass
class Harness:
    server: FaultServer
    client: LLMClient
    workspace: Path
    home: Path
    events: list[AgentEvent] = field(default_factory=list)
    #: One per provider, when each has its own (:func:`labs`).
    servers: list[FaultServer] = field(default_factory=list)

    def agent(
        self,
        approval: ApprovalMode = "ask",
        approver: Approver | None = None,
        *,
        interactive: bool = False,
        max_steps: int = 25,
    ) -> Agent:
        return Agent(
            self.client,
            workspace=self.workspace,
            approval=approval,
            approver=approver or DenyAll(),
            interactive=interactive,
            max_steps=max_steps,
            home=self.home,
        )

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return bodies(self.server)

    def finished(self) -> list[ToolCallFinished]:
        return [e for e in self.events if isinstance(e, ToolCallFinished)]


@asynccontextmanager
async def harness(
    tmp_path: Path, protocol: Protocol, *, providers: int = 1
) -> AsyncIterator[Harness]:
    workspace = tmp_path / "ws"
    home = tmp_path / "home"
    workspace.mkdir(exist_ok=True)
    home.mkdir(exist_ok=True)
    async with FaultServer(text="Done.") as server:
        native = protocol == "native"
        made = [
            OpenAICompatProvider(
                f"lab{i}", base_url=server.base_url, model="m", native_tools=native or i > 0
            )
            for i in range(providers)
        ]
        client = LLMClient(made, retry=FAST_RETRY)
        try:
            yield Harness(server, client, workspace, home)
        finally:
            await client.aclose()


def bodies(server: FaultServer) -> list[dict[str, Any]]:
    """The chat requests ``server`` received, in order."""
    return [r.json for r in server.requests if r.path == "/v1/chat/completions"]


@dataclass(frozen=True)
class Lab:
    """A provider of its own, on its own fault server."""

    native_tools: bool
    model: str = "m"
    tool_format: str = "auto"


@asynccontextmanager
async def labs(tmp_path: Path, *specs: Lab) -> AsyncIterator[Harness]:
    """A harness whose providers (``lab0``, ``lab1``... in failover order) each have
    their own server (``h.servers``), so each one's requests can be told apart."""
    workspace = tmp_path / "ws"
    home = tmp_path / "home"
    workspace.mkdir(exist_ok=True)
    home.mkdir(exist_ok=True)
    servers = [FaultServer(text="Done.") for _ in specs]
    for server in servers:
        await server.start()
    made = [
        OpenAICompatProvider(
            f"lab{i}",
            base_url=server.base_url,
            model=spec.model,
            native_tools=spec.native_tools,
            tool_format=spec.tool_format,
        )
        for i, (server, spec) in enumerate(zip(servers, specs, strict=True))
    ]
    client = LLMClient(made, retry=FAST_RETRY)
    try:
        yield Harness(servers[0], client, workspace, home, servers=servers)
    finally:
        await client.aclose()
        for server in servers:
            await server.stop()
