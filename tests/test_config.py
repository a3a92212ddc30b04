"""Configuration: files, environment and flags -> frozen settings
(docs/architecture.md section 3)."""

from __future__ import annotations

import json
import os
import re
import stat
import textwrap
from pathlib import Path
from typing import Any

import pytest

from qwen_dev_cli.config import (
    PROJECT_CONFIG_NAME,
    STARTER_CONFIG,
    ConfigError,
    Overrides,
    Settings,
    data_dir,
    find_project_config,
    load_settings,
    redacted,
    user_config_path,
)
from qwen_dev_cli.core.settings import BreakerSettings, RetrySettings
from tests.test_cli_ask import qwen_dev

SECRET = "sk-very-secret-value-123"


class Env:
    """A test's world: a user config file, a project folder (the cwd) and variables."""

    def __init__(self, tmp_path: Path) -> None:
        self.root = tmp_path
        self.user = tmp_path / "user" / "config.toml"
        self.user.parent.mkdir()
        self.user.write_text("")  # QWEN_DEV_CONFIG names it: it must exist
        self.repo = tmp_path / "repo"
        self.repo.mkdir()
        self.project = self.repo / ".qwen-dev.toml"
        self.vars: dict[str, str] = {
            "QWEN_DEV_HOME": str(tmp_path / "home"),
            "QWEN_DEV_CONFIG": str(self.user),
        }

    def write_user(self, text: str) -> Path:
        self.user.write_text(textwrap.dedent(text))
        return self.user

    def write_project(self, text: str) -> Path:
        self.project.write_text(textwrap.dedent(text))
        return self.project

    def load(
        self,
        path: str | Path | None = None,
        overrides: Overrides | None = None,
        cwd: Path | None = None,
        **variables: str,
    ) -> Settings:
        return load_settings(
            path,
            overrides=overrides,
            env={**self.vars, **variables},
            cwd=self.repo if cwd is None else cwd,
        )

    def error(self, *args: Any, **kwargs: Any) -> ConfigError:
        with pytest.raises(ConfigError) as info:
            self.load(*args, **kwargs)
        assert info.value.exit_code == 2
        return info.value


@pytest.fixture
def world(tmp_path: Path) -> Env:
    return Env(tmp_path)


def active(settings: Settings) -> list[str]:
    return [p.name for p in settings.client.providers]


# ------------------------------------------------------------------------- defaults


def test_defaults_without_files_or_keys_use_local_only(world: Env) -> None:
    settings = world.load()

    assert active(settings) == ["local"]
    assert settings.provider_order == ("sambanova", "hf", "local")
    assert settings.notices == (
        "sambanova skipped: SAMBANOVA_API_KEY is not set",
        "hf skipped: HF_TOKEN is not set",
    )
    assert settings.approval == "ask"
    assert settings.client.retry == RetrySettings()
    assert settings.client.circuit_breaker == BreakerSettings()
    assert settings.client.rate_limit_enabled is True
    assert settings.client.telemetry_enabled is True
    assert settings.session_retention_days == 30
    assert settings.client.state_store == "local"
    assert settings.config_path == world.user
    assert settings.project_config_path is None
    assert settings.home == world.root / "home"


def test_presets_are_all_defined_even_when_skipped(world: Env) -> None:
    providers = world.load().providers

    assert set(providers) == {"sambanova", "hf", "ollama", "local"}
    assert providers["sambanova"].base_url == "https://api.sambanova.ai/v1"
    assert providers["sambanova"].model == "Qwen2.5-Coder-32B-Instruct"
    assert providers["hf"].base_url == "https://router.huggingface.co/v1"
    assert providers["hf"].model == "Qwen/Qwen2.5-Coder-32B-Instruct"
    assert providers["ollama"].base_url == "http://127.0.0.1:11434/v1"
    assert providers["ollama"].api_key_env is None
    assert providers["local"].kind == "llama-cpp"
    assert providers["local"].model == "SmolLM2-135M-Instruct"
    assert providers["local"].model_path is None
    assert all(p.rpm is None and p.tpm is None for p in providers.values())


def test_keys_from_environment_activate_presets_in_order(world: Env) -> None:
    settings = world.load(SAMBANOVA_API_KEY=SECRET, HF_TOKEN="hf-token")

    assert active(settings) == ["sambanova", "hf", "local"]
    assert settings.client.providers[0].api_key == SECRET
    assert settings.client.providers[1].api_key == "hf-token"
    assert settings.notices == ()


def test_empty_key_variable_counts_as_unset(world: Env) -> None:
    settings = world.load(SAMBANOVA_API_KEY="  ", HF_TOKEN="hf-token")

    assert active(settings) == ["hf", "local"]
    assert settings.notices == ("sambanova skipped: SAMBANOVA_API_KEY is not set",)


def test_key_is_stripped_of_surrounding_whitespace(world: Env) -> None:
    settings = world.load(HF_TOKEN="hf-token\n")

    assert settings.providers["hf"].api_key == "hf-token"


def test_no_active_provider_leaves_a_notice(world: Env) -> None:
    world.write_user('provider_order = ["sambanova"]\n')

    settings = world.load()

    assert active(settings) == []
    assert any("no provider is active" in n for n in settings.notices)


