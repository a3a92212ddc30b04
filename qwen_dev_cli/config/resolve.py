"""Resolution: the layers merged, low to high, each value with the source that set it,
then checked together and built into :class:`~.settings.Settings`.

The provenance is what lets a message name the file, variable or flag behind a value
that is only wrong in company (``retry.max_delay`` below a ``base_delay`` set in
another file; a provider of the user file that a project table left without
``base_url``; ``--provider`` naming one whose key is not exported).
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, cast

from qwen_dev_cli.core.providers.kinds import DEFAULT_KIND, KINDS, kind_of
from qwen_dev_cli.core.settings import ClientSettings, ProviderSettings

from . import checks
from .errors import ConfigError, Where
from .home import Home
from .layers import (
    BUILTIN,
    PRESET,
    Below,
    Layer,
    Overlay,
    defaults_layer,
    env_overlay,
    flags_overlay,
    presets_layer,
    project_layer,
    user_layer,
)
from .mcp_servers import McpServerSettings
from .paths import data_dir, env_value, make_home_private
from .presets import DEFAULT_PROVIDER_ORDER
from .resolved import APPROVAL_MODES, Approval, Overrides, Settings
from .schema import PROVIDER_KEYS, SECTIONS, Sections, build_sections

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from qwen_dev_cli.core.providers.kinds import ProviderKindSpec


@dataclass
class Merged:
    """The layers applied so far: each value with the source that set it."""

    provider_order: tuple[str, ...] | None = None
    provider_order_source: str = BUILTIN
    approval: Approval = APPROVAL_MODES[0]
    approval_source: str = BUILTIN
    providers: dict[str, dict[str, tuple[object, str]]] = field(default_factory=dict)
    #: The source that first defined each provider (``PRESET`` for the presets).
    provider_origin: dict[str, str] = field(default_factory=dict)
    sections: dict[str, dict[str, tuple[object, str]]] = field(default_factory=dict)
    #: Each server whole, as the highest file defining it wrote it.
    mcp_servers: dict[str, McpServerSettings] = field(default_factory=dict)

    def apply(self, layer: Layer) -> None:
        if layer.provider_order is not None:
            self.provider_order = layer.provider_order
            self.provider_order_source = layer.source
        if layer.approval is not None:
            self.approval = layer.approval
            self.approval_source = layer.source
        for name, table in layer.providers.items():
            self.provider_origin.setdefault(name, layer.source)
            values = self.providers.setdefault(name, {})
            values.update({k: (v, layer.source) for k, v in table.items()})
        for section, table in layer.sections.items():
            values = self.sections.setdefault(section, {})
            values.update({k: (v, layer.source) for k, v in table.items()})
        self.mcp_servers.update(layer.mcp_servers)

    def user_defined(self) -> tuple[str, ...]:
        """Providers the files define beyond the presets, in the order first defined."""
        return tuple(n for n, origin in self.provider_origin.items() if origin != PRESET)

    def section(self, name: str) -> dict[str, Any]:
        return {k: v for k, (v, _) in self.sections[name].items()}


def resolve(
    path: str | Path | None, *, overrides: Overrides, env: Mapping[str, str], cwd: Path
) -> Settings:
    """:func:`qwen_dev_cli.config.load_settings` with every input explicit."""
    merged = Merged()
    merged.apply(defaults_layer())
    merged.apply(presets_layer())
    config_path, user = user_layer(path, env)
    if user is not None:
        merged.apply(user)
    below = Below(
        {name: {k: v for k, (v, _) in table.items()} for name, table in merged.providers.items()},
        {name: {k: v for k, (v, _) in table.items()} for name, table in merged.sections.items()},
    )
    project = project_layer(cwd, config_path, merged.approval, merged.approval_source, below)
    if project is not None:
        merged.apply(project)
    flags, environment = flags_overlay(overrides), env_overlay(env)

    _check_delays(merged)
    project_source = None if project is None else project.source
    providers = {
        name: _build_provider(name, values, merged.provider_origin[name], env, project_source)
        for name, values in merged.providers.items()
    }
    order, explicit = _provider_order(merged, providers, flags, environment)
    notices: list[str] = []
    active, skipped = _activate(order, providers, explicit, notices)
    _apply_model(flags, environment, active, providers, notices)
    if not active:
        notices.append(
            "no provider is active: export the API key of one of "
            f"{', '.join(order)}, or configure another provider"
        )
    given = flags.approval or environment.approval
    approval = merged.approval if given is None else checks.approval(given.value, given.where)
    _apply_environment(merged, environment)

    sections = build_sections({name: merged.section(name) for name in SECTIONS})
    home = data_dir(env)
    make_home_private(home, notices)
    # An in-process model keeps its saved prompt states in the home's cache.
    cache = Home(home).llama_state
    active = [
        dataclasses.replace(p, state_dir=str(cache)) if kind_of(p).in_process else p for p in active
    ]
    return Settings(
        client=_client_settings(sections, active),
        approval=approval,
        provider_order=order,
        providers=MappingProxyType(providers),
        home=home,
        config_path=config_path,
        project_config_path=None if project is None else project.path,
        notices=tuple(notices),
        session_retention_days=sections.sessions.retention_days,
        allow_network=sections.tools.allow_network,
        skipped_providers=MappingProxyType(skipped),
        mcp_servers=tuple(merged.mcp_servers.values()),
        otlp_endpoint=sections.telemetry.otlp_endpoint,
        log_content=sections.telemetry.log_content,
    )


def _client_settings(sections: Sections, active: list[ProviderSettings]) -> ClientSettings:
    # schema.sections_of() gathers these back for `config show`: change both together.
    return ClientSettings(
        providers=tuple(active),
        retry=sections.retry,
        circuit_breaker=sections.circuit_breaker,
        rate_limit_enabled=sections.rate_limit.enabled,
        rate_limit_max_wait=sections.rate_limit.max_wait,
        telemetry_enabled=sections.telemetry.enabled,
        state_store=sections.state.store,
    )


def _check_delays(merged: Merged) -> None:
    """``max_delay`` below ``base_delay``: blame the one a file set (either may be the
    default, or each from another file)."""
    base_value, base_src = merged.sections["retry"]["base_delay"]
    top_value, top_src = merged.sections["retry"]["max_delay"]
    base, top = cast("float", base_value), cast("float", top_value)  # validated numbers
    if top >= base:
        return
    if top_src == BUILTIN:
        raise Where(base_src, "retry.base_delay").out_of_range(
            f"a number no larger than retry.max_delay ({top!r}, the built-in default)", base
        )
    raise Where(top_src, "retry.max_delay").out_of_range(
        f"a number of at least retry.base_delay ({base!r}, from {base_src})", top
    )


def _build_provider(
    name: str,
    values: Mapping[str, tuple[object, str]],
    origin: str,
    env: Mapping[str, str],
    project_source: str | None,
) -> ProviderSettings:
    """One provider from its merged keys. A missing key is blamed on the file that chose
    its ``kind`` (else on the file that first defined it), not on a preset."""
    kwargs: dict[str, Any] = {k: v for k, (v, _) in values.items()}
    kind = KINDS[kwargs.setdefault("kind", DEFAULT_KIND)]
    kind_source = values["kind"][1] if "kind" in values else origin
    blame = Where(kind_source if kind_source not in (PRESET, BUILTIN) else origin, "providers")
    where = blame.child(name)
    missing = kind.missing(kwargs)
    if missing is not None:
        raise where.child(missing).error(_missing(kind, in_project=where.source == project_source))
    kwargs = {**kind.defaults(kwargs), **kwargs}
    api_key_env = kwargs.get("api_key_env")
    if isinstance(api_key_env, str):
        kwargs["api_key"] = env_value(env, api_key_env)
    return ProviderSettings(name=name, **kwargs)


def _missing(kind: ProviderKindSpec, *, in_project: bool) -> str:
    """What a provider of ``kind`` needs; for one a project file defines, the keys only
    the user's own file may set (the project file's copy of them is refused)."""
    text = f"missing; a provider of kind {kind.name!r} {kind.requirement}"
    refused = [key for key in kind.required if PROVIDER_KEYS[key].setting.project]
    if in_project and refused:
        text += (
            f" (a project file cannot set {' or '.join(refused)}: define the provider in "
            "your user config)"
        )
    return text


def _provider_order(
    merged: Merged, providers: Mapping[str, ProviderSettings], flags: Overlay, environment: Overlay
) -> tuple[tuple[str, ...], Where | None]:
    """The order asked for: flags > environment > files > user-defined first + defaults.
    The second item names the flag or variable, whose providers must all be usable."""
    given = flags.provider_order or environment.provider_order
    explicit = None if given is None else given.where
    if given is not None:
        order = given.value
    elif merged.provider_order is not None:
        order = merged.provider_order
    else:
        mine = merged.user_defined()
        order = mine + tuple(n for n in DEFAULT_PROVIDER_ORDER if n not in mine)
    where = explicit or Where(merged.provider_order_source, "provider_order")
    for name in order:
        if name not in providers:
            raise _unknown_provider(where, name, providers)
    return order, explicit


def _unknown_provider(where: Where, name: str, known: Iterable[str]) -> ConfigError:
    known = list(known)
    hint = difflib.get_close_matches(name, known, n=1, cutoff=0.6) or [
        k for k in known if k.lower() == name.lower()
    ]
    did_you_mean = f"did you mean {hint[0]!r}? " if hint else ""
    return where.error(
        f"unknown provider {name!r}; {did_you_mean}known providers: {', '.join(known)}"
    )


def _activate(
    order: tuple[str, ...],
    providers: Mapping[str, ProviderSettings],
    explicit: Where | None,
    notices: list[str],
) -> tuple[list[ProviderSettings], dict[str, str]]:
    """The providers of the order that can run, and why each other one is skipped (a
    missing key: a notice, or an error when a flag or variable named the provider)."""
    skipped: dict[str, str] = {}
    active: list[ProviderSettings] = []
    for name in order:
        provider = providers[name]
        if provider.api_key_env and provider.api_key is None:
            if explicit is not None:
                raise explicit.error(
                    f"provider {name!r} needs an API key: export {provider.api_key_env}=... "
                    f"(or choose another provider)"
                )
            skipped[name] = f"{provider.api_key_env} is not set"
            notices.append(f"{name} skipped: {skipped[name]}")
            continue
        active.append(provider)
    return active, skipped


def _apply_model(
    flags: Overlay,
    environment: Overlay,
    active: list[ProviderSettings],
    providers: dict[str, ProviderSettings],
    notices: list[str],
) -> None:
    """``--model`` (else ``QWEN_DEV_MODEL``) replaces the first active provider's model."""
    given = flags.model or environment.model
    if given is None:
        return
    checks.text(given.value, given.where)
    if not active:
        notices.append(f"{given.where.source} ignored: no provider is active")
        return
    if not kind_of(active[0]).model_switchable:
        # Its model is the file it loads: another name would only mislabel its answers.
        name = active[0].name
        fix = (
            f"to use another GGUF file set model_path under [providers.{name}], or choose "
            "another provider with --provider"
        )
        if flags.model is not None:
            raise given.where.error(f"{name} runs its model file in-process; {fix}")
        notices.append(f"{given.where.source} ignored for {name} (a local model file); {fix}")
        return
    first = dataclasses.replace(active[0], model=given.value.strip())
    active[0] = first
    providers[first.name] = first


def _apply_environment(merged: Merged, environment: Overlay) -> None:
    """Variables that override a key of the files (``QWEN_DEV_STATE``), checked."""
    for section, table in environment.sections.items():
        for key, given in table.items():
            value = SECTIONS[section][key].check(given.value, given.where)
            merged.sections[section][key] = (value, given.where.source)
