"""Whether and where telemetry is exported: the standard OTEL_* variables, the
[telemetry] keys, and the switches that turn it off."""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from pathlib import Path

import pytest

from qwen_dev_cli.config.resolved import Settings
from qwen_dev_cli.core import LLMClient
from qwen_dev_cli.core.settings import ClientSettings, ProviderSettings
from qwen_dev_cli.otel import EXTRA_HINT, OtlpTarget, target_of


def settings(**changes: object) -> Settings:
    client = ClientSettings(providers=(ProviderSettings(name="lab", model="m"),))
    base = Settings(
        client=client,
        approval="ask",
        provider_order=("lab",),
        providers={},
        home=Path("/nonexistent"),
        config_path=Path("/nonexistent/config.toml"),
        project_config_path=None,
        notices=(),
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]  # **Any into typed fields


def test_nothing_is_exported_without_an_endpoint() -> None:
    assert target_of(settings(), {}) is None
    assert target_of(settings(log_content=True), {"OTEL_SERVICE_NAME": "x"}) is None


def test_the_variables_name_the_endpoint_before_the_configuration() -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}
    assert target_of(settings(otlp_endpoint="http://other:4318"), env) == OtlpTarget(
        None, "http/protobuf", False
    )
    traces_only = {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}
    assert target_of(settings(), traces_only) == OtlpTarget(None, "http/protobuf", False)


def test_the_configured_endpoint_protocol_and_content() -> None:
    chosen = settings(otlp_endpoint="http://collector:4317/", log_content=True)
    assert target_of(chosen, {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}) == OtlpTarget(
        "http://collector:4317", "grpc", True
    )


def test_telemetry_off_or_the_sdk_disabled_exports_nothing() -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}
    off = settings()
    off = dataclasses.replace(off, client=dataclasses.replace(off.client, telemetry_enabled=False))
    assert target_of(off, env) is None
    assert target_of(settings(), {**env, "OTEL_SDK_DISABLED": "true"}) is None


def test_without_the_extra_export_is_asked_for_once_and_the_client_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import qwen_dev_cli.otel as otel

    monkeypatch.setitem(sys.modules, "qwen_dev_cli.otel.exporter", None)  # not installed
    monkeypatch.setattr(otel, "_missing_said", False)
    said: list[str] = []
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}
    lab = ProviderSettings(name="lab", base_url="http://127.0.0.1:9/v1", model="m")
    clients = [LLMClient([lab]) for _ in range(2)]
    for client in clients:
        otel.attach(client, settings(), environ=env, warn=said.append)
        assert client.telemetry.observers == []
    assert said == [f"an OTLP endpoint is set but OpenTelemetry is not installed: {EXTRA_HINT}"]
    for client in clients:
        asyncio.run(client.aclose())
