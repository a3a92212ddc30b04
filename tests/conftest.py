from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

#: For tests that run the real offline model (slow ones: the fast loop passes without
#: the ``[local]`` extra, its stand-in model needs no llama.cpp).
requires_llama_cpp = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None,
    reason="llama-cpp-python is not installed (the [local] extra; scripts/bootstrap "
    "builds it and installs the offline model)",
)


@pytest.fixture(autouse=True)
def qwen_home(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Every test gets its own state folder and no user config or provider keys."""
    home = tmp_path / "qwen-home"
    monkeypatch.setenv("QWEN_DEV_HOME", str(home))
    # An empty user config (QWEN_DEV_CONFIG must name a file that exists), outside
    # tmp_path, which tests list.
    empty = tmp_path_factory.mktemp("user-config") / "config.toml"
    empty.write_text("")
    monkeypatch.setenv("QWEN_DEV_CONFIG", str(empty))
    for var in (
        "SAMBANOVA_API_KEY",
        "HF_TOKEN",
        "QWEN_DEV_PROVIDER",
        "QWEN_DEV_MODEL",
        "QWEN_DEV_APPROVAL",
        "QWEN_DEV_STATE",
        "OPENAI_API_KEY",
    ):
        monkeypatch.delenv(var, raising=False)
    return home


@pytest.fixture(autouse=True)
def _terminals_end_with_their_test(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A pseudo-terminal child a failed test left behind (the offline model, say) would
    keep a core busy through the tests after it: each one is killed at its test's end."""
    import pexpect

    children: list[pexpect.spawn] = []

    class Tracked(pexpect.spawn):  # type: ignore[misc]  # pexpect ships no types
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            children.append(self)

    monkeypatch.setattr(pexpect, "spawn", Tracked)
    yield
    for child in children:
        if child.isalive():
            child.terminate(force=True)