def test_settings_are_frozen(world: Env) -> None:
    settings = world.load()

    with pytest.raises(AttributeError):
        settings.approval = "yolo"  # type: ignore[misc]  # the write is the test
    with pytest.raises(TypeError):
        settings.providers["x"] = settings.providers["local"]  # type: ignore[index]  # as above


# ------------------------------------------------------------------------ user file


def test_user_provider_table_merges_over_preset(world: Env) -> None:
    world.write_user(
        """
        [providers.sambanova]
        rpm = 50
        tpm = 10000
        timeout = 30
        native_tools = false
        max_tokens = 2048
        """
    )

    sambanova = world.load(SAMBANOVA_API_KEY=SECRET).providers["sambanova"]

    assert sambanova.base_url == "https://api.sambanova.ai/v1"
    assert sambanova.api_key_env == "SAMBANOVA_API_KEY"
    assert (sambanova.rpm, sambanova.tpm, sambanova.max_tokens) == (50, 10000, 2048)
    assert sambanova.timeout == 30.0
    assert isinstance(sambanova.timeout, float)
    assert sambanova.native_tools is False


def test_sections_are_read(world: Env) -> None:
    world.write_user(
        """
        approval = "auto-edit"
        [retry]
        max_retries = 5
        base_delay = 2
        max_delay = 30.5
        max_retry_after = 0
        jitter = "full"
        [circuit_breaker]
        enabled = false
        failure_threshold = 2
        recovery_timeout = 10
        half_open_max_calls = 1
        [rate_limit]
        enabled = false
        [telemetry]
        enabled = false
        [sessions]
        retention_days = 7
        [state]
        store = "memory"
        """
    )

    settings = world.load()

    assert settings.approval == "auto-edit"
    assert settings.client.retry == RetrySettings(5, 2.0, 30.5, 0.0, "full")
    assert isinstance(settings.client.retry.base_delay, float)
    assert settings.client.circuit_breaker == BreakerSettings(False, 2, 10.0, 1)
    assert settings.client.rate_limit_enabled is False
    assert settings.client.telemetry_enabled is False
    assert settings.session_retention_days == 7
    assert settings.client.state_store == "memory"


def test_config_from_qwen_dev_config_variable_is_used(world: Env) -> None:
    elsewhere = world.root / "elsewhere.toml"
    elsewhere.write_text('approval = "yolo"\n')

    settings = world.load(QWEN_DEV_CONFIG=str(elsewhere))

    assert settings.approval == "yolo"
    assert settings.config_path == elsewhere


def test_missing_file_at_default_location_means_defaults(
    world: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(world.root / "xdg"))  # platformdirs' default
    env = {k: v for k, v in world.vars.items() if k != "QWEN_DEV_CONFIG"}
    settings = load_settings(None, env=env, cwd=world.repo)
    assert settings.approval == "ask"
    assert not settings.config_path.exists()


def test_qwen_dev_config_naming_a_missing_file_is_an_error(world: Env) -> None:
    missing = world.root / "missing.toml"
    error = world.error(QWEN_DEV_CONFIG=str(missing))
    assert str(missing) in str(error)
    assert "not found" in str(error)


def test_explicit_path_is_used_instead_of_the_default_location(world: Env) -> None:
    world.write_user('approval = "yolo"\n')
    explicit = world.root / "explicit.toml"
    explicit.write_text('approval = "auto-edit"\n')

    settings = world.load(explicit)

    assert settings.approval == "auto-edit"
    assert settings.config_path == explicit


def test_explicit_path_that_does_not_exist_is_an_error(world: Env) -> None:
    missing = world.root / "missing.toml"

    error = world.error(missing)

    assert str(missing) in str(error)
    assert "not found" in str(error)


# ------------------------------------------------------------------ provider order


def test_user_defined_provider_comes_first_when_order_is_not_set(world: Env) -> None:
    world.write_user(
        """
        [providers.mylab]
        base_url = "http://127.0.0.1:8000/v1"
        model = "qwen2.5-coder"

        [providers.sambanova]
        rpm = 10

        [providers.tiny]
        kind = "llama-cpp"
        model_path = "/models/tiny.gguf"
        """
    )

    settings = world.load()

    assert settings.provider_order == ("mylab", "tiny", "sambanova", "hf", "local")
    assert active(settings) == ["mylab", "tiny", "local"]
    mylab = settings.providers["mylab"]
    assert (mylab.kind, mylab.base_url, mylab.model, mylab.api_key_env) == (
        "openai",
        "http://127.0.0.1:8000/v1",
        "qwen2.5-coder",
        None,
    )


def test_provider_order_lists_the_only_active_providers(world: Env) -> None:
    world.write_user(
        """
        provider_order = ["ollama", "local"]
        [providers.mylab]
        base_url = "http://127.0.0.1:8000/v1"
        model = "qwen2.5-coder"
        """
    )

    settings = world.load(SAMBANOVA_API_KEY=SECRET)

    assert active(settings) == ["ollama", "local"]
    assert "mylab" in settings.providers
    assert settings.notices == ()


def test_user_defined_provider_with_key_variable(world: Env) -> None:
    world.write_user(
        """
        [providers.mylab]
        base_url = "https://lab.example/v1/"
        model = "qwen"
        api_key_env = "MYLAB_API_KEY"
        """
    )

    skipped = world.load()
    used = world.load(MYLAB_API_KEY=SECRET)

    assert "mylab skipped: MYLAB_API_KEY is not set" in skipped.notices
    assert active(used)[0] == "mylab"
    assert used.providers["mylab"].api_key == SECRET
    assert used.providers["mylab"].base_url == "https://lab.example/v1"


