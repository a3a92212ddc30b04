"""The offline default: the real SmolLM2 model through llama.cpp, in process."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import pexpect
import pytest

from qwen_dev_cli.agent.context import context_error, window_in_error
from qwen_dev_cli.agent.prompt import build_system_prompt
from qwen_dev_cli.core import LLMClient, ProviderSetupError, RetryPolicy, StreamEnd, TextDelta
from qwen_dev_cli.core.errors import ContextLengthExceeded, LLMError
from qwen_dev_cli.core.providers.llama_cpp import (
    LlamaCppProvider,
    default_model_path,
    plain_messages,
)
from qwen_dev_cli.core.providers.llama_prefix import PrefixReuse, prompt_tokens
from qwen_dev_cli.core.providers.llama_state_cache import PrefixStateCache, common_length
from qwen_dev_cli.core.providers.repetition import RepetitionGuard
from qwen_dev_cli.core.types import ChatRequest
from qwen_dev_cli.session.store import SessionStore
from qwen_dev_cli.tools import DEFAULT_TOOLS, Workspace

from .conftest import requires_llama_cpp
from .test_cli_ask import qwen_dev
from .ui.test_repl_pty import PROMPT, Terminal

pytestmark = [pytest.mark.slow, requires_llama_cpp]

QUESTION = [{"role": "user", "content": "Name one primary colour."}]


def test_the_default_model_is_installed() -> None:
    # scripts/bootstrap installs it; without it every test below would fail obscurely.
    path = default_model_path()
    assert path is not None, "offline model missing: run scripts/bootstrap"
    assert path.stat().st_size > 50_000_000


async def test_ask_answers_offline_with_no_keys_configured() -> None:
    run = await qwen_dev("ask", "--json", "Name one primary colour.")
    assert run.code == 0, run.err
    payload = run.json()
    assert payload["provider"] == "local"
    assert payload["text"].strip()
    assert payload["usage"]["completion_tokens"] > 0
    assert payload["usage"]["prompt_tokens"] > 0
    assert "answering offline" in run.err


async def test_local_model_streams_through_the_client() -> None:
    provider = LlamaCppProvider("local", model="SmolLM2-135M-Instruct", max_tokens=48)
    client = LLMClient([provider])
    deltas = []
    async for event in client.stream(QUESTION):
        if isinstance(event, TextDelta):
            deltas.append(event.text)
        elif isinstance(event, StreamEnd):
            final = event.result
    await client.aclose()
    assert len(deltas) > 1
    assert "".join(deltas) == final.text
    assert client.get_metrics()["providers"]["local"]["success"] == 1


async def test_cancelling_stops_generation_and_frees_the_model() -> None:
    provider = LlamaCppProvider("local", model="SmolLM2-135M-Instruct", max_tokens=4000)
    story = [{"role": "user", "content": "Write a very long story about a lighthouse."}]
    first_token = asyncio.Event()

    async def consume() -> None:
        async for chunk in provider.stream(ChatRequest(story)):
            if isinstance(chunk, TextDelta):
                first_token.set()

    task = asyncio.create_task(consume())
    await first_token.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The model is free again: a short request completes (the worker thread saw the
    # cancellation and released the model instead of writing 4000 tokens).
    reply = await provider.chat(ChatRequest(QUESTION, max_tokens=8))
    assert reply.usage is not None
    assert reply.usage.completion_tokens <= 8


async def test_corrupt_model_file_is_a_clear_error(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.gguf"
    corrupt.write_bytes(b"GGUF" + b"\x00garbage" * 100)
    provider = LlamaCppProvider("local", model="x", model_path=corrupt)
    with pytest.raises(ProviderSetupError, match="not a usable GGUF"):
        await provider.chat(ChatRequest(QUESTION))


async def test_corrupt_model_exits_4_through_the_cli(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.gguf"
    corrupt.write_bytes(b"not a model at all")
    config = tmp_path / "c.toml"
    config.write_text(
        f'provider_order = ["local"]\n[providers.local]\nmodel_path = "{corrupt}"\n',
        encoding="utf-8",
    )
    run = await qwen_dev("ask", "--config", str(config), "hello")
    assert run.code == 4
    assert "not a usable GGUF" in run.err
    assert "Traceback" not in run.err


def test_the_repl_streams_an_offline_answer_in_a_terminal(tmp_path: Path, qwen_home: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    child = pexpect.spawn(
        sys.executable,
        ["-m", "qwen_dev_cli"],  # no config: the built-in default, the local model
        cwd=str(workspace),
        env={**os.environ, "TERM": "xterm-256color"},
        dimensions=(40, 160),
        encoding="utf-8",
        timeout=180,  # the first offline turn processes the whole system prompt
    )
    terminal = Terminal(child)
    terminal.expect("local CLOSED")
    terminal.sendline("Name one primary colour.")
    terminal.expect_exact("─ local · SmolLM2-135M-Instruct")  # the turn's summary line
    terminal.expect(PROMPT)
    assert terminal.leave() == 0
    [info] = SessionStore(qwen_home / "sessions").list()
    answer = SessionStore(qwen_home / "sessions").load(info.id).messages[-1]
    assert answer["role"] == "assistant"
    assert answer["content"].strip()


def test_fifteen_offline_turns_in_a_4096_token_window_all_answered(
    tmp_path: Path, qwen_home: Path
) -> None:
    """The issue's offline case: a 4,096-token window, a ~1,400-token system prompt.
    Notes long enough that the conversation outgrows the window: it is compacted (by
    the model itself) and no turn fails. Short answers keep the wall time down."""
    workspace = tmp_path / "ws"
    workspace.mkdir()
    config = tmp_path / "c.toml"
    config.write_text(
        'provider_order = ["local"]\n[providers.local]\ncontext_window = 4096\nmax_tokens = 24\n',
        encoding="utf-8",
    )
    child = pexpect.spawn(
        sys.executable,
        ["-m", "qwen_dev_cli", "--config", str(config)],
        cwd=str(workspace),
        env={**os.environ, "TERM": "xterm-256color"},
        dimensions=(40, 200),
        encoding="utf-8",
        timeout=180,
    )
    terminal = Terminal(child)
    terminal.expect("local CLOSED")
    note = " ".join(f"fact{n} is kept." for n in range(40))  # ~150 tokens
    for turn in range(15):
        terminal.sendline(f"Note {turn}: {note} Reply OK.")
        while True:  # a small model may call a tool: decline whatever it asks
            index = child.expect(["─ local · SmolLM2", r"\[n\]o", "✗ "])
            if index == 1:
                child.send("n")
                continue
            assert index == 0, f"turn {turn} failed: {child.before[-300:]}"
            break
        terminal.expect(PROMPT)
    assert terminal.leave() == 0
    [info] = SessionStore(qwen_home / "sessions").list()
    loaded = SessionStore(qwen_home / "sessions").load(info.id)
    turns = [e for e in loaded.events if e["type"] == "turn"]
    assert len(turns) == 15
    assert loaded.compactions >= 1


# --- the saved prompt prefix, the loop guard, the context limit ---------------------


def agent_messages(workspace: Path, question: str) -> list[dict[str, str]]:
    """What the agent sends the local model: its real system prompt (rules and the
    tool schemas, ~1,400 tokens) and one question."""
    system = build_system_prompt(workspace=Workspace(workspace), tools=DEFAULT_TOOLS, native=False)
    return [{"role": "system", "content": system}, {"role": "user", "content": question}]


async def test_temperature_0_answers_are_identical_with_and_without_the_prefix_cache(
    tmp_path: Path,
) -> None:
    messages = agent_messages(tmp_path, "What does the grep tool do?")
    request = ChatRequest(messages, max_tokens=48, temperature=0.0)
    cache = PrefixStateCache(tmp_path / "states")
    answers = []
    # No cache (one prefill of the whole prompt), a cold cache (the prefix evaluated
    # alone and saved), a warm one (restored in a fresh model, as a new process does).
    for state_cache in (None, cache, cache):
        provider = LlamaCppProvider("local", model="SmolLM2", state_cache=state_cache)
        answers.append((await provider.chat(request)).text)
        await provider.aclose()
    assert len(list(cache.directory.glob("*.kv"))) == 1
    assert answers[0].strip()
    assert answers[1] == answers[0]
    assert answers[2] == answers[0]


async def test_a_new_workspace_starts_from_another_workspaces_saved_prefix(
    tmp_path: Path,
) -> None:
    """The two prompts share all but the workspace's part: the other's saved state is
    restored, cut where they part, and the answer is the one a cold prefill gives."""
    there, here = tmp_path / "there", tmp_path / "a-project-here"
    there.mkdir()
    here.mkdir()
    cache = PrefixStateCache(tmp_path / "states")
    saver = LlamaCppProvider("local", model="SmolLM2", state_cache=cache)
    await saver.chat(ChatRequest(agent_messages(there, "Hi."), max_tokens=4, temperature=0.0))
    await saver.aclose()
    [saved] = cache.directory.glob("*.kv")

    request = ChatRequest(
        agent_messages(here, "What does the grep tool do?"), max_tokens=48, temperature=0.0
    )
    cold = LlamaCppProvider("local", model="SmolLM2")
    expected = (await cold.chat(request)).text
    await cold.aclose()

    provider = LlamaCppProvider("local", model="SmolLM2", state_cache=cache)
    messages = plain_messages(request.messages)

    def prepare(llama: Any) -> tuple[str, int, int]:
        tokens = prompt_tokens(llama, messages)
        assert tokens is not None
        outcome = PrefixReuse(cache).prepare(llama, messages, tokens)
        return outcome, llama.n_tokens, common_length(tokens, llama.input_ids.tolist())

    outcome, held, matching = provider.run_on_worker(prepare)
    assert outcome == "extended"
    assert matching >= held > 1000  # the context holds this prompt's own prefix
    answer = (await provider.chat(request)).text  # goes on from the prefix held
    await provider.aclose()
    assert expected.strip()
    assert answer == expected
    assert saved.exists()
    assert len(list(cache.directory.glob("*.kv"))) == 2  # and here's prefix is saved


async def test_a_prompt_longer_than_the_window_is_a_context_length_error() -> None:
    provider = LlamaCppProvider("local", model="SmolLM2", n_ctx=512)
    client = LLMClient([provider], retry=RetryPolicy(max_retries=0))
    long_question = [{"role": "user", "content": "Summarise: " + "the cat sat. " * 300}]
    with pytest.raises(LLMError) as caught:
        await client.chat(long_question)
    await client.aclose()
    refusal = context_error(caught.value)
    assert isinstance(refusal, ContextLengthExceeded)
    assert window_in_error(refusal) == 512  # the agent compacts to this window


def test_the_loop_guard_on_the_models_own_tokens() -> None:
    # The pieces the provider streams are SmolLM2's tokens, detokenized one by one.
    path = default_model_path()
    assert path is not None
    from llama_cpp import Llama

    vocab = Llama(model_path=str(path), vocab_only=True, verbose=False)

    def stopped(text: str) -> bool:
        guard = RepetitionGuard()
        tokens = vocab.tokenize(text.encode(), add_bos=False)
        return any(guard.feed(vocab.detokenize([t]).decode(errors="replace")) for t in tokens)

    story = "The keeper climbed the stairs of the old lighthouse every night.\n\n"
    loop = (
        "The lighthouse was a small, weathered structure on the coast, a testament to the "
        "human capacity for beauty and the human capacity for darkness.\n\n"
    )
    assert stopped(story + loop * 40)
    similar = "".join(f"        self.x{i} = x{i}\n" for i in range(300))
    zeros = "grid = [\n" + "".join("    [" + ", ".join(["0"] * 16) + "],\n" for _ in range(16))
    table = "| a | b |\n|---|---|\n" + "| - | - |\n" * 60
    tests = "".join(f"def test_{i}():\n    assert f({i}) == {i * i}\n\n" for i in range(120))
    for legit in (similar, zeros, table, tests):
        assert not stopped(legit)
