"""``qwen-dev doctor``: is each provider usable, and if not, why?

Every defined provider is reported, used or not: whether its API key is set (never the
key itself), whether it answers a one-token request and how fast, and which model
answered. The in-process provider reports whether llama.cpp and its model file are
installed instead of loading the model. The probes run concurrently, each without
retries, so a dead endpoint costs one timeout, not a backoff schedule.

The state store (where budgets and breakers are shared, docs/architecture.md section 8) is checked
too, and each provider in use shows its account's restraint as the store keeps it: the
retry budget left, the requests adaptive throttling refused locally, a quota's reset.
A store that fails is a warning, not a failure: answers still work, with budgets per
process, so the exit code depends on the providers only. One line says whether
commands run in an OS sandbox (without one, yolo asks before every command).

Each enabled MCP server is started (alongside the probes), and reported with its
state, how long it took to start, and its tools; a server that fails is a warning too:
the model can still answer without its tools.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from rich.text import Text

from .. import exit_codes
from ..plurals import plural
from ..tools.sandbox import SandboxStatus, detect_sandbox
from .safe_text import printable
from .symbols import symbols_for

if TYPE_CHECKING:
    from collections.abc import Sequence

    import httpx
    from rich.console import Console

    from ..config import Settings
    from ..core.account import AccountView
    from ..core.settings import ProviderSettings
    from ..core.state import ProviderStateStore
    from ..mcp import McpServers


@dataclass(frozen=True)
class ProbeResult:
    """What the doctor found out about one provider.

    Args:
        name: the provider.
        role: ``in use``, ``skipped`` (in the order, but not usable) or ``unused``.
        key: ``set (VAR)``, ``missing (VAR)`` or ``not needed``.
        ok: it answered (or, in-process, everything it needs is installed).
        detail: what happened, in a few words.
        model: the model that answered, else the configured one.
        latency_ms: the probe's round trip, when one was made.
        probed: ``False`` when it could not be tried (no key).
    """

    name: str
    role: str
    key: str
    ok: bool
    detail: str
    model: str
    latency_ms: float | None = None
    probed: bool = True


async def probe_all(
    settings: Settings,
    *,
    seconds: float = 10.0,
    transport: httpx.AsyncBaseTransport | None = None,
) -> list[ProbeResult]:
    """Probe every defined provider, those in the failover order first."""
    order = list(settings.provider_order)
    names = order + [name for name in settings.providers if name not in order]
    active = set(settings.active_providers)
    probes = []
    for name in names:
        provider = settings.providers[name]
        role = "in use" if name in active else ("skipped" if name in order else "unused")
        probes.append(_probe(provider, role, seconds, transport))
    return list(await asyncio.gather(*probes))


async def _probe(
    provider: ProviderSettings,
    role: str,
    seconds: float,
    transport: httpx.AsyncBaseTransport | None,
) -> ProbeResult:
    from ..core.providers.kinds import kind_of

    found = await kind_of(provider).probe(provider, seconds=seconds, transport=transport)
    return ProbeResult(
        provider.name,
        role,
        _key_state(provider),
        found.ok,
        found.detail,
        found.model,
        found.latency_ms,
        found.probed,
    )


def _key_state(provider: ProviderSettings) -> str:
    if not provider.api_key_env:
        return "not needed"
    state = "set" if provider.api_key else "missing"
    return f"{state} ({provider.api_key_env})"


def _redact(text: str, secret: str | None) -> str:
    from ..core.providers.probes import redact

    return redact(text, secret)


@dataclass(frozen=True)
class StoreCheck:
    """What the doctor found out about the state store.

    Args:
        kind: ``memory``, ``local`` or ``redis``.
        location: where it is (a Redis password redacted).
        ok: it answered its check.
        detail: what it is (``SQLite 3.45.1``), or why it could not be used.
        latency_ms: how long the check took.
    """

    kind: str
    location: str
    ok: bool
    detail: str
    latency_ms: float


#: Who shares the budgets in each kind of store.
_SHARED_BY = {
    "memory": "not shared with other processes",
    "local": "budgets shared by every process on this machine",
    "redis": "budgets shared by every process on every machine using this server",
}


async def check_store(
    store: ProviderStateStore, *, seconds: float = 10.0, secret: str | None = None
) -> StoreCheck:
    """Reach ``store`` once and say what it is; ``secret`` (a password) is kept out of
    the error text."""
    from ..core.state import StoreError

    started = time.perf_counter()
    try:
        async with asyncio.timeout(seconds):
            version = await store.check()
    except (StoreError, TimeoutError, OSError) as exc:
        latency = (time.perf_counter() - started) * 1000
        message = str(exc) or f"no answer within {seconds:g}s"
        detail = _redact(message, secret)
        return StoreCheck(store.kind, store.location, False, detail, latency)
    latency = (time.perf_counter() - started) * 1000
    return StoreCheck(store.kind, store.location, True, version, latency)


def _store_password(spec: str) -> str | None:
    try:
        return urlsplit(spec).password if "://" in spec else None
    except ValueError:
        return None


def report_store(check: StoreCheck, console: Console) -> None:
    """Two lines like a provider's: verdict, kind, location, latency, then the detail."""
    symbols = symbols_for(console)
    mark, style = (symbols.ok, "qd.ok") if check.ok else ("!", "qd.notice")
    line = Text.assemble(
        (f"{mark} ", style),
        ("state store", "qd.name"),
        f"  {check.kind}  {check.location}  {check.latency_ms:.0f} ms",
    )
    console.print(line, soft_wrap=True)
    if check.ok:
        detail = f"{check.detail}; {_SHARED_BY.get(check.kind, 'budgets shared')}"
    else:
        detail = (
            f"unavailable: {check.detail.rstrip('.')}; answers still work, with budgets "
            "and breakers per process until it is back"
        )
    console.print(Text(f"    {detail}", "qd.muted" if check.ok else style), soft_wrap=True)


