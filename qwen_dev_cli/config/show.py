"""What ``qwen-dev config show`` prints: the resolved settings, each table as the schema
declares it, with what a field's declaration marks secret hidden (API keys as ``***``,
a Redis password in a store URL)."""

from __future__ import annotations

import dataclasses
from typing import Any

from qwen_dev_cli.core.declarations import Shown, declared

from .resolved import Settings
from .schema import sections_of


def redacted_view(settings: Settings) -> dict[str, Any]:
    """A JSON-able view for ``qwen-dev config show``: API keys appear as ``"***"``."""
    active = settings.active_providers
    providers: dict[str, Any] = {}
    for name, provider in settings.providers.items():
        providers[name] = {**_table(provider), "active": name in active}
    view: dict[str, Any] = {
        "config_path": str(settings.config_path),
        "project_config_path": (
            None if settings.project_config_path is None else str(settings.project_config_path)
        ),
        "home": str(settings.home),
        "approval": settings.approval,
        "provider_order": list(settings.provider_order),
        "active_providers": list(active),
        "providers": providers,
    }
    sections = sections_of(settings)
    for item in dataclasses.fields(sections):
        view[item.name] = _table(getattr(sections, item.name))
    view["mcp"] = {"servers": {s.name: _table(s) for s in settings.mcp_servers}}
    view["notices"] = list(settings.notices)
    return view


def _table(table: Any) -> dict[str, Any]:
    view: dict[str, Any] = {}
    for item in dataclasses.fields(table):
        declaration = declared(item)
        view[item.name] = _shown(
            getattr(table, item.name), "plain" if declaration is None else declaration.shown
        )
    return view


def _shown(value: object, shown: Shown) -> object:
    if shown == "secret":
        return "***" if value else None
    if shown == "url" and isinstance(value, str):
        from qwen_dev_cli.core.state import redact_url  # lazy: only `config show` needs it

        return redact_url(value)
    return value