def test_llama_cpp_provider_model_defaults_to_file_name(world: Env) -> None:
    world.write_user(
        """
        [providers.tiny]
        kind = "llama-cpp"
        model_path = "models/tiny-q4.gguf"
        """
    )

    tiny = world.load().providers["tiny"]

    assert tiny.model == "tiny-q4"
    assert tiny.model_path == str(world.user.parent / "models" / "tiny-q4.gguf")


def test_provider_flag_selects_providers_in_order(world: Env) -> None:
    settings = world.load(
        overrides=Overrides(providers=("ollama", "hf,local", "ollama")), HF_TOKEN="t"
    )

    assert settings.provider_order == ("ollama", "hf", "local")
    assert active(settings) == ["ollama", "hf", "local"]


def test_provider_flag_with_missing_key_is_an_error(world: Env) -> None:
    error = world.error(overrides=Overrides(providers=("sambanova",)))

    assert "--provider" in str(error)
    assert "export SAMBANOVA_API_KEY" in str(error)


def test_provider_variable_with_missing_key_is_an_error(world: Env) -> None:
    error = world.error(QWEN_DEV_PROVIDER="hf")

    assert "QWEN_DEV_PROVIDER" in str(error)
    assert "export HF_TOKEN" in str(error)


def test_unknown_provider_flag_lists_known_names(world: Env) -> None:
    error = world.error(overrides=Overrides(providers=("sambanva",)))

    message = str(error)
    assert "--provider" in message
    assert "'sambanva'" in message
    assert "did you mean 'sambanova'" in message
    for name in ("sambanova", "hf", "ollama", "local"):
        assert name in message


def test_unknown_provider_variable_lists_known_names(world: Env) -> None:
    error = world.error(QWEN_DEV_PROVIDER="nope")

    assert "QWEN_DEV_PROVIDER" in str(error)
    assert "known providers: sambanova, hf, ollama, local" in str(error)


def test_provider_order_naming_undefined_provider_is_an_error(world: Env) -> None:
    path = world.write_user('provider_order = ["hf", "mylab"]\n')

    error = world.error()

    assert str(path) in str(error)
    assert "provider_order" in str(error)
    assert "'mylab'" in str(error)
    assert error.key == "provider_order"


def test_provider_order_with_duplicates_is_an_error(world: Env) -> None:
    world.write_user('provider_order = ["hf", "hf"]\n')

    assert "listed twice" in str(world.error())


def test_empty_provider_order_is_an_error(world: Env) -> None:
    world.write_user("provider_order = []\n")

    assert "at least one provider" in str(world.error())


# ---------------------------------------------------------------------- precedence


def test_approval_precedence(world: Env) -> None:
    world.write_user('approval = "yolo"\n')
    assert world.load().approval == "yolo"

    world.write_project('approval = "auto-edit"\n')
    assert world.load().approval == "auto-edit"

    assert world.load(QWEN_DEV_APPROVAL="ask").approval == "ask"

    overrides = Overrides(approval="yolo")
    assert world.load(overrides=overrides, QWEN_DEV_APPROVAL="ask").approval == "yolo"


def test_model_precedence(world: Env) -> None:
    world.write_user('provider_order = ["ollama"]\n[providers.ollama]\nmodel = "user-model"\n')
    assert world.load().providers["ollama"].model == "user-model"

    # A project file may not choose the model (issue 22: what your key is billed for).
    world.write_project('[providers.ollama]\nmodel = "project-model"\n')
    assert "providers.ollama.model" in str(world.error())
    world.project.unlink()

    assert world.load(QWEN_DEV_MODEL="env-model").providers["ollama"].model == "env-model"

    overrides = Overrides(model="flag-model")
    settings = world.load(overrides=overrides, QWEN_DEV_MODEL="env-model")
    assert settings.providers["ollama"].model == "flag-model"
    assert settings.client.providers[0].model == "flag-model"


def test_the_local_model_is_its_file_not_a_name_a_flag_can_change(world: Env) -> None:
    # Answers would still come from the loaded file, labelled with the other name.
    error = world.error(overrides=Overrides(model="foo-model"))
    assert "local runs its model file in-process" in str(error)
    assert "model_path under [providers.local]" in str(error)
    assert error.source == "--model"

    settings = world.load(QWEN_DEV_MODEL="foo-model")
    assert settings.providers["local"].model != "foo-model"
    assert any("QWEN_DEV_MODEL ignored for local" in note for note in settings.notices)


def test_provider_order_precedence(world: Env) -> None:
    world.vars.update(SAMBANOVA_API_KEY="s", HF_TOKEN="h")
    world.write_user('provider_order = ["hf", "sambanova"]\n')
    assert active(world.load()) == ["hf", "sambanova"]

    world.write_project('provider_order = ["sambanova", "local"]\n')
    assert active(world.load()) == ["sambanova", "local"]

    assert active(world.load(QWEN_DEV_PROVIDER="ollama, hf")) == ["ollama", "hf"]

    overrides = Overrides(providers=("local",))
    assert active(world.load(overrides=overrides, QWEN_DEV_PROVIDER="ollama")) == ["local"]


