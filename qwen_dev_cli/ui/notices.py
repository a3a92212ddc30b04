"""What to tell the user on stderr: once at start-up, about the providers in use and a
workspace too wide to work in; then, as it happens, what the client does about failures
(:class:`ClientNotices`)."""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ..core.events import AttemptStarted, ClientEvent, QuotaExhausted, describe

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..config import Settings
    from ..core.errors import NoProviderConfigured

#: A notice shown through a :class:`NoticeLog` comes back after this long (seconds).
DAY = 86400.0


class NoticeLog:
    """When each recurring notice was last shown (``QWEN_DEV_HOME/notices.json``), so a
    script calling ``qwen-dev ask`` in a loop reads it once a day, not on every run.

    Args:
        path: the file; one that cannot be read or written means every notice is due.
        every: seconds before a notice is shown again.
        get_time: the clock.
    """

    def __init__(
        self, path: Path, *, every: float = DAY, get_time: Callable[[], float] = time.time
    ) -> None:
        self.path = path
        self.every = every
        self.get_time = get_time

    def due(self, key: str) -> bool:
        last = self._read().get(key)
        return not isinstance(last, int | float) or self.get_time() - last >= self.every

    def shown(self, key: str) -> None:
        shown = {**self._read(), key: self.get_time()}
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        # Best effort: a home that cannot be written only costs the notice again.
        with contextlib.suppress(OSError):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary.write_text(json.dumps(shown), encoding="utf-8")
            temporary.replace(self.path)

    def _read(self) -> dict[str, object]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}


def offline_notice(settings: Settings) -> str | None:
    """One line when only in-process models will answer (no remote provider usable)."""
    from ..core.providers.kinds import kind_of

    active = settings.client.providers
    if not active or not all(kind_of(p).in_process for p in active):
        return None
    missing = [
        p.api_key_env
        for name, p in settings.providers.items()
        if name in settings.provider_order and p.api_key_env and not p.api_key
    ]
    why = f" (no API key set: {', '.join(missing)})" if missing else ""
    return (
        f"answering offline with the local model {active[0].model}{why}. "
        "It is small: for real work export a provider key, or run `qwen-dev config init`."
    )


def workspace_notice(workspace: Path, home: Path | None = None) -> str | None:
    """One line when the workspace is the home folder or holds it (``/``, ``/home``):
    the sandbox lets commands change anything in the workspace, and tools read it."""
    try:
        root, home = workspace.resolve(), (home or Path.home()).resolve()
    except (OSError, RuntimeError):
        return None
    if not home.is_relative_to(root):
        return None
    where = "your home folder" if root == home else f"{root}, which holds your home folder"
    return (
        f"the workspace is {where}: commands the model runs may change any file in it "
        "(credentials stay out of reach). Start qwen-dev in a project folder."
    )


def no_provider_error(settings: Settings) -> NoProviderConfigured:
    """The error when no provider is left, naming each one skipped and why
    (``sambanova: SAMBANOVA_API_KEY is not set``), so the fix is in the message."""
    from ..core.errors import NoProviderConfigured

    skipped = settings.skipped_providers
    if not skipped:
        return NoProviderConfigured("no provider is configured")
    reasons = "; ".join(f"{name} skipped: {why}" for name, why in skipped.items())
    variable = settings.providers[next(iter(skipped))].api_key_env
    example = f" (e.g. {variable}=...)" if variable else ""
    return NoProviderConfigured(
        f"no provider is configured ({reasons}); export a key{example} or configure "
        "another provider (`qwen-dev doctor` checks them)"
    )


def startup_notices(
    settings: Settings, *, verbose: bool, daily: NoticeLog | None = None
) -> list[str]:
    """The offline notice (once a day through ``daily``, else always); the per-provider
    notes (skipped providers...) only when ``verbose`` (an interactive terminal), so
    scripts' stderr stays quiet."""
    notes = list(settings.notices) if verbose else []
    offline = offline_notice(settings)
    if offline:
        notes = [n for n in notes if "skipped" not in n]
        if daily is None:
            notes.append(offline)
        elif daily.due("offline"):
            daily.shown("offline")
            notes.append(offline)
    return notes


#: Seconds a quota of unknown reset is not announced again for the same provider.
QUOTA_REPEAT = 3600.0


class ClientNotices:
    """The client's events as lines for a person, one each, through ``say``.

    ``chatty`` (a terminal, or ``--verbose``): every event but an attempt starting
    (retries, failovers, breakers, waits for budget, local throttling, a spent retry
    budget). Otherwise only what a script's user must hear anyway: a provider's quota
    exhausted. A quota is said once per provider, with its reset time, until that reset
    passes: not once per attempt or per process that meets it.

    Args:
        say: writes one line (``qwen-dev: ...`` on stderr in the CLI).
        chatty: say everything, not only quotas.
        clock: monotonic seconds, for quota resets.
        wall: epoch seconds, for the reset's time of day.
    """

    def __init__(
        self,
        say: Callable[[str], None],
        *,
        chatty: bool,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._say = say
        self._chatty = chatty
        self._clock = clock
        self._wall = wall
        #: provider -> when (monotonic) its quota's announcement runs out.
        self._quotas: dict[str, float] = {}

    def __call__(self, event: ClientEvent) -> None:
        if isinstance(event, QuotaExhausted):
            self._quota(event)
        elif self._chatty and not isinstance(event, AttemptStarted):
            self._say(describe(event))

    def _quota(self, event: QuotaExhausted) -> None:
        now = self._clock()
        if self._quotas.get(event.provider, -1.0) > now:
            return
        reset_in = event.reset_in
        self._quotas[event.provider] = now + (QUOTA_REPEAT if reset_in is None else reset_in)
        self._say(quota_line(event, self._wall()))


def quota_line(event: QuotaExhausted, now: float) -> str:
    """``quota exhausted on alpha until 14:05 (in 2h 3m): insufficient_quota``."""
    if event.reset_in is None:
        when = "until it resets (the provider did not say when)"
    else:
        at = time.strftime("%H:%M", time.localtime(now + event.reset_in))
        when = f"until {at} (in {_span(event.reset_in)})"
    detail = f": {event.detail}" if event.detail else ""
    return f"quota exhausted on {event.provider} {when}{detail}"


def _span(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"
