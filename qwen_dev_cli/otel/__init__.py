"""OpenTelemetry export, an optional extra (``pip install 'qwen-dev-cli[otel]'``).

When an OTLP endpoint is configured (the standard ``OTEL_EXPORTER_OTLP_ENDPOINT`` and
its kin, or ``[telemetry] otlp_endpoint``), each client the runtime builds gets an
observer (:mod:`.exporter`) that turns its telemetry into spans and metrics following
the OpenTelemetry GenAI conventions, plus ``qwen_dev.*`` resilience metrics. Nothing
of OpenTelemetry is imported unless an endpoint is set, so start-up does not pay for
it. Prompts, answers and tool arguments leave the machine only with
``[telemetry] log_content = true``. An exporter that cannot reach its collector says
so once on stderr and costs the session nothing else.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from ..config.resolved import Settings
    from ..core.client import LLMClient

#: The variables that name an endpoint (any of them turns export on).
ENDPOINT_VARIABLES = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
)
#: What to install when export is asked for without the extra.
EXTRA_HINT = "pip install 'qwen-dev-cli[otel]'"

Protocol = Literal["http/protobuf", "grpc"]


@dataclass(frozen=True)
class OtlpTarget:
    """Where and how to export.

    Args:
        endpoint: ``[telemetry] otlp_endpoint`` (the collector's base URL); ``None``
            when the ``OTEL_EXPORTER_OTLP_*`` variables name it (the SDK reads them).
        protocol: ``OTEL_EXPORTER_OTLP_PROTOCOL``: ``http/protobuf`` (default) or
            ``grpc``.
        log_content: ``[telemetry] log_content``: prompts, answers and tool arguments
            and results go into spans.
    """

    endpoint: str | None
    protocol: Protocol
    log_content: bool


def target_of(settings: Settings, environ: Mapping[str, str]) -> OtlpTarget | None:
    """The export the settings and the environment ask for (``None``: none). Telemetry
    turned off (``[telemetry] enabled = false``) or ``OTEL_SDK_DISABLED=true`` export
    nothing."""
    if not settings.client.telemetry_enabled:
        return None
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    from_env = any(environ.get(name, "").strip() for name in ENDPOINT_VARIABLES)
    configured = settings.otlp_endpoint.strip()
    if not from_env and not configured:
        return None
    raw = environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "").strip().lower()
    protocol: Protocol = "grpc" if raw == "grpc" else "http/protobuf"
    return OtlpTarget(
        endpoint=None if from_env else configured.rstrip("/"),
        protocol=protocol,
        log_content=settings.log_content,
    )


def _stderr(message: str) -> None:
    print(f"qwen-dev: {message}", file=sys.stderr, flush=True)


_missing_said = False


def attach(
    client: LLMClient,
    settings: Settings,
    *,
    environ: Mapping[str, str] = os.environ,
    warn: Callable[[str], None] = _stderr,
) -> None:
    """Export ``client``'s telemetry when an endpoint is configured (else nothing is
    imported). Without the extra installed, says so once and goes on."""
    global _missing_said
    target = target_of(settings, environ)
    if target is None:
        return
    try:
        from .exporter import shared_exporter
    except ImportError:
        if not _missing_said:
            _missing_said = True
            warn(f"an OTLP endpoint is set but OpenTelemetry is not installed: {EXTRA_HINT}")
        return
    exporter = shared_exporter(target, warn)
    if exporter is not None:
        client.telemetry.observers.append(exporter.observer(settings.client.providers))
