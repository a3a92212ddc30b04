"""Provider kinds: what each ``kind`` of ``[providers.NAME]`` means, in one table.

A kind is one :class:`ProviderKindSpec`: the keys its table must set (and the message
when one is missing), the context window it assumes, whether it runs in this process,
how long a streamed answer may take to begin, how its provider is built and probed,
and which rate-limit headers its responses carry. Everything that depends on the kind
asks its spec (``kind_of(settings).in_process``, ``kind_of(settings).build(settings)``)
instead of testing the name, so a new wire protocol is its provider module, an entry
in :data:`KINDS` and its name in :data:`~qwen_dev_cli.core.settings.ProviderKind`.

Cheap to import: a kind's provider module (httpx, llama.cpp) is imported when a
provider of that kind is built, never at start-up.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Final

from ..errors import ProviderSetupError
from ..settings import DEFAULT_CONTEXT_WINDOW, FIRST_BYTE_TIMEOUT, LOCAL_CONTEXT_WINDOW
from .probes import Probed, probe_by_request, probe_model_file

if TYPE_CHECKING:
    import httpx

    from ..settings import ProviderSettings
    from ..types import RateLimitHeaders
    from .base import Provider

#: Reads a response's rate-limit headers (``None``: it carries none usable).
RateLimitDialect = Callable[[Mapping[str, str]], "RateLimitHeaders | None"]
#: Seconds a streamed answer may take to begin, for settings that set no
#: ``first_byte_timeout`` (``None``: as long as ``timeout``).
FirstBytePolicy = Callable[["ProviderSettings"], "float | None"]
#: Builds a provider of a kind from its settings (HTTP kinds use the transport).
Builder = Callable[
    ["ProviderKindSpec", "ProviderSettings", "httpx.AsyncBaseTransport | None"], "Provider"
]
#: Finds out, within the seconds given, whether a provider of a kind is usable.
Prober = Callable[
    ["ProviderKindSpec", "ProviderSettings", float, "httpx.AsyncBaseTransport | None"],
    Awaitable[Probed],
]


@dataclass(frozen=True)
class ProviderKindSpec:
    """One kind of provider.

    Args:
        name: the ``kind`` value in a ``[providers.NAME]`` table.
        required: keys such a table must set (after ``derived``).
        requirement: the rest of the message when one is missing, after "a provider of
            kind 'NAME'" (what it needs, with an example).
        default_context_window: tokens assumed when ``context_window`` is not set.
        in_process: runs in this process (no HTTP): it answers offline, gets a
            ``state_dir`` under ``QWEN_DEV_HOME`` for the prompt states it keeps.
        model_switchable: ``--model`` and ``/model`` may replace its model name; false
            when the model is the file it loads (another name would only mislabel it).
        first_byte: the first-byte policy (:func:`remote_first_byte`, :func:`no_first_byte`).
        builder: builds the provider; imports its module then, not before.
        prober: how ``qwen-dev doctor`` checks it (:mod:`.probes`).
        rate_limit_headers: the dialect of rate-limit headers its responses carry,
            obeyed by the client's limiter (``None``: none).
        derived: keys a table may leave out because they follow from others it sets.
    """

    name: str
    required: tuple[str, ...]
    requirement: str
    default_context_window: int
    in_process: bool
    model_switchable: bool
    first_byte: FirstBytePolicy
    builder: Builder
    prober: Prober
    rate_limit_headers: RateLimitDialect | None = None
    derived: Callable[[Mapping[str, object]], Mapping[str, object]] = field(
        default=lambda keys: MappingProxyType({})
    )

    def missing(self, keys: Mapping[str, object]) -> str | None:
        """The first required key that ``keys`` (a provider's table) lacks, if any."""
        known = {**self.derived(keys), **keys}
        return next((key for key in self.required if key not in known), None)

    def defaults(self, keys: Mapping[str, object]) -> dict[str, object]:
        """What a table of this kind holds for the keys ``keys`` leaves out: the derived
        ones and the context window (known to every consumer, so compaction and
        ``config show`` agree on one number)."""
        return {"context_window": self.default_context_window, **self.derived(keys)}

    def build(
        self, settings: ProviderSettings, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> Provider:
        """The provider ``settings`` describe (``transport``: for HTTP kinds)."""
        return self.builder(self, settings, transport)

    async def probe(
        self,
        settings: ProviderSettings,
        *,
        seconds: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> Probed:
        """Whether it is usable, found out within ``seconds`` and without retries."""
        return await self.prober(self, settings, seconds, transport)

    def first_byte_deadline(self, settings: ProviderSettings) -> float | None:
        """Seconds a streamed answer of ``settings`` may take to begin (``None``:
        ``timeout``): its ``first_byte_timeout``, else this kind's policy."""
        if settings.first_byte_timeout is not None:
            return settings.first_byte_timeout
        return self.first_byte(settings)


def remote_first_byte(settings: ProviderSettings) -> float | None:
    """:data:`FIRST_BYTE_TIMEOUT` for a remote server; none for one on this machine
    (ollama, llama.cpp's server, vLLM on loopback), which is not hung when it is slow to
    begin: it is loading a model or prefilling on the same CPU, and restarting the
    request would only start that work again."""
    return None if on_this_machine(settings.base_url) else FIRST_BYTE_TIMEOUT


def no_first_byte(settings: ProviderSettings) -> float | None:
    """None: an in-process model's slow start is model loading or prefill, not a hang."""
    return None


def on_this_machine(url: str | None) -> bool:
    """Whether ``url`` names a loopback host."""
    import ipaddress
    from urllib.parse import urlsplit

    try:
        host = urlsplit(url or "").hostname or ""
    except ValueError:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def openai_rate_limits(headers: Mapping[str, str]) -> RateLimitHeaders | None:
    """OpenAI's ``x-ratelimit-remaining-*``/``x-ratelimit-reset-*`` headers, which
    most OpenAI-compatible servers send too."""
    # Imported here: the parser pulls in email.utils, which start-up does not need.
    from ..headers import parse_rate_limit_headers

    return parse_rate_limit_headers(headers)


def _openai_compatible(
    spec: ProviderKindSpec,
    settings: ProviderSettings,
    transport: httpx.AsyncBaseTransport | None,
) -> Provider:
    from .openai_compat import OpenAICompatProvider

    if not settings.base_url:
        raise ProviderSetupError("base_url is not set", provider=settings.name)
    return OpenAICompatProvider(
        settings.name,
        base_url=settings.base_url,
        model=settings.model,
        api_key=settings.api_key,
        timeout=settings.timeout,
        native_tools=settings.native_tools,
        tool_format=settings.tool_format,
        max_tokens=settings.max_tokens,
        context_window=settings.context_window or spec.default_context_window,
        rate_limit_headers=spec.rate_limit_headers,
        transport=transport,
    )


def _llama_cpp(
    spec: ProviderKindSpec,
    settings: ProviderSettings,
    transport: httpx.AsyncBaseTransport | None,
) -> Provider:
    # Cheap: llama.cpp itself is imported, and the model loaded, on first use.
    from .llama_cpp import LlamaCppProvider

    return LlamaCppProvider.from_settings(settings)


def _model_named_by_its_file(keys: Mapping[str, object]) -> Mapping[str, object]:
    return {"model": Path(str(keys["model_path"])).stem} if "model_path" in keys else {}


OPENAI: Final = ProviderKindSpec(
    "openai",
    required=("base_url", "model"),
    requirement="needs base_url and model, e.g. base_url = 'http://127.0.0.1:8000/v1' "
    "and model = 'qwen2.5-coder'",
    default_context_window=DEFAULT_CONTEXT_WINDOW,
    in_process=False,
    model_switchable=True,
    first_byte=remote_first_byte,
    builder=_openai_compatible,
    prober=probe_by_request,
    rate_limit_headers=openai_rate_limits,
)
LLAMA_CPP: Final = ProviderKindSpec(
    "llama-cpp",
    required=("model",),
    requirement="needs model (a name) or model_path (a GGUF file)",
    default_context_window=LOCAL_CONTEXT_WINDOW,
    in_process=True,
    model_switchable=False,
    first_byte=no_first_byte,
    builder=_llama_cpp,
    prober=probe_model_file,
    derived=_model_named_by_its_file,
)

#: Every kind, by name. :data:`~qwen_dev_cli.core.settings.ProviderKind` (the config's
#: choice) names the same ones; a test holds them equal.
KINDS: Final[Mapping[str, ProviderKindSpec]] = MappingProxyType(
    {spec.name: spec for spec in (OPENAI, LLAMA_CPP)}
)
#: The kind of a table that names none.
DEFAULT_KIND: Final = OPENAI.name


def kind_of(
    settings: ProviderSettings, kinds: Mapping[str, ProviderKindSpec] = KINDS
) -> ProviderKindSpec:
    """The spec of ``settings.kind`` in ``kinds``; an unknown kind (settings built in
    code) is an error, never another kind's behaviour."""
    spec = kinds.get(settings.kind)
    if spec is None:
        raise ProviderSetupError(
            f"unknown provider kind {settings.kind!r} (known: {', '.join(kinds)})",
            provider=settings.name,
        )
    return spec
