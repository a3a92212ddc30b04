"""Provider kinds as objects: the table and the config's choice agree, every provider
knows its window, a kind's rate-limit dialect is what its provider reads, and a new
kind is one table entry (built, probed and given a first-byte deadline without a line
elsewhere). Real HTTP against the fault server."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Mapping
from dataclasses import fields
from typing import TYPE_CHECKING, cast, get_args

import pytest

from faultserver import FaultServer
from qwen_dev_cli.agent.context import ContextBudget
from qwen_dev_cli.config.schema import PROVIDER_KEYS
from qwen_dev_cli.core import ChatRequest, LLMClient, ProviderSetupError
from qwen_dev_cli.core.declarations import declared
from qwen_dev_cli.core.providers.kinds import (
    DEFAULT_KIND,
    KINDS,
    LLAMA_CPP,
    OPENAI,
    ProviderKindSpec,
    kind_of,
    remote_first_byte,
)
from qwen_dev_cli.core.providers.probes import probe_by_request
from qwen_dev_cli.core.settings import (
    DEFAULT_CONTEXT_WINDOW,
    FIRST_BYTE_TIMEOUT,
    LOCAL_CONTEXT_WINDOW,
    ProviderKind,
    ProviderSettings,
)
from qwen_dev_cli.core.types import (
    ProviderChunk,
    ProviderReply,
    RateLimitHeaders,
    TextDelta,
    Usage,
)

if TYPE_CHECKING:
    import httpx

USER = [{"role": "user", "content": "hello there"}]


def test_the_table_and_the_config_choice_name_the_same_kinds() -> None:
    assert set(KINDS) == set(get_args(ProviderKind))
    check = PROVIDER_KEYS["kind"].setting.check
    assert check is not None
    assert set(check.choices) == set(KINDS)
    assert ProviderSettings(name="p", model="m").kind == DEFAULT_KIND
    # The starter file's line for `kind` says what each one is.
    (kind_field,) = [f for f in fields(ProviderSettings) if f.name == "kind"]
    declaration = declared(kind_field)
    assert declaration is not None
    for name in KINDS:
        assert f'"{name}"' in declaration.doc


def test_each_kind_knows_its_own_behaviour() -> None:
    remote = ProviderSettings(name="r", model="m", base_url="https://api.example.com/v1")
    local = ProviderSettings(name="l", model="m", kind="llama-cpp")
    assert kind_of(remote) is OPENAI
    assert kind_of(local) is LLAMA_CPP
    assert (OPENAI.in_process, LLAMA_CPP.in_process) == (False, True)
    # A local model is the file it loads: --model and /model cannot rename it.
    assert (OPENAI.model_switchable, LLAMA_CPP.model_switchable) == (True, False)
    assert OPENAI.default_context_window == DEFAULT_CONTEXT_WINDOW
    assert LLAMA_CPP.default_context_window == LOCAL_CONTEXT_WINDOW
    assert OPENAI.missing({"model": "m"}) == "base_url"
    assert LLAMA_CPP.missing({}) == "model"
    # A local model may be named by its file alone.
    assert LLAMA_CPP.missing({"model_path": "/models/tiny.gguf"}) is None
    assert LLAMA_CPP.defaults({"model_path": "/models/tiny.gguf"})["model"] == "tiny"


def test_an_unknown_kind_is_an_error_not_another_kinds_behaviour() -> None:
    # Settings built in code are not checked by the configuration.
    odd = ProviderSettings(name="odd", model="m", kind=cast("ProviderKind", "vllm"))
    for attempt in (lambda: kind_of(odd), lambda: kind_of(odd).build(odd), odd.first_byte_deadline):
        with pytest.raises(ProviderSetupError, match="unknown provider kind 'vllm'") as caught:
            attempt()
        assert caught.value.provider == "odd"


def test_every_provider_built_from_settings_knows_its_window() -> None:
    def built(**kwargs: object) -> int:
        settings = ProviderSettings(name="p", model="m", **kwargs)  # type: ignore[arg-type]  # keywords checked by the dataclass
        return kind_of(settings).build(settings).context_window

    url = "http://127.0.0.1:9/v1"
    assert built(base_url=url, context_window=32768) == 32768
    assert built(base_url=url) == DEFAULT_CONTEXT_WINDOW
    # The in-process model's window is the n_ctx it allocates (not loaded here).
    assert built(kind="llama-cpp", context_window=4096) == 4096
    assert built(kind="llama-cpp") == LOCAL_CONTEXT_WINDOW


async def test_the_openai_kind_reads_rate_limits_in_its_dialect() -> None:
    seen: list[Mapping[str, str]] = []

    def dialect(headers: Mapping[str, str]) -> RateLimitHeaders | None:
        seen.append(headers)
        return RateLimitHeaders(remaining_requests=7)

    async with FaultServer(rpm=100) as server:
        settings = ProviderSettings(name="lab", model="m", base_url=server.base_url)
        request = ChatRequest(list(USER))
        standard = OPENAI.build(settings)
        other = dataclasses.replace(OPENAI, rate_limit_headers=dialect).build(settings)
        silent = dataclasses.replace(OPENAI, rate_limit_headers=None).build(settings)
        try:
            # The fault server sends OpenAI's x-ratelimit-* headers.
            assert (await standard.chat(request)).rate_limit == RateLimitHeaders(99)
            assert (await other.chat(request)).rate_limit == RateLimitHeaders(7)
            assert "x-ratelimit-remaining-requests" in seen[0]
            assert (await silent.chat(request)).rate_limit is None
        finally:
            for provider in (standard, other, silent):
                await provider.aclose()


# --- a new kind is one entry in a table --------------------------------------------------


class EchoProvider:
    """A new wire protocol, as far as the client can tell: it answers with the last
    user message."""

    def __init__(self, settings: ProviderSettings, window: int) -> None:
        self.name = settings.name
        self.model = settings.model
        self.max_tokens = settings.max_tokens
        self.context_window = window

    async def chat(self, request: ChatRequest) -> ProviderReply:
        text = f"echo: {request.messages[-1]['content']}"
        return ProviderReply(text, [], Usage(3, 2, 5), self.model, finish_reason="stop")

    async def stream(self, request: ChatRequest) -> AsyncIterator[ProviderChunk]:
        reply = await self.chat(request)
        yield TextDelta(reply.text)
        yield reply

    async def aclose(self) -> None:
        return None


def _echo(
    spec: ProviderKindSpec, settings: ProviderSettings, transport: httpx.AsyncBaseTransport | None
) -> EchoProvider:
    return EchoProvider(settings, settings.context_window or spec.default_context_window)


ECHO = ProviderKindSpec(
    "echo",
    required=("base_url", "model"),
    requirement="needs base_url and model",
    default_context_window=16384,
    in_process=False,
    model_switchable=True,
    first_byte=remote_first_byte,
    builder=_echo,
    prober=probe_by_request,
)


async def test_a_new_kind_needs_only_a_table_entry() -> None:
    table = {**KINDS, ECHO.name: ECHO}
    settings = ProviderSettings(
        name="echoes",
        kind=cast("ProviderKind", ECHO.name),
        model="parrot",
        base_url="https://echo.example/v1",
    )
    spec = kind_of(settings, table)
    assert spec is ECHO
    # Its table is checked and completed as the configuration does it.
    assert spec.missing({"model": "parrot"}) == "base_url"
    assert spec.defaults({"model": "parrot"})["context_window"] == 16384
    # A remote kind is not silently given an in-process model's (absent) deadline.
    assert spec.first_byte_deadline(settings) == FIRST_BYTE_TIMEOUT
    provider = spec.build(settings)
    assert ContextBudget.for_providers([provider]).window == 16384
    client = LLMClient([provider])
    try:
        assert (await client.chat(list(USER))).text == "echo: hello there"
    finally:
        await client.aclose()
    probed = await spec.probe(settings, seconds=5.0)
    assert (probed.ok, probed.detail, probed.latency_ms is not None) == (True, "answers", True)
    # The real table is untouched.
    assert ECHO.name not in KINDS
