"""A quiet first install (issue 24, item 2): ``scripts/bootstrap`` says what it builds and
about how long, and nothing else; pip's output is kept in a log, shown when it fails.
And the project's own metadata gives setuptools nothing to warn about.

The script runs for real, in a copy of the repository, with a stand-in for Python and
pip that makes the noise a real build makes (building llama.cpp takes minutes)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: A stand-in for ``python``: passes the version check, makes a venv of itself, and as
#: pip prints what setuptools and a compiler print (failing when FAIL_PIP is set).
FAKE_PYTHON = """#!/bin/sh
case "$1" in
  -c) exit 0 ;;
  -m)
    if [ "$2" = venv ]; then mkdir -p "$3/bin"; cp "$0" "$3/bin/python"; exit 0; fi
    if [ "$2" = pip ]; then
      echo "  editable_wheel.py:354: BuildBackendWarning: Editable installation." >&2
      echo "  -- Build files have been written to: /tmp/build"
      if [ -n "$FAIL_PIP" ] && [ "$5" = -e ]; then echo "error: cmake failed" >&2; exit 1; fi
      exit 0
    fi ;;
esac
exit 3
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    copy = tmp_path / "repo"
    (copy / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "bootstrap", copy / "scripts" / "bootstrap")
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    return copy


def run_bootstrap(repo: Path, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, text in {"python-stand-in": FAKE_PYTHON, "bwrap": "#!/bin/sh\nexit 0\n"}.items():
        path = bin_dir / name
        path.write_text(text, encoding="utf-8")
        path.chmod(0o755)
    return subprocess.run(
        ["bash", str(repo / "scripts" / "bootstrap")],
        capture_output=True,
        text=True,
        timeout=60,
        env={
            "PATH": f"{bin_dir}:/usr/bin:/bin",
            "HOME": str(tmp_path),
            "PYTHON": str(bin_dir / "python-stand-in"),
            **env,
        },
    )


def test_the_first_setup_says_what_it_builds_and_how_long_and_nothing_else(
    repo: Path, tmp_path: Path
) -> None:
    first = run_bootstrap(repo, tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stdout == ""
    cores = os.cpu_count() or 2
    [line] = first.stderr.splitlines()
    assert line.startswith("setting up .venv (first run only): building llama.cpp")
    assert f"minutes on {cores} cores" in line or f"minutes on {cores} core" in line
    assert "BuildBackendWarning" in (repo / ".venv" / "bootstrap.log").read_text()
    again = run_bootstrap(repo, tmp_path)
    assert (again.returncode, again.stdout, again.stderr) == (0, "", "")


def test_a_failed_setup_shows_the_end_of_pips_log(repo: Path, tmp_path: Path) -> None:
    failed = run_bootstrap(repo, tmp_path, FAIL_PIP="1")
    assert failed.returncode == 1
    assert "setting up .venv failed" in failed.stderr
    assert "error: cmake failed" in failed.stderr
    assert ".venv/bootstrap.log" in failed.stderr


def test_the_license_is_an_spdx_expression() -> None:
    # A TOML table here made setuptools print a BuildBackendWarning box at each of the
    # build's three steps; a string needs setuptools 77 or later to build.
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["project"]["license"] == "Apache-2.0"
    assert "setuptools>=77" in project["build-system"]["requires"]
    classifiers = project["project"].get("classifiers", [])
    assert not [c for c in classifiers if c.startswith("License ::")]


@pytest.mark.slow
def test_building_the_package_prints_no_warning_of_ours(tmp_path: Path) -> None:
    # A real build, with setuptools from the index in an isolated environment.
    source = tmp_path / "src"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(".venv", ".git", ".mcp-servers", "*.egg-info", "build"),
    )
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", str(source), "-w", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = built.stdout + built.stderr
    if built.returncode != 0 and "setuptools" in output and "No matching" in output:
        pytest.skip("no package index reachable for the isolated build's setuptools")
    assert built.returncode == 0, output
    assert "BuildBackendWarning" not in output
    assert "license" not in output.lower()
