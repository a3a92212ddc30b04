"""Reusing the evaluated prompt prefix of the in-process model across processes.

llama-cpp-python already reuses, within one process, the part of the context that
the previous request shares with the next (``generate`` compares its ``input_ids``
with the new prompt and keeps the longest common prefix). A new process starts
empty, so every ``qwen-dev ask`` prefilled the ~1,400 tokens of system prompt and
tool schemas again: seconds on a small machine.

:class:`PrefixReuse` makes the fixed prefix of a conversation survive the process:

- the prefix is found from the chat template's output, not assumed: the prompt is
  rendered (by llama-cpp-python's own chat handler, stopped just before it would
  generate) for the system message followed by two different user messages; the
  tokens the two renderings share are what every conversation with this system
  message starts with. A new prompt text or template moves the prefix with it.
- before a request, if the context does not hold that prefix already, the saved
  state of sequence 0 (``llama_state_seq_get_data``: the KV cells of the prefix) is
  restored from :class:`~.llama_state_cache.PrefixStateCache`; on a miss the prefix
  is evaluated alone, saved, and the request goes on from there. Either way the
  request then evaluates only its own suffix, and llama-cpp-python's prefix matching
  decides what is reused, so a restore can never change which tokens the model sees.
- a miss is rarely total: the prompt of a new workspace shares its identity, rules
  and tool listing (all but its last few dozen tokens) with the prompts of the workspaces
  already saved. The saved entry sharing the longest start with the prefix is
  restored, its cells past the shared tokens are dropped (``llama_memory_seq_rm``, as
  llama-cpp-python does within a process when a prompt parts from the last one), and
  only the rest of the prefix is evaluated, then saved under its own key. A cell
  depends only on the tokens at and before its position, so the cells kept are those
  a prefill of the shared tokens would compute.

The state is restored into llama.cpp only after the cache has checked it (size,
digest, key); llama.cpp checks it again (layer count, types, row sizes) and the
restored sequence must end exactly at the prefix's last position, or it is discarded
and the prefix evaluated afresh.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import logging
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

from .llama_state_cache import PrefixKey, PrefixStateCache, common_length, token_digest

log = logging.getLogger(__name__)

#: A shorter shared prefix is cheap to prefill: not worth a file.
MIN_PREFIX_TOKENS = 128
#: System messages whose prefix is remembered in this process.
_MEMO_SIZE = 8
_PROBES = ("A", "B")
_SEQUENCE = 0  # llama-cpp-python evaluates everything as sequence 0


class _Captured(Exception):
    """Control flow: the rendered prompt, caught before any generation."""

    def __init__(self, tokens: list[int]) -> None:
        super().__init__("prompt captured")
        self.tokens = tokens


class _PromptProbe:
    """Stands in for the ``Llama`` a chat handler is given: everything is the real
    model's, except ``create_completion``, which hands back the prompt's tokens
    instead of generating."""

    def __init__(self, llama: Any) -> None:
        self._llama = llama

    def __getattr__(self, name: str) -> Any:
        return getattr(self._llama, name)

    def create_completion(self, prompt: Any, **_: Any) -> Any:
        raise _Captured([int(token) for token in prompt])


def prompt_tokens(llama: Any, messages: list[Any]) -> list[int] | None:
    """The tokens ``llama.create_chat_completion(messages=messages)`` would evaluate,
    rendered by the model's own chat handler; None if the handler does not go through
    ``create_completion`` or fails (the real request will say why)."""
    try:
        from llama_cpp import Llama
    except ImportError:  # the provider's loading says what to install (``_load``)
        return None
    # Passed as `self` to the unbound method: llama-cpp-python picks the chat handler
    # and renders the template exactly as for the real request, then calls the
    # probe's create_completion. (Duck-typed: it is not a Llama.)
    probe: Any = _PromptProbe(llama)
    try:
        Llama.create_chat_completion(probe, messages=messages)
    except _Captured as captured:
        return captured.tokens
    except Exception as exc:  # a template may refuse; the real request reports it
        log.debug("rendering the prompt for the prefix cache failed: %s", exc)
    return None


class PrefixReuse:
    """Keeps the fixed prefix of each conversation evaluated, restoring it from disk.

    Args:
        cache: the file store; None keeps only llama-cpp-python's in-process reuse.
    """

    def __init__(self, cache: PrefixStateCache | None) -> None:
        self.cache = cache
        self._stable: OrderedDict[str, list[int] | None] = OrderedDict()
        self._identity: tuple[str, str, str] | None = None

    def prepare(self, llama: Any, messages: list[Any], tokens: list[int] | None) -> str:
        """Make the context hold the prefix of ``tokens`` (the request's prompt); what
        happened, for logs and tests: ``none``, ``kept``, ``restored`` (its own saved
        state), ``extended`` (another prefix's saved state, cut where they part, and
        the rest evaluated and saved), ``saved`` (evaluated whole and saved) or
        ``failed``. Never raises: the request goes on as if there were no cache."""
        if self.cache is None or tokens is None:
            return "none"
        try:
            return self._prepare(llama, messages, tokens, self.cache)
        except Exception as exc:  # a cache is an optimisation, never a failure
            log.warning("prefix cache skipped: %s", exc, exc_info=True)
            # Whatever it did half-way, leave an empty, consistent context behind.
            with contextlib.suppress(Exception):
                _clear(llama)
            return "failed"

    def _prepare(
        self, llama: Any, messages: list[Any], tokens: list[int], cache: PrefixStateCache
    ) -> str:
        if _is_recurrent(llama):
            return "none"
        prefix = self._prefix(llama, messages, tokens)
        if prefix is None:
            return "none"
        if llama.n_tokens >= len(prefix) and llama.input_ids[: len(prefix)].tolist() == prefix:
            return "kept"  # this process evaluated it already
        key = self._key(llama, prefix)
        started = time.perf_counter()
        state = cache.load(key)
        if state is not None:
            if restore_sequence(llama, prefix, state):
                log.debug(
                    "prefix %s: %d tokens restored in %.0f ms",
                    token_digest(prefix),
                    len(prefix),
                    (time.perf_counter() - started) * 1000,
                )
                return "restored"
            cache.discard(key, "llama.cpp refused the saved state")
        outcome = "saved"
        held = llama.input_ids[: llama.n_tokens].tolist()
        # The saved prefix sharing the most with this one, if it beats the context.
        found = cache.longest(key, minimum=max(common_length(held, prefix) + 1, MIN_PREFIX_TOKENS))
        if found is not None:
            other, shared = found
            state = cache.load(other)
            if state is not None:
                if restore_sequence(llama, list(other.tokens), state):
                    outcome = "extended"
                    log.debug(
                        "prefix %s: %d of its %d tokens restored from %s",
                        token_digest(prefix),
                        shared,
                        len(prefix),
                        token_digest(other.tokens),
                    )
                else:
                    cache.discard(other, "llama.cpp refused the saved state")
            held = llama.input_ids[: llama.n_tokens].tolist()
        # Evaluate what the context does not hold yet; eval() drops the cells past
        # n_tokens first (llama_memory_seq_rm), so a longer restored state is cut.
        llama.n_tokens = common_length(held, prefix)
        evaluated = len(prefix) - llama.n_tokens
        llama.eval(prefix[llama.n_tokens :])
        saved = save_sequence(llama)
        if saved is not None:
            cache.store(key, saved)
        log.debug(
            "prefix %s: %d of its %d tokens evaluated and saved in %.0f ms",
            token_digest(prefix),
            evaluated,
            len(prefix),
            (time.perf_counter() - started) * 1000,
        )
        return outcome

    def _prefix(self, llama: Any, messages: list[Any], tokens: list[int]) -> list[int] | None:
        if not messages or messages[0].get("role") != "system":
            return None
        system = messages[0]
        memo = hashlib.sha256(str(system.get("content")).encode()).hexdigest()
        if memo not in self._stable:
            renderings = [
                prompt_tokens(llama, [system, {"role": "user", "content": probe}])
                for probe in _PROBES
            ]
            first, second = renderings
            self._stable[memo] = first[: common_length(first, second)] if first and second else None
            while len(self._stable) > _MEMO_SIZE:
                self._stable.popitem(last=False)
        self._stable.move_to_end(memo)
        stable = self._stable[memo]
        if stable is None:
            return None
        # The request's own rendering decides: its tokens may part from the probes'
        # early (a template that treats the first user message specially).
        length = common_length(stable, tokens)
        # Leave at least one token to evaluate: the first sample needs fresh logits.
        length = min(length, len(tokens) - 1)
        if length < MIN_PREFIX_TOKENS:
            return None
        return tokens[:length]

    def _key(self, llama: Any, prefix: list[int]) -> PrefixKey:
        if self._identity is None:
            self._identity = (
                model_identity(Path(llama.model_path)),
                runtime_identity(),
                context_identity(llama),
            )
        model, runtime, context = self._identity
        return PrefixKey(model=model, runtime=runtime, context=context, tokens=tuple(prefix))


def save_sequence(llama: Any) -> memoryview | None:
    """The state of sequence 0 (its KV cells), as llama.cpp serialises it."""
    import llama_cpp

    size = llama_cpp.llama_state_seq_get_size(llama.ctx, _SEQUENCE)
    if size <= 0:
        return None
    buffer = (ctypes.c_uint8 * size)()
    written = llama_cpp.llama_state_seq_get_data(llama.ctx, buffer, size, _SEQUENCE)
    if written <= 0 or written > size:
        return None
    return memoryview(buffer).cast("B")[:written]


def restore_sequence(llama: Any, tokens: list[int], state: memoryview) -> bool:
    """Load ``state`` as sequence 0, the evaluation of ``tokens``. False (and an empty
    context) when llama.cpp refuses it or it does not end where ``tokens`` do."""
    import llama_cpp

    _clear(llama)
    size = state.nbytes
    source = (ctypes.c_uint8 * size).from_buffer(state)
    read = llama_cpp.llama_state_seq_set_data(llama.ctx, source, size, _SEQUENCE)
    memory = llama_cpp.llama_get_memory(llama.ctx)
    last = llama_cpp.llama_memory_seq_pos_max(memory, _SEQUENCE)
    if read != size or last != len(tokens) - 1:
        log.info(
            "saved prefix state refused (read %d of %d bytes, last position %d of %d)",
            read,
            size,
            last,
            len(tokens) - 1,
        )
        _clear(llama)
        return False
    llama.input_ids[: len(tokens)] = tokens
    llama.n_tokens = len(tokens)
    return True


def _clear(llama: Any) -> None:
    import llama_cpp

    llama.reset()
    memory = llama_cpp.llama_get_memory(llama.ctx)
    if memory is not None:
        llama_cpp.llama_memory_clear(memory, True)


def _is_recurrent(llama: Any) -> bool:
    # A recurrent state cannot be cut back to a prefix: llama-cpp-python re-evaluates
    # the whole prompt for such models, so a restored prefix would be wasted.
    import llama_cpp

    return bool(
        llama_cpp.llama_model_is_recurrent(llama.model)
        or llama_cpp.llama_model_is_hybrid(llama.model)
    )


def model_identity(path: Path) -> str:
    """The model file, as far as a saved state cares: where, how big, when written."""
    info = path.stat()
    return f"{path.resolve()}|{info.st_size}|{info.st_mtime_ns}"


def runtime_identity() -> str:
    """The llama-cpp-python and llama.cpp build: versions, the state format, the CPU
    features compiled in, and the shared library file itself (a rebuild of the same
    version may compute differently)."""
    import llama_cpp
    from llama_cpp import llama_cpp as bindings

    parts = [
        f"llama-cpp-python {llama_cpp.__version__}",
        f"llama.cpp {llama_cpp.llama_version().decode(errors='replace')}",
        f"seq-state v{llama_cpp.LLAMA_STATE_SEQ_VERSION}",
        llama_cpp.llama_print_system_info().decode(errors="replace").strip(),
    ]
    library = getattr(getattr(bindings, "_lib", None), "_name", None)
    if isinstance(library, str):
        try:
            info = Path(library).stat()
            parts.append(f"{library}|{info.st_size}|{info.st_mtime_ns}")
        except OSError:
            pass
    return " ; ".join(parts)


def context_identity(llama: Any) -> str:
    """The context parameters a state's contents depend on."""
    params = llama.context_params
    fields = {
        "n_ctx": llama.n_ctx(),
        "n_batch": llama.n_batch,
        "n_ubatch": getattr(params, "n_ubatch", None),
        "type_k": getattr(params, "type_k", None),
        "type_v": getattr(params, "type_v", None),
        "flash_attn": getattr(params, "flash_attn_type", None),
    }
    return " ".join(f"{name}={value}" for name, value in fields.items())