def test_section_precedence_user_then_project(world: Env) -> None:
    world.write_user("[retry]\nbase_delay = 2\nmax_retries = 7\n")
    world.write_project("[retry]\nbase_delay = 3\n")

    retry = world.load().client.retry

    assert retry.base_delay == 3.0
    assert retry.max_retries == 7


def test_model_override_hits_first_active_provider(world: Env) -> None:
    settings = world.load(overrides=Overrides(model="Qwen3-Coder"), HF_TOKEN="h")

    assert active(settings) == ["hf", "local"]
    assert settings.client.providers[0].model == "Qwen3-Coder"
    assert settings.providers["hf"].model == "Qwen3-Coder"
    assert settings.client.providers[1].model == "SmolLM2-135M-Instruct"
    assert settings.providers["sambanova"].model == "Qwen2.5-Coder-32B-Instruct"


def test_empty_environment_values_are_ignored(world: Env) -> None:
    settings = world.load(QWEN_DEV_PROVIDER="", QWEN_DEV_MODEL="", QWEN_DEV_APPROVAL="")

    assert active(settings) == ["local"]
    assert settings.approval == "ask"
    assert settings.providers["local"].model == "SmolLM2-135M-Instruct"


def test_invalid_approval_variable_is_an_error(world: Env) -> None:
    error = world.error(QWEN_DEV_APPROVAL="always")

    assert "QWEN_DEV_APPROVAL" in str(error)
    assert "'ask', 'auto-edit', 'yolo'" in str(error)


def test_invalid_approval_flag_is_an_error(world: Env) -> None:
    error = world.error(overrides=Overrides(approval="never"))

    assert "--approval" in str(error)
    assert "'never'" in str(error)


# ------------------------------------------------------------------- project file


def test_project_file_is_found_in_a_parent_folder(world: Env) -> None:
    path = world.write_project("[retry]\nmax_retries = 1\n")
    nested = world.repo / "src" / "pkg"
    nested.mkdir(parents=True)

    settings = world.load(cwd=nested)

    assert settings.project_config_path == path
    assert settings.client.retry.max_retries == 1


@pytest.mark.parametrize("key", ["base_url", "api_key_env"])
def test_project_file_may_not_redirect_keys(world: Env, key: str) -> None:
    value = "https://evil.example/v1" if key == "base_url" else "AWS_SECRET_ACCESS_KEY"
    path = world.write_project(f'[providers.sambanova]\n{key} = "{value}"\n')

    error = world.error()

    assert str(path) in str(error)
    assert f"providers.sambanova.{key}" in str(error)
    assert "project file may not set" in str(error)


@pytest.mark.parametrize(
    ("key", "value"), [("kind", '"llama-cpp"'), ("model_path", '"models/evil.gguf"')]
)
def test_project_file_may_not_bring_its_own_model(world: Env, key: str, value: str) -> None:
    world.write_project(f"[providers.local]\n{key} = {value}\n")

    error = world.error()

    assert f"providers.local.{key}" in str(error)
    assert "project file may not set" in str(error)


def test_project_file_may_not_define_a_remote_provider(world: Env) -> None:
    world.write_project('[providers.evil]\nbase_url = "https://evil.example/v1"\nmodel = "m"\n')

    assert "providers.evil.base_url" in str(world.error())


def test_project_file_may_not_raise_approval(world: Env) -> None:
    path = world.write_project('approval = "yolo"\n')

    error = world.error()

    message = str(error)
    assert str(path) in message
    assert "approval" in message
    assert "may not raise approval" in message
    assert "'ask'" in message


def test_project_file_may_not_raise_approval_above_user_value(world: Env) -> None:
    world.write_user('approval = "auto-edit"\n')
    world.write_project('approval = "yolo"\n')

    assert "'auto-edit'" in str(world.error())


def test_project_file_may_lower_approval(world: Env) -> None:
    world.write_user('approval = "yolo"\n')
    world.write_project('approval = "ask"\n')

    assert world.load().approval == "ask"


def test_project_file_may_keep_approval_equal(world: Env) -> None:
    world.write_user('approval = "auto-edit"\n')
    world.write_project('approval = "auto-edit"\n')

    assert world.load().approval == "auto-edit"


def test_project_file_may_set_harmless_provider_keys(world: Env) -> None:
    world.write_project("[providers.hf]\nrpm = 5\nnative_tools = false\n")

    hf = world.load(HF_TOKEN="h").providers["hf"]

    assert (hf.rpm, hf.native_tools) == (5, False)
    assert hf.base_url == "https://router.huggingface.co/v1"


@pytest.mark.parametrize(
    ("user", "project", "key"),
    [
        ("[retry]\nmax_retries = 3\n", "[retry]\nmax_retries = 100\n", "retry.max_retries"),
        ("", "[retry]\nmax_retries = 100\n", "retry.max_retries"),  # above the default
        ("", "[retry]\nbase_delay = 0.01\n", "retry.base_delay"),
        ("", "[circuit_breaker]\nenabled = false\n", "circuit_breaker.enabled"),
        ("", "[circuit_breaker]\nfailure_threshold = 50\n", "circuit_breaker.failure_threshold"),
        ("", "[rate_limit]\nenabled = false\n", "rate_limit.enabled"),
        ("[providers.hf]\nrpm = 10\n", "[providers.hf]\nrpm = 1000\n", "providers.hf.rpm"),
        ("[providers.hf]\ntpm = 10\n", "[providers.hf]\ntpm = 99999\n", "providers.hf.tpm"),
    ],
)
def test_project_file_may_tighten_limits_never_loosen_them(
    world: Env, user: str, project: str, key: str
) -> None:
    # Issue 22, finding 12: a cloned repository turned the breaker and limiter off and
    # set 100 retries, on the user's account.
    world.write_user(user)
    path = world.write_project(project)
    error = world.error()
    assert str(path) in str(error)
    assert key in str(error)
    assert "never loosen" in str(error)


