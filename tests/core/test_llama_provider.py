"""The in-process provider's own behaviour around llama-cpp-python, on a stand-in model
(fast, and without llama-cpp-python installed); the real model is exercised in
``tests/test_offline.py``."""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from qwen_dev_cli.agent.context import context_error, window_in_error
from qwen_dev_cli.core import LLMClient, RetryPolicy, StreamEnd, TextDelta
from qwen_dev_cli.core.errors import ContextLengthExceeded, LLMError, ProviderSetupError
from qwen_dev_cli.core.providers.llama_cpp import FINISH_REPETITION, LlamaCppProvider
from qwen_dev_cli.core.providers.llama_prefix import PrefixReuse, prompt_tokens
from qwen_dev_cli.core.providers.llama_state_cache import PrefixStateCache
from qwen_dev_cli.core.types import ChatRequest

QUESTION = [{"role": "user", "content": "Write a very long story about a lighthouse."}]
SENTENCE = "The lighthouse was a small, weathered structure on the coast. "


class StandInLlama:
    """Streams ``pieces`` as llama-cpp-python's chat completion chunks do."""

    def __init__(self, pieces: Iterator[str] | None = None, error: Exception | None = None):
        self.pieces = pieces
        self.error = error
        self.n_tokens = 0
        self.produced = 0
        self.closed = False

    def n_ctx(self) -> int:
        return 8192

    def create_chat_completion(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        if self.error is not None:
            raise self.error
        return self._stream(kwargs.get("max_tokens") or 100_000)

    def _stream(self, limit: int) -> Iterator[dict[str, Any]]:
        assert self.pieces is not None
        try:
            for piece in itertools.islice(self.pieces, limit):
                self.produced += 1
                yield {"choices": [{"delta": {"content": piece}, "finish_reason": None}]}
            yield {"choices": [{"delta": {}, "finish_reason": "length"}]}
        finally:
            self.closed = True


def provider_on(llama: StandInLlama) -> LlamaCppProvider:
    provider = LlamaCppProvider("local", model="stand-in")
    provider._llama = llama  # loaded already: the stand-in is the model
    return provider


def words(text: str) -> list[str]:
    return [w + " " for w in text.split()]


async def test_a_looping_answer_stops_with_finish_reason_repetition() -> None:
    story = words("Once upon a time an old keeper climbed the stairs every night.")
    llama = StandInLlama(itertools.chain(story, itertools.cycle(words(SENTENCE))))
    provider = provider_on(llama)
    deltas: list[str] = []
    slept: list[float] = []

    async def sleep(seconds: float) -> None:  # a failed attempt must not cost real time
        slept.append(seconds)

    client = LLMClient([provider], sleep=sleep)
    async for event in client.stream(QUESTION, max_tokens=4000):
        if isinstance(event, TextDelta):
            deltas.append(event.text)
        elif isinstance(event, StreamEnd):
            result = event.result
    await client.aclose()
    assert result.finish_reason == FINISH_REPETITION
    assert result.text == "".join(deltas)
    assert len(deltas) < 1000  # not the 4,000 asked for
    assert llama.closed  # generation was stopped, not just ignored
    assert result.usage.completion_tokens == len(deltas)
    assert slept == []  # answered by the first attempt


async def test_a_long_answer_that_does_not_loop_runs_to_its_cap() -> None:
    counting = (f"item{n}, " for n in itertools.count())
    provider = provider_on(StandInLlama(counting))
    reply = await provider.chat(ChatRequest(QUESTION, max_tokens=3000))
    assert reply.finish_reason == "length"
    assert reply.usage is not None
    assert reply.usage.completion_tokens == 3000


async def test_the_guard_can_be_turned_off() -> None:
    provider = provider_on(StandInLlama(itertools.cycle(words(SENTENCE))))
    provider.stop_repetition = False
    reply = await provider.chat(ChatRequest(QUESTION, max_tokens=2000))
    assert reply.finish_reason == "length"


@pytest.mark.parametrize(
    "message",
    [
        "Requested tokens (8222) exceed context window of 8192",
        "Requested tokens (9000) exceed context window of 8192",
    ],
)
async def test_llama_cpps_context_refusal_is_a_context_length_error(message: str) -> None:
    provider = provider_on(StandInLlama(error=ValueError(message)))
    client = LLMClient([provider], retry=RetryPolicy(max_retries=0))
    with pytest.raises(LLMError) as caught:
        await client.chat(QUESTION)
    await client.aclose()
    refusal = context_error(caught.value)
    assert isinstance(refusal, ContextLengthExceeded)
    # Worded so the agent learns the window, as from an OpenAI-compatible server.
    assert window_in_error(refusal) == 8192
    assert "8192" in str(refusal)


def test_a_failing_prefix_cache_never_fails_the_request(tmp_path: Path) -> None:
    class Broken:
        def __getattr__(self, name: str) -> Any:
            raise RuntimeError(f"llama.cpp is having a bad day ({name})")

    reuse = PrefixReuse(PrefixStateCache(tmp_path / "states"))
    system = {"role": "system", "content": "rules " * 200}
    assert reuse.prepare(Broken(), [system], list(range(400))) == "failed"


async def test_missing_model_file_is_a_clear_error(tmp_path: Path) -> None:
    provider = LlamaCppProvider("local", model="x", model_path=tmp_path / "nope.gguf")
    with pytest.raises(ProviderSetupError, match="does not exist"):
        await provider.chat(ChatRequest(QUESTION))
    await provider.aclose()


async def test_without_llama_cpp_the_local_provider_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # as if the [local] extra were absent
    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF")
    provider = LlamaCppProvider("local", model="x", model_path=model)
    with pytest.raises(ProviderSetupError, match="llama-cpp-python is not installed") as caught:
        await provider.chat(ChatRequest(QUESTION))
    await provider.aclose()
    assert "pip install 'qwen-dev-cli[local]'" in str(caught.value)
    # The prefix cache steps aside rather than failing first with an ImportError.
    assert prompt_tokens(StandInLlama(), QUESTION) is None