def report_sandbox(status: SandboxStatus, console: Console) -> None:
    """One line: the OS sandbox commands run in, or why there is none (not a failure)."""
    symbols = symbols_for(console)
    mark, style = (symbols.ok, "qd.ok") if status.available else ("!", "qd.notice")
    line = Text.assemble((f"{mark} ", style), ("sandbox", "qd.name"), f"  {status.describe()}")
    console.print(line, soft_wrap=True)


async def account_views(
    providers: Sequence[ProviderSettings], store: ProviderStateStore, *, seconds: float = 2.0
) -> dict[str, AccountView]:
    """Each provider's account as the store keeps it (none when it cannot say)."""
    from ..core.account import WINDOW_GUARD, AccountPolicy
    from ..core.state import StoreError, account_key

    views: dict[str, AccountView] = {}
    for provider in providers:
        key = account_key(provider.base_url, provider.model, provider.api_key, provider.name)
        policy = AccountPolicy(provider.rpm, provider.tpm, None, guard=WINDOW_GUARD)
        try:
            async with asyncio.timeout(seconds):
                views[provider.name] = await store.view(key, policy)
        except (StoreError, TimeoutError, OSError):
            continue
    return views


def account_line(view: AccountView) -> str | None:
    """``account: retry budget 4.0 left, 3 refused locally (throttling, 2 min), quota
    resets in 3600s``; ``None`` when the store keeps none of it."""
    parts = []
    if view.retry_budget is not None:
        parts.append(f"retry budget {view.retry_budget:.1f} left")
    if view.throttled:
        parts.append(f"{view.throttled} refused locally (throttling, last 2 min)")
    elif view.retry_budget is not None:
        parts.append("none throttled")
    if view.quota_reset_in > 0:
        parts.append(f"quota exhausted, resets in {view.quota_reset_in:.0f}s")
    return f"account: {', '.join(parts)}" if parts else None