def test_project_file_may_tighten_limits(world: Env) -> None:
    world.write_user("[providers.hf]\nrpm = 50\n")
    world.write_project(
        "[retry]\nmax_retries = 1\nbase_delay = 2\n[circuit_breaker]\nfailure_threshold = 2\n"
        "[providers.hf]\nrpm = 5\ntpm = 1000\n"
    )
    settings = world.load(HF_TOKEN="h")
    assert settings.client.retry.max_retries == 1
    assert settings.client.retry.base_delay == 2
    assert settings.client.circuit_breaker.failure_threshold == 2
    assert (settings.providers["hf"].rpm, settings.providers["hf"].tpm) == (5, 1000)


def test_user_config_inside_the_project_tree_is_not_also_the_project_file(
    world: Env,
) -> None:
    path = world.write_project('approval = "yolo"\n')

    settings = world.load(path)

    assert settings.approval == "yolo"
    assert settings.project_config_path is None


# ---------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("toml", "key", "expected"),
    [
        ('[retry]\nbase_delay = "abc"', "retry.base_delay", "expected a number, got string 'abc'"),
        ("[retry]\nbase_delay = true", "retry.base_delay", "expected a number, got boolean true"),
        ("[retry]\nbase_delay = 0", "retry.base_delay", "greater than 0 and at most 3600, got 0"),
        ("[retry]\nbase_delay = -1.5", "retry.base_delay", "greater than 0 and at most 3600"),
        # Absurd values are mistakes, or a hostile file: each key has a sane range.
        ("[retry]\nbase_delay = 1e308", "retry.base_delay", "at most 3600, got 1e+308"),
        ("[retry]\nmax_retries = 100000000000000000000", "retry.max_retries", "at most 100"),
        (
            "[providers.sambanova]\ntimeout = 1e-9",
            "providers.sambanova.timeout",
            "at least 0.1 and at most 3600",
        ),
        ("[retry]\nmax_delay = 0", "retry.max_delay", "greater than 0"),
        ("[retry]\nmax_retry_after = -1", "retry.max_retry_after", "at least 0"),
        ("[retry]\nmax_retry_after = inf", "retry.max_retry_after", "finite"),
        (
            "[retry]\nmax_retries = -1",
            "retry.max_retries",
            "integer of at least 0 and at most 100, got -1",
        ),
        ("[retry]\nmax_retries = 1.5", "retry.max_retries", "expected an integer, got float 1.5"),
        ("[retry]\njitter = 'random'", "retry.jitter", "one of 'proportional', 'full'"),
        ("[retry]\nbase_delay = 10\nmax_delay = 5", "retry.max_delay", "at least retry.base_delay"),
        ("[retry]\nbase_delay = 120", "retry.base_delay", "no larger than retry.max_delay"),
        ("[circuit_breaker]\nenabled = 'yes'", "circuit_breaker.enabled", "true or false"),
        (
            "[circuit_breaker]\nfailure_threshold = 0",
            "circuit_breaker.failure_threshold",
            "at least 1",
        ),
        (
            "[circuit_breaker]\nrecovery_timeout = 0",
            "circuit_breaker.recovery_timeout",
            "greater than 0",
        ),
        (
            "[circuit_breaker]\nhalf_open_max_calls = 0",
            "circuit_breaker.half_open_max_calls",
            "at least 1",
        ),
        ("[rate_limit]\nenabled = 1", "rate_limit.enabled", "got integer 1"),
        ("[telemetry]\nenabled = 'no'", "telemetry.enabled", "true or false"),
        ("[sessions]\nretention_days = 0", "sessions.retention_days", "at least 1"),
        ("retry = 3", "retry", "expected a table"),
        ("approval = 'always'", "approval", "'ask', 'auto-edit', 'yolo'"),
        ("approval = 1", "approval", "got integer 1"),
        ("provider_order = 'hf'", "provider_order", "an array of provider names"),
        ("provider_order = [1]", "provider_order", "a provider name, got integer 1"),
        ("[providers.sambanova]\nrpm = 0", "providers.sambanova.rpm", "at least 1"),
        ("[providers.sambanova]\ntpm = -5", "providers.sambanova.tpm", "at least 1"),
        ("[providers.sambanova]\ntimeout = 0", "providers.sambanova.timeout", "at least 0.1"),
        ("[providers.sambanova]\ntimeout = '30'", "providers.sambanova.timeout", "a number"),
        ("[providers.sambanova]\nmax_tokens = 0", "providers.sambanova.max_tokens", "at least 1"),
        ("[providers.hf]\nnative_tools = 'no'", "providers.hf.native_tools", "true or false"),
        ("[providers.hf]\nmodel = ''", "providers.hf.model", "non-empty"),
        ("[providers.mylab]\nkind = 'vllm'", "providers.mylab.kind", "'openai', 'llama-cpp'"),
        ("[providers.mylab]\nbase_url = 'ftp://x'\nmodel = 'm'", "providers.mylab.base_url", "URL"),
        ("[providers.mylab]\nmodel = 'm'", "providers.mylab.base_url", "needs base_url and model"),
        ("[providers.mylab]\nbase_url = 'http://h/v1'", "providers.mylab.model", "needs base_url"),
        ("[providers.mylab]\nkind = 'llama-cpp'", "providers.mylab.model", "needs model"),
        ("[providers.local]\nkind = 'openai'", "providers.local.base_url", "needs base_url"),
        ("[providers.mylab]\nmodel = 3", "providers.mylab.model", "a string, got integer 3"),
        ("[providers]\nmylab = 3", "providers.mylab", "expected a table"),
        ('[providers."my lab"]\nmodel = "m"', "providers.my lab", "provider name"),
    ],
)
def test_bad_value_names_file_key_and_expectation(
    world: Env, toml: str, key: str, expected: str
) -> None:
    path = world.write_user(toml + "\n")

    error = world.error()

    message = str(error)
    assert message.startswith(f"{path}: {key}: "), message
    assert expected in message, message
    assert error.key == key
    assert error.source == str(path)


