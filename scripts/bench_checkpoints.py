#!/usr/bin/env python
"""Checkpoint time and storage on a 10,000-file repository, against git's own
``git status`` on the same repository in the same run.

    .venv/bin/python scripts/bench_checkpoints.py [--files 10000] [--runs 15] [--strict]

A repository of ``--files`` source-like text files (1-3 KB each, in 50 x 7 folders) is
made and committed in a temporary folder, and a first checkpoint taken (the shadow
repository is then packed, as it is in the background for a user). Then:

- unchanged: a checkpoint with nothing changed, ``--runs`` times (median);
- one file changed: one file edited, then a checkpoint, ``--runs`` times (median);
- storage: 50 checkpoints, each after a small edit (a line changed in one file), then
  the shadow repository's disk use (blocks, packed) against one copy of the files
  (their total size, without ``.git``).

Each time is also given as a ratio to ``git status --porcelain`` (median of as many
runs, interleaved), which walks the same index the same way.

Targets (issue 25): unchanged <= 150 ms, one file changed <= 200 ms, storage <= 1.1x.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import json
import os
import random
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable

from qwen_dev_cli.checkpoints import ShadowRepo

TARGETS = {"unchanged_ms": 150.0, "one_changed_ms": 200.0, "storage_ratio": 1.1}
WORDS = [
    *("def", "class", "return", "import", "self", "value", "result", "items", "index"),
    *("count", "name", "path", "data", "config", "settings", "client", "request"),
    *("response", "error", "retry", "budget", "token", "stream", "event"),
]


def make_repository(root: Path, files: int, rng: random.Random) -> list[Path]:
    paths = []
    for n in range(files):
        folder = root / f"pkg{n % 50}" / f"sub{n % 7}"
        folder.mkdir(parents=True, exist_ok=True)
        lines = [
            " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 10))) + f"  # {n}.{line}"
            for line in range(rng.randint(20, 60))
        ]
        path = folder / f"module_{n}.py"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        paths.append(path)
    env = git_env(root)
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "base"]):
        subprocess.run(["git", *args], cwd=root, env=env, check=True, capture_output=True)
    return paths


def git_env(root: Path) -> dict[str, str]:
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(root),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "bench",
        "GIT_AUTHOR_EMAIL": "bench@example.invalid",
        "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "bench@example.invalid",
    }


def edit(path: Path, rng: random.Random) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    at = rng.randrange(len(lines))
    lines[at] = f"edited {rng.randrange(1_000_000)} " + lines[at]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def disk_use(root: Path, *, skip: str | None = None) -> tuple[int, int]:
    """(bytes of the files, bytes of disk blocks) under ``root``."""
    size = blocks = 0
    for folder, dirs, files in os.walk(root):
        if skip is not None and Path(folder) == root and skip in dirs:
            dirs.remove(skip)
        for name in files:
            info = os.lstat(os.path.join(folder, name))
            size += info.st_size
            blocks += info.st_blocks * 512
    return size, blocks


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return (time.perf_counter() - start) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    rng = random.Random(25)
    with tempfile.TemporaryDirectory(prefix="qd-bench-ckpt-") as temp:
        root = Path(temp)
        workspace = root / "repo"
        print(f"making a repository of {args.files:,} files...", file=sys.stderr)
        paths = make_repository(workspace, args.files, rng)
        repo = ShadowRepo(workspace, root / "home" / "checkpoints")
        first_ms = timed(lambda: repo.take("bench", "first"))
        repo.close()  # the first checkpoint's objects packed
        status = ["git", "status", "--porcelain"]
        env = git_env(workspace)

        def git_status() -> None:
            subprocess.run(status, cwd=workspace, env=env, check=True, capture_output=True)

        git_status()
        unchanged, baseline = [], []
        for _ in range(args.runs):
            unchanged.append(timed(lambda: repo.take("bench", "unchanged")))
            baseline.append(timed(git_status))
        one_changed = []
        for _ in range(args.runs):
            edit(rng.choice(paths), rng)
            one_changed.append(timed(lambda: repo.take("bench", "one changed")))
        # Storage: a fresh shadow repository, one copy then 50 small edits.
        store = ShadowRepo(workspace, root / "home2" / "checkpoints")
        store.take("storage", "first")
        for n in range(50):
            edit(rng.choice(paths), rng)
            store.take("storage", f"edit {n}")
        store.close()
        repo.close()
        copy_bytes, copy_blocks = disk_use(workspace, skip=".git")
        _, shadow_blocks = disk_use(store.path)
    figures = {
        "files": args.files,
        "first_ms": round(first_ms, 1),
        "unchanged_ms": round(statistics.median(unchanged), 1),
        "one_changed_ms": round(statistics.median(one_changed), 1),
        "git_status_ms": round(statistics.median(baseline), 1),
        "copy_bytes": copy_bytes,
        "copy_disk_bytes": copy_blocks,
        "shadow_disk_bytes": shadow_blocks,
        "storage_ratio": round(shadow_blocks / copy_bytes, 3),
    }
    base = figures["git_status_ms"]
    print(f"files                   {args.files:,}")
    print(f"first checkpoint        {figures['first_ms']:.0f} ms")
    print(
        f"unchanged               {figures['unchanged_ms']:.1f} ms  "
        f"({figures['unchanged_ms'] / base:.2f}x git status; target <= 150 ms)"
    )
    print(
        f"one file changed        {figures['one_changed_ms']:.1f} ms  "
        f"({figures['one_changed_ms'] / base:.2f}x git status; target <= 200 ms)"
    )
    print(f"git status (baseline)   {base:.1f} ms")
    print(
        f"storage, 50 checkpoints {shadow_blocks / 1e6:.1f} MB on disk for "
        f"{copy_bytes / 1e6:.1f} MB of files ({copy_blocks / 1e6:.1f} MB on disk): "
        f"{figures['storage_ratio']:.3f}x one copy (target <= 1.1x)"
    )
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    missed = [key for key, limit in TARGETS.items() if float(figures[key]) > limit]
    if missed:
        print(f"missed: {', '.join(missed)}", file=sys.stderr)
    return 1 if missed and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
