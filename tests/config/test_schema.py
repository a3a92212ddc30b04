"""The schema is declared once, on the settings' fields: whatever a field declares must
reach the user (checked, defaulted, restricted, shown, documented) with no other edit."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from qwen_dev_cli.config import STARTER_CONFIG, ConfigError, Settings, load_settings, redacted
from qwen_dev_cli.config.schema import PROVIDER_KEYS, SECTIONS, Key, sections_of
from qwen_dev_cli.config.starter import CUSTOM_PROVIDER_EXAMPLE
from qwen_dev_cli.core.declarations import Check


def another_value(key: Key) -> object:
    """A valid value of ``key`` other than its default."""
    check: Check | None = key.setting.check
    assert check is not None
    if check.kind == "boolean":
        return not key.default
    if check.kind == "choice":
        return next(c for c in check.choices if c != key.default)
    if check.kind in ("integer", "number"):
        assert check.at_most is not None
        return int(check.at_most) if check.kind == "integer" else float(check.at_most)
    if check.kind == "store":
        return "memory"
    urls = {"url": "http://127.0.0.1:9/v1", "optional_url": "http://127.0.0.1:4318"}
    return {**urls, "env_name": "MYLAB_API_KEY"}.get(check.kind, "m")


def toml(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return f'"{value}"' if isinstance(value, str) else repr(value)


def load(tmp_path: Path, text: str, **env: str) -> Settings:
    user = tmp_path / "config.toml"
    user.write_text(textwrap.dedent(text))
    variables = {"QWEN_DEV_HOME": str(tmp_path / "home"), "QWEN_DEV_CONFIG": str(user), **env}
    return load_settings(env=variables, cwd=tmp_path)


def test_every_table_key_reaches_the_settings(tmp_path: Path) -> None:
    chosen = {s: {k: another_value(key) for k, key in keys.items()} for s, keys in SECTIONS.items()}
    text = "".join(
        f"[{section}]\n" + "".join(f"{k} = {toml(v)}\n" for k, v in values.items())
        for section, values in chosen.items()
    )
    settings = load(tmp_path, text)

    sections = sections_of(settings)
    for section, values in chosen.items():
        for key, value in values.items():
            assert getattr(getattr(sections, section), key) == value, f"{section}.{key}"


def test_every_provider_key_reaches_the_provider(tmp_path: Path) -> None:
    chosen = {k: another_value(key) for k, key in PROVIDER_KEYS.items()}
    text = "[providers.mylab]\n" + "".join(f"{k} = {toml(v)}\n" for k, v in chosen.items())

    provider = load(tmp_path, text, MYLAB_API_KEY="k").providers["mylab"]

    chosen["model_path"] = str(tmp_path / str(chosen["model_path"]))  # relative to the file
    assert {k: getattr(provider, k) for k in chosen} == chosen
    assert provider.api_key == "k"


@pytest.mark.parametrize(
    ("table", "key"),
    [("providers.mylab", k) for k, key in PROVIDER_KEYS.items() if key.setting.project]
    + [(s, k) for s, keys in SECTIONS.items() for k, key in keys.items() if key.setting.project],
)
def test_a_project_file_may_not_set_what_the_schema_forbids(
    tmp_path: Path, table: str, key: str
) -> None:
    value = another_value((PROVIDER_KEYS if "." in table else SECTIONS[table])[key])
    (tmp_path / ".git").mkdir()
    (tmp_path / ".qwen-dev.toml").write_text(f"[{table}]\n{key} = {toml(value)}\n")

    with pytest.raises(ConfigError) as info:
        load(tmp_path, "")

    assert info.value.key == f"{table}.{key}"
    assert "a project file may not set" in info.value.message


def test_the_starter_file_shows_every_table_key_with_its_default() -> None:
    for section, keys in SECTIONS.items():
        body = STARTER_CONFIG.split(f"\n[{section}]\n", 1)[1].split("\n[", 1)[0]
        shown = re.findall(r"(?m)^# (\w+) = ", body)
        assert shown == list(keys), section


def test_the_starter_files_example_provider_is_valid(tmp_path: Path) -> None:
    assert CUSTOM_PROVIDER_EXAMPLE.replace("\n", "\n#   ") in STARTER_CONFIG

    mylab = load(tmp_path, CUSTOM_PROVIDER_EXAMPLE).providers["mylab"]

    assert (mylab.model, mylab.api_key_env) == ("qwen2.5-coder", "MYLAB_API_KEY")


def test_config_show_hides_what_the_schema_marks_secret(tmp_path: Path) -> None:
    settings = load(tmp_path, '[state]\nstore = "redis://:pw@h:6379/0"\n', SAMBANOVA_API_KEY="sk-1")

    view = redacted(settings)

    assert view["providers"]["sambanova"]["api_key"] == "***"
    assert view["state"]["store"] == "redis://:***@h:6379/0"


@pytest.mark.slow  # a real `qwen-dev --help` process
def test_help_imports_neither_the_schema_nor_toml() -> None:
    probe = (
        "import sys, runpy\n"
        "sys.argv = ['qwen-dev', '--help']\n"
        "try:\n"
        "    runpy.run_module('qwen_dev_cli', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = ('tomllib', 'qwen_dev_cli.config.schema', 'qwen_dev_cli.core.settings')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert run.stdout.strip().splitlines()[-1] == "[]"