@pytest.mark.parametrize(
    ("toml", "key", "hint"),
    [
        ("[retry]\nbase_dealy = 1.0", "retry.base_dealy", "did you mean 'base_delay'?"),
        ("[circuit_breaker]\nthreshold = 3", "circuit_breaker.threshold", "'failure_threshold'"),
        ("[providers.hf]\nmodle = 'x'", "providers.hf.modle", "did you mean 'model'?"),
        ("[retyr]\nmax_retries = 1", "retyr", "did you mean 'retry'?"),
        ("aproval = 'ask'", "aproval", "did you mean 'approval'?"),
        ("max_retries = 2", "max_retries", "put it under [retry]"),
        ("[sessions]\nzzz = 1", "sessions.zzz", "known keys: retention_days"),
    ],
)
def test_unknown_key_suggests_the_closest_known_key(
    world: Env, toml: str, key: str, hint: str
) -> None:
    path = world.write_user(toml + "\n")

    message = str(world.error())

    assert message.startswith(f"{path}: {key}: "), message
    assert hint in message


def test_ints_are_accepted_where_floats_are_expected(world: Env) -> None:
    world.write_user("[retry]\nbase_delay = 2\nmax_delay = 8\n[circuit_breaker]\n")

    retry = world.load().client.retry

    assert (retry.base_delay, retry.max_delay) == (2.0, 8.0)
    assert all(isinstance(v, float) for v in (retry.base_delay, retry.max_delay))


def test_api_key_in_file_is_refused_without_echoing_it(world: Env) -> None:
    path = world.write_user(
        f'[providers.mylab]\nbase_url = "http://h/v1"\nmodel = "m"\napi_key = "{SECRET}"\n'
    )

    message = str(world.error())

    assert message.startswith(f"{path}: providers.mylab.api_key: ")
    assert "environment variable" in message
    assert "api_key_env = 'MYLAB_API_KEY'" in message
    assert SECRET not in message


def test_key_pasted_into_api_key_env_is_not_echoed(world: Env) -> None:
    path = world.write_user(f'[providers.hf]\napi_key_env = "{SECRET}"\n')

    message = str(world.error())

    assert message.startswith(f"{path}: providers.hf.api_key_env: ")
    assert "name of an environment variable" in message
    assert SECRET not in message


def test_toml_syntax_error_names_file_line_and_column(world: Env) -> None:
    path = world.write_user('approval = "ask"\n[retry\nmax_retries = 3\n')

    message = str(world.error())

    assert message.startswith(f"{path}: invalid TOML: ")
    assert "line 2" in message
    assert "column" in message


def test_project_file_syntax_error_names_the_project_file(world: Env) -> None:
    path = world.write_project("approval = \n")

    message = str(world.error())

    assert message.startswith(f"{path}: invalid TOML")


def test_config_path_that_is_a_directory_is_an_error(world: Env) -> None:
    folder = world.root / "folder"
    folder.mkdir()

    explicit = world.error(folder)
    default = world.error(QWEN_DEV_CONFIG=str(folder))

    for error in (explicit, default):
        assert str(error) == f"{folder}: is a directory, expected a TOML file"