def report(
    results: list[ProbeResult],
    console: Console,
    accounts: dict[str, AccountView] | None = None,
) -> None:
    """One block per provider: verdict, role, key, model, latency, then the detail
    (and its account's restraint, from ``accounts``, when the store keeps it)."""
    symbols = symbols_for(console)
    width = max((len(result.name) for result in results), default=0)
    for result in results:
        mark, style = (symbols.ok, "qd.ok") if result.ok else (symbols.failed, "qd.error")
        if not result.probed or (result.role == "unused" and not result.ok):
            # Not probed, or not in the failover order: nothing the user relies on failed.
            mark, style = ("-", "qd.muted")
        latency = f"{result.latency_ms:.0f} ms" if result.latency_ms is not None else "-"
        line = Text.assemble(
            (f"{mark} ", style),
            (result.name.ljust(width), "qd.name"),
            f"  {result.role:<7}  key {result.key}  model {result.model}  {latency}",
        )
        console.print(line, soft_wrap=True)
        console.print(
            Text(f"    {result.detail}", "qd.muted" if result.ok else style), soft_wrap=True
        )
        view = (accounts or {}).get(result.name) if result.role == "in use" else None
        said = None if view is None else account_line(view)
        if view is not None and said is not None:
            troubled = view.throttled > 0 or view.quota_reset_in > 0
            console.print(Text(f"    {said}", "qd.notice" if troubled else "qd.muted"))


def report_mcp(rows: list[dict[str, Any]], console: Console) -> None:
    """One block per MCP server: verdict, transport, start-up time, tools (or why it
    failed, and where its stderr went)."""
    symbols = symbols_for(console)
    width = max((len(row["name"]) for row in rows), default=0)
    for row in rows:
        state = row["state"]
        if state == "ready":
            mark, style = symbols.ok, "qd.ok"
        elif state == "disabled":
            mark, style = "-", "qd.muted"
        else:
            mark, style = symbols.failed, "qd.error"
        took = "" if row["startup_ms"] is None else f"  {row['startup_ms']} ms"
        tools = plural(len(row["tools"]), "tool") if state == "ready" else state
        line = Text.assemble(
            (f"{mark} ", style),
            ("mcp ", "qd.muted"),
            (row["name"].ljust(width), "qd.name"),
            f"  {row['transport']}  {tools}{took}",
        )
        console.print(line, soft_wrap=True)
        if state == "ready":
            detail = ", ".join(row["tools"]) or "(no tools)"
            console.print(Text(f"    {detail}", "qd.muted"), soft_wrap=True)
        elif row["error"]:
            where = f"; its stderr is in {row['log']}" if row["log"] else ""
            console.print(Text(f"    {printable(row['error'])}{where}", style), soft_wrap=True)


def verdict(results: list[ProbeResult]) -> int:
    """0 when a provider that would be used works, else the provider-failure exit code."""
    usable = [result for result in results if result.role == "in use" and result.ok]
    return exit_codes.OK if usable else exit_codes.PROVIDER_FAILURE


async def run_doctor(
    settings: Settings,
    console: Console,
    *,
    seconds: float = 10.0,
    transport: httpx.AsyncBaseTransport | None = None,
    state: ProviderStateStore | None = None,
    mcp: McpServers | None = None,
) -> int:
    """Probe, report, and return the exit code (the providers' verdict: a failing
    ``state`` store or MCP server is reported as a warning). ``state`` ``None``: not
    checked; ``mcp``: the servers, started and not waited for (they are waited for
    here, alongside the probes)."""
    if mcp is not None:
        mcp.start()
    probes = probe_all(settings, seconds=seconds, transport=transport)
    store: StoreCheck | None = None
    accounts: dict[str, AccountView] = {}
    if state is None:
        results = await probes
    else:
        secret = _store_password(settings.client.state_store)
        results, checked = await asyncio.gather(
            probes, check_store(state, seconds=seconds, secret=secret)
        )
        store = checked
        if checked.ok:
            accounts = await account_views(settings.client.providers, state)
    if mcp is not None:
        await mcp.wait_ready(lambda _: None)  # each failure is reported below
    report(results, console, accounts)
    if store is not None:
        report_store(store, console)
    if mcp is not None:
        report_mcp(mcp.report(), console)
    report_sandbox(detect_sandbox(), console)
    code = verdict(results)
    if code == exit_codes.OK:
        working = ", ".join(r.name for r in results if r.role == "in use" and r.ok)
        unshared = "" if store is None or store.ok else " (budgets per process: see state store)"
        console.print(f"ready: {working}{unshared}")
    else:
        console.print(
            Text(
                "no provider in use answers: see the notes above, or `qwen-dev config show`",
                "qd.error",
            )
        )
    return code
