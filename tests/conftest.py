from __future__ import annotations

from pathlib import Path

import pytest


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