def test_unreadable_config_is_an_error(world: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    path = world.write_user('approval = "ask"\n')

    def denied(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", denied)

    message = str(world.error())

    assert message == f"{path}: cannot read the file: permission denied"


def test_config_that_is_not_utf8_is_an_error(world: Env) -> None:
    world.user.write_bytes(b'approval = "\xff"\n')

    assert "not valid UTF-8" in str(world.error())


def test_empty_model_flag_is_an_error(world: Env) -> None:
    error = world.error(overrides=Overrides(model=" "))

    assert str(error).startswith("--model: model: ")


# ----------------------------------------------------------------------- state store

REDIS_URL = f"redis://:{SECRET}@redis.example:6379/2"


def test_state_store_precedence(world: Env) -> None:
    world.write_user('[state]\nstore = "memory"\n')

    assert world.load().client.state_store == "memory"
    assert world.load(QWEN_DEV_STATE="rediss://redis.example/0").client.state_store == (
        "rediss://redis.example/0"
    )
    assert world.load(QWEN_DEV_STATE=" ").client.state_store == "memory"


def test_state_variable_is_validated_and_named(world: Env) -> None:
    error = world.error(QWEN_DEV_STATE="redis://redis.example:port/0")

    assert str(error).startswith("QWEN_DEV_STATE: state.store: malformed Redis URL")
    assert (error.source, error.key) == ("QWEN_DEV_STATE", "state.store")


def test_project_file_may_not_choose_the_state_store(world: Env) -> None:
    world.write_user('[state]\nstore = "memory"\n')
    path = world.write_project('[state]\nstore = "redis://evil.example:6379/0"\n')

    error = world.error()

    message = str(error)
    assert message.startswith(f"{path}: state.store: a project file may not set [state] store")
    assert "QWEN_DEV_STATE" in message
    assert error.key == "state.store"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('"redis://redis.example:port/0"', "malformed Redis URL"),
        ('"redis://:6379/0"', "no host"),
        ('"redis://redis.example:6379/db"', "the database must be a number"),
        ("6379", "expected 'local', 'memory' or a redis://host:port/db URL, got integer"),
    ],
)
def test_malformed_state_store_names_file_and_key(world: Env, value: str, expected: str) -> None:
    path = world.write_user(f"[state]\nstore = {value}\n")

    error = world.error()

    assert str(error).startswith(f"{path}: state.store: "), str(error)
    assert expected in str(error)
    assert (error.source, error.key) == (str(path), "state.store")


@pytest.mark.parametrize("value", ["sqlite", "memcached://cache:11211", "http://redis:6379"])
def test_unknown_state_store_lists_the_accepted_ones(world: Env, value: str) -> None:
    path = world.write_user(f'[state]\nstore = "{value}"\n')

    message = str(world.error())

    assert message.startswith(f"{path}: state.store: unknown state store"), message
    for accepted in ("'local'", "'memory'", "redis://", "rediss://"):
        assert accepted in message


def test_a_redis_password_never_appears_in_errors(world: Env) -> None:
    bad = f"redis://:{SECRET}@redis.example:port/0"

    assert SECRET not in str(world.error(QWEN_DEV_STATE=bad))
    assert SECRET not in str(world.error(QWEN_DEV_STATE=bad.replace("redis", "memcached")))


# ------------------------------------------------------------------------- redaction


def test_redacted_never_contains_the_key(world: Env) -> None:
    world.write_user('[providers.mylab]\nbase_url = "http://h/v1"\nmodel = "m"\n')
    world.write_project('approval = "ask"\n')
    settings = world.load(SAMBANOVA_API_KEY=SECRET)

    view = redacted(settings)
    text = json.dumps(view)

    assert SECRET not in text
    assert view["providers"]["sambanova"]["api_key"] == "***"
    assert view["providers"]["hf"]["api_key"] is None
    assert view["providers"]["sambanova"]["active"] is True
    assert view["providers"]["hf"]["active"] is False
    assert view["config_path"] == str(world.user)
    assert view["project_config_path"] == str(world.project)
    assert view["home"] == str(world.root / "home")
    assert view["active_providers"] == ["mylab", "sambanova", "local"]
    assert view["notices"] == ["hf skipped: HF_TOKEN is not set"]
    assert view["retry"]["max_retries"] == 3


def test_redacted_hides_the_redis_password(world: Env) -> None:
    world.write_user(f'[state]\nstore = "{REDIS_URL}"\n')
    settings = world.load()

    view = redacted(settings)

    assert settings.client.state_store == REDIS_URL
    assert view["state"] == {"store": "redis://:***@redis.example:6379/2"}
    assert SECRET not in json.dumps(view)
    assert SECRET not in repr(settings)
    assert redacted(world.load(QWEN_DEV_STATE="local"))["state"] == {"store": "local"}


@pytest.mark.slow
async def test_config_show_hides_the_redis_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QWEN_DEV_STATE", REDIS_URL)

    run = await qwen_dev("config", "show")

    assert run.code == 0, run.err
    assert json.loads(run.out)["state"] == {"store": "redis://:***@redis.example:6379/2"}
    assert SECRET not in run.out + run.err


@pytest.mark.slow
async def test_a_bad_state_store_exits_2_before_anything_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("QWEN_DEV_STATE", "memcached://cache:11211")

    run = await qwen_dev("ask", "hello")

    assert run.code == 2
    assert run.err.startswith("qwen-dev: QWEN_DEV_STATE: state.store: unknown state store")
    assert "Traceback" not in run.err


def test_key_never_appears_in_repr_or_notices(world: Env) -> None:
    settings = world.load(SAMBANOVA_API_KEY=SECRET)

    assert SECRET not in repr(settings)
    assert all(SECRET not in notice for notice in settings.notices)


# --------------------------------------------------------------------------- starter


def test_starter_config_loads_as_the_defaults(world: Env) -> None:
    world.user.write_text(STARTER_CONFIG)
    settings = world.load()

    world.user.write_text("")  # an empty file: the defaults

    assert settings == world.load()


