#!/usr/bin/env python
"""Start-up time of the CLI, against the interpreter's own start-up in the same run.

    .venv/bin/python scripts/bench_startup.py [--runs 15] [--strict]

Each command is run ``--runs`` times, interleaved round-robin so the machine's drift
spreads over all of them; the median wall time is reported with its ratio to
``python -c pass``. ``ask --json`` asks a fault server on loopback (in its own
process), end to end. Bytecode is cached as it is for a user (the commands run
without ``PYTHONDONTWRITEBYTECODE``, after one warm-up run). Also checked:
``--version`` and ``--help`` import neither prompt-toolkit nor httpx.

Targets (issue 18, on a 2-core machine): ``--version`` <= 0.10 s, ``--help`` <= 0.15 s,
``ask --json`` <= 0.35 s median.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import os
import statistics
import subprocess
import tempfile
import time

from faultserver import FaultServerProcess

#: The most each command's median may take, seconds.
TARGETS = {"qwen-dev --version": 0.10, "qwen-dev --help": 0.15, "qwen-dev ask --json": 0.35}
HEAVY = ("prompt_toolkit", "httpx")
IMPORT_PROBE = (
    "import sys, runpy\n"
    "sys.argv = ['qwen-dev', {flag!r}]\n"
    "try:\n"
    "    runpy.run_module('qwen_dev_cli', run_name='__main__')\n"
    "except SystemExit:\n"
    "    pass\n"
    "heavy = [m for m in {heavy!r} if m in sys.modules]\n"
    "print('HEAVY=' + ','.join(heavy), file=sys.stderr)\n"
)


def qwen_dev() -> list[str]:
    """The installed console script, as a user runs it."""
    script = Path(sys.executable).parent / "qwen-dev"
    return [str(script)] if script.exists() else [sys.executable, "-m", "qwen_dev_cli"]


def timed(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    # Run from QWEN_DEV_HOME's parent, not the repository: `python -m` looks in the
    # working folder first, and would find this checkout instead of --compare's.
    cwd = Path(env["QWEN_DEV_HOME"]).parent
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{command} failed ({done.returncode}): {done.stderr.decode()}")
    return elapsed


def heavy_imports(flag: str, env: dict[str, str]) -> list[str]:
    code = IMPORT_PROBE.format(flag=flag, heavy=HEAVY)
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    line = next(x for x in done.stderr.splitlines() if x.startswith("HEAVY="))
    return [name for name in line.removeprefix("HEAVY=").split(",") if name]


def write_config(folder: Path, base_url: str) -> Path:
    path = folder / "config.toml"
    path.write_text(
        f'provider_order = ["lab"]\n\n[providers.lab]\nbase_url = "{base_url}"\n'
        'model = "fault-model"\n',
        encoding="utf-8",
    )
    return path


Commands = dict[str, tuple[list[str], dict[str, str]]]


def measure(commands: Commands, runs: int) -> dict[str, float]:
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for command, env in commands.values():  # warm the page cache (and bytecode) once
        timed(command, env)
    for _ in range(runs):
        for name, (command, env) in commands.items():
            samples[name].append(timed(command, env))
    return {name: statistics.median(values) for name, values in samples.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument(
        "--compare",
        metavar="TREE",
        type=Path,
        help="also time another checkout (e.g. `git worktree add /tmp/base COMMIT`), run as "
        "`python -m qwen_dev_cli` with PYTHONPATH=TREE, interleaved with this one",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, FaultServerProcess() as server:
        folder = Path(tmp)
        env = {
            **{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
            "QWEN_DEV_HOME": str(folder / "home"),
            "QWEN_DEV_CONFIG": str(folder / "none.toml"),
        }
        config = write_config(folder, server.base_url)
        ask = ["ask", "--json", "--config", str(config), "hi"]
        commands: Commands = {"python -c pass": ([sys.executable, "-c", "pass"], env)}
        trees = [("qwen-dev", qwen_dev(), env)]
        if args.compare is not None:
            other = {**env, "PYTHONPATH": str(args.compare.resolve())}
            trees.append((f"{args.compare.name}:", [sys.executable, "-m", "qwen_dev_cli"], other))
        for label, cli, tree_env in trees:
            for words in (["--version"], ["--help"], ask):
                commands[f"{label} {' '.join(words[:2])}"] = ([*cli, *words], tree_env)
        medians = measure(commands, args.runs)
        heavy = {flag: heavy_imports(flag, env) for flag in ("--version", "--help")}

    baseline = medians["python -c pass"]
    print(f"median of {args.runs} runs each (interleaved), {sys.platform}, {os.cpu_count()} cpus")
    for name, seconds in medians.items():
        print(f"  {name:<26} {seconds * 1000:7.1f} ms   {seconds / baseline:5.1f}x python -c pass")
    for flag, modules in heavy.items():
        print(f"  {flag:<26} imports {', '.join(modules) or 'neither prompt-toolkit nor httpx'}")
    met = {name: medians[name] <= limit for name, limit in TARGETS.items()}
    for name, limit in TARGETS.items():
        verdict = "PASS" if met[name] else "FAIL"
        print(f"target: {name} <= {limit:.2f} s median: {verdict}")
    lean = not any(heavy.values())
    print(f"--version/--help lean: {'PASS' if lean else 'FAIL'}")
    return 1 if args.strict and not (all(met.values()) and lean) else 0


if __name__ == "__main__":
    raise SystemExit(main())