def test_starter_config_documents_the_real_defaults(world: Env) -> None:
    """Uncommenting every `# key = value` line changes nothing."""
    uncommented = re.sub(r"(?m)^# (\w+ = .+)$", r"\1", STARTER_CONFIG)
    assert uncommented != STARTER_CONFIG
    world.user.write_text(uncommented)
    settings = world.load()

    world.user.write_text("")  # an empty file: the defaults
    defaults = world.load()

    assert settings.client == defaults.client
    assert settings.providers == defaults.providers
    assert settings.approval == defaults.approval
    assert settings.provider_order == defaults.provider_order
    assert settings.session_retention_days == defaults.session_retention_days
    assert '# store = "local"' in STARTER_CONFIG
    assert "QWEN_DEV_STATE" in STARTER_CONFIG


# ----------------------------------------------------------------------------- paths


def test_data_dir_comes_from_qwen_dev_home(tmp_path: Path) -> None:
    assert data_dir({"QWEN_DEV_HOME": str(tmp_path)}) == tmp_path


def test_data_dir_defaults_to_platform_data_dir() -> None:
    path = data_dir({})

    assert path.is_absolute()
    assert "qwen-dev" in path.parts


def test_data_dir_reads_os_environ_by_default(qwen_home: Path) -> None:
    assert data_dir() == qwen_home


def test_user_config_path_comes_from_qwen_dev_config(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"

    assert user_config_path({"QWEN_DEV_CONFIG": str(path)}) == path


def test_user_config_path_defaults_to_platform_config_dir() -> None:
    path = user_config_path({})

    assert path.name == "config.toml"
    assert path.parent.name == "qwen-dev"


def test_load_settings_reads_os_environ_by_default(
    qwen_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", "from-environ")

    settings = load_settings(cwd=tmp_path)

    assert settings.home == qwen_home
    assert active(settings) == ["hf", "local"]


# --- hostile or broken config files (issue 11, item 5) ---------------------------------


def test_project_file_may_not_set_session_retention(world: Env) -> None:
    world.write_project("[sessions]\nretention_days = 1\n")
    error = world.error()
    assert "sessions.retention_days" in str(error)
    assert "every project" in str(error)


def test_project_file_above_the_repository_root_is_not_read(world: Env) -> None:
    (world.root / PROJECT_CONFIG_NAME).write_text("[retry]\nmax_retries = 9\n")
    (world.repo / ".git").mkdir()
    assert find_project_config(world.repo, home=world.root.parent) is None
    assert world.load().client.retry.max_retries != 9


def test_project_file_in_a_folder_anyone_may_write_is_passed_over(world: Env) -> None:
    shared = world.root / "shared"
    (shared / "work").mkdir(parents=True)
    shared.chmod(0o1777)  # like /tmp
    (shared / PROJECT_CONFIG_NAME).write_text("[retry]\nmax_retries = 9\n")
    assert find_project_config(shared / "work", home=world.root / "home") is None


def test_project_file_search_stops_at_home(world: Env) -> None:
    home = world.root / "me"
    (home / "code").mkdir(parents=True)
    (world.root / PROJECT_CONFIG_NAME).write_text("")
    assert find_project_config(home / "code", home=home) is None


@pytest.mark.parametrize("kind", ["fifo", "dev_zero", "huge"])
def test_a_config_that_is_not_a_small_regular_file_is_refused_not_read(
    world: Env, kind: str
) -> None:
    if kind == "fifo":
        os.mkfifo(world.project)
    elif kind == "dev_zero":
        world.project.symlink_to("/dev/zero")
    else:
        world.project.write_text("# padding\n" * 200_000)
    error = world.error()
    assert str(world.project) in str(error)
    assert ("regular file" in str(error)) if kind != "huge" else ("1 MiB" in str(error))


def test_deeply_nested_toml_is_a_clean_config_error(world: Env) -> None:
    world.write_user("x = " + "[" * 100_000 + "]" * 100_000 + "\n")
    error = world.error()
    assert "nested too deeply" in str(error) or "invalid TOML" in str(error)


def test_a_state_folder_others_may_write_is_made_private(world: Env) -> None:
    home = world.root / "home"
    home.mkdir()
    home.chmod(0o777)
    settings = world.load()
    assert stat.S_IMODE(home.stat().st_mode) == 0o755
    assert any("writable by you alone" in notice for notice in settings.notices)


def test_what_an_open_state_folder_holds_is_made_private_too(world: Env) -> None:
    # Issue 22, finding 13: the folder was tightened, its sessions/ left at 0777.
    home = world.root / "home"
    (home / "sessions").mkdir(parents=True)
    home.chmod(0o777)
    (home / "sessions").chmod(0o777)
    world.load()
    assert stat.S_IMODE((home / "sessions").stat().st_mode) == 0o755


def test_something_another_user_left_in_an_open_state_folder_is_refused(
    world: Env, tmp_path: Path
) -> None:
    if os.getuid() != 0:
        pytest.skip("making a file another user's needs root")
    home = world.root / "home"
    home.mkdir()
    home.chmod(0o777)
    planted = home / "sessions"
    planted.mkdir()
    os.chown(planted, 65534, 65534)  # nobody
    error = world.error()
    assert "another user put this in your state folder" in str(error)


def test_project_file_may_not_let_commands_reach_the_network(world: Env) -> None:
    world.write_project("[tools]\nallow_network = true\n")
    assert "tools.allow_network" in str(world.error())
    world.project.unlink()
    world.write_user("[tools]\nallow_network = true\n")
    assert world.load().allow_network is True
