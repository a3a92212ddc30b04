#!/usr/bin/env python
"""Benchmarks of ``qwen-dev batch``, with baselines measured in the same run.

    .venv/bin/python scripts/bench_batch.py [--quick] [--only NAME] [--json out.json] [--strict]

Every run is a real ``qwen-dev batch`` process against ``faultserver`` servers in
their own processes, each with a fresh QWEN_DEV_HOME (so a fresh ``local`` state store).
``--only`` takes:

chaos    2,000 prompts; provider A answers 30% faults (10% 429 with Retry-After 1 s,
         10% 503, 10% connection resets), B is healthy. Target: 100% answered, each id
         exactly once. Baseline: the same batch with both providers healthy (time ratio).
budget   more prompts than the budget allows in a minute: the server enforces rpm R
         (answering 429 beyond it) and the client is configured with rpm = R; N prompts.
         The fastest the budget allows: R at once, R more a window (60 s) later, ...
         Targets: elapsed within 10% of that minimum; 0 server-side 429s. Compared in
         the same run on the same server: a shell loop of ``qwen-dev ask`` (fewer
         prompts, scaled to N) and the openai SDK in a thread pool of 8 (N prompts).
kill     SIGKILL halfway through, then the same command again. Targets: every id
         answered exactly once among ok lines; the server saw at most total +
         concurrency successful requests.
memory   peak RSS (VmHWM) of the batch process for 10,000 prompts against a fast server,
         next to 1,000 prompts of the same size. Target: growth under 10%, while the
         input grows by megabytes (it is streamed, not held).

``--quick`` runs smaller counts (and a smaller budget: R = 30, still a minute or two)
and prints the same table; ``--strict`` exits 1 when a target is missed. ``--child`` is
internal: it runs the CLI in process and writes its peak RSS to a file.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import concurrent.futures
import contextlib
import datetime
import json
import math
import os
import platform
import resource
import shlex
import signal
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

# The report helpers the client benchmarks print with (scripts/ is on sys.path when
# this file runs as a script).
from bench_client import Report, print_table

from faultserver import ChaosMix, FaultServerProcess, Outcome

SCRIPT = Path(__file__).resolve()
REPO = SCRIPT.parent.parent
MODEL = "bench-model"
TEXT = "Hello from the benchmark server, all systems nominal."
CHAOS = ChaosMix(p429=0.1, p503=0.1, preset=0.1, retry_after="1", seed=20240611)
WINDOW = 60.0


@dataclass(frozen=True)
class Config:
    chaos_prompts: int = 2000
    chaos_alone_prompts: int = 300
    budget_rpm: int = 120
    budget_prompts: int = 300
    shell_prompts: int = 40
    kill_prompts: int = 1000
    kill_concurrency: int = 8
    memory_small: int = 1000
    memory_large: int = 10_000
    prompt_chars: int = 2000


FULL = Config()
QUICK = Config(
    chaos_prompts=300,
    chaos_alone_prompts=100,
    budget_rpm=30,
    budget_prompts=45,
    shell_prompts=10,
    kill_prompts=300,
    memory_small=300,
    memory_large=3000,
)


# --------------------------------------------------------------------------- helpers


class BenchError(RuntimeError):
    """A run did not do what the benchmark needs to measure it."""


class Workspace:
    """A temporary folder with a config for the given servers, an input and a home."""

    def __init__(self, root: Path, name: str, urls: list[str], provider_extra: str = "") -> None:
        self.folder = root / name
        self.folder.mkdir()
        self.home = self.folder / "home"
        self.input = self.folder / "in.jsonl"
        self.output = self.folder / "out.jsonl"
        self.config = self.folder / "config.toml"
        names = [chr(ord("a") + i) for i in range(len(urls))]
        sections = "".join(
            f'\n[providers.{n}]\nbase_url = "{url}"\nmodel = "{MODEL}"\n{provider_extra}\n'
            for n, url in zip(names, urls, strict=True)
        )
        self.config.write_text(
            f"provider_order = {json.dumps(names)}\n{sections}\n"
            "[retry]\nmax_retries = 3\nbase_delay = 0.05\nmax_delay = 1.0\n",
            encoding="utf-8",
        )

    def write_input(self, count: int, chars: int = 40) -> None:
        filler = "x" * max(0, chars - 20)
        with self.input.open("w", encoding="utf-8") as handle:
            for i in range(count):
                handle.write(json.dumps({"id": f"p{i}", "prompt": f"question {i} {filler}"}) + "\n")

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("QWEN_DEV_")}
        for key in ("SAMBANOVA_API_KEY", "HF_TOKEN", "OPENAI_API_KEY"):
            env.pop(key, None)
        env["QWEN_DEV_HOME"] = str(self.home)
        return env

    def batch_args(self, *more: str) -> list[str]:
        return [str(self.input), "-o", str(self.output), "--config", str(self.config), *more]

    def batch(self, *more: str, timeout: float = 900) -> tuple[dict[str, Any], float]:
        """Run ``qwen-dev batch --json``; its summary and wall time."""
        command = [*qwen_dev(), "batch", *self.batch_args("--json", *more)]
        started = time.perf_counter()
        done = subprocess.run(
            command, env=self.env(), capture_output=True, text=True, timeout=timeout, check=False
        )
        elapsed = time.perf_counter() - started
        if done.returncode not in (0, 3):
            raise BenchError(f"batch exited {done.returncode}: {done.stderr[-2000:]}")
        return json.loads(done.stdout), elapsed

    def results(self) -> list[dict[str, Any]]:
        data = self.output.read_bytes()
        if data and not data.endswith(b"\n"):
            raise BenchError(f"{self.output} ends with a torn line")
        return [json.loads(line) for line in data.decode().splitlines()]


def qwen_dev() -> list[str]:
    script = Path(sys.executable).parent / "qwen-dev"
    return [str(script)] if script.exists() else [sys.executable, "-m", "qwen_dev_cli"]


def chat_outcomes(server: FaultServerProcess) -> Counter[str]:
    return Counter(
        r["outcome"] for r in server.requests() if r["path"].endswith("/chat/completions")
    )


def budget_minimum(prompts: int, rpm: int) -> float:
    """Seconds the fastest pacing the budget allows needs: a window per full budget."""
    return WINDOW * (math.ceil(prompts / rpm) - 1)


# --------------------------------------------------------------------------- chaos


def bench_chaos(cfg: Config, root: Path) -> Report:
    report = Report("chaos")
    n = cfg.chaos_prompts
    with (
        FaultServerProcess(text=TEXT, model=MODEL, chaos=CHAOS) as flaky,
        FaultServerProcess(text=TEXT, model=MODEL) as healthy,
    ):
        chaos = Workspace(root, "chaos", [flaky.base_url, healthy.base_url])
        chaos.write_input(n)
        summary, elapsed = chaos.batch()
        a, b = chat_outcomes(flaky), chat_outcomes(healthy)
        flaky.reset()
        alone = Workspace(root, "alone", [flaky.base_url])
        alone.write_input(cfg.chaos_alone_prompts)
        alone_first, alone_elapsed = alone.batch()
        alone_again, _ = alone.batch()
        flaky.configure(chaos=None)
        flaky.reset()
        healthy.reset()
        calm = Workspace(root, "calm", [flaky.base_url, healthy.base_url])
        calm.write_input(n)
        _, calm_elapsed = calm.batch()
    ok_ids = Counter(r["id"] for r in chaos.results() if r["ok"])
    answered = len(ok_ids)
    once = answered == n and set(ok_ids.values()) == {1} and len(chaos.results()) == n
    faults = sum(a.values()) - a["ok"]
    metrics = summary["metrics"]
    report.row(
        f"{n} prompts, A: 30% faults, B healthy",
        f"{answered}/{n} answered ({100 * answered / n:.1f}%)",
        "100%",
        answered == n,
    )
    report.row("each id exactly once in the output", "yes" if once else "NO", "yes", once)
    report.row(
        "A's requests: ok / faults; B's requests",
        f"{a['ok']} / {faults}; {sum(b.values())}",
    )
    report.row(
        "client: retries, failovers, rate-limited waits",
        f"{metrics['retries']}, {metrics['failovers']}, {metrics['rate_limited']}",
    )
    report.row(
        "elapsed: chaos / both healthy (baseline)",
        f"{elapsed:.1f} s / {calm_elapsed:.1f} s = {elapsed / calm_elapsed:.2f}x",
    )
    report.row("throughput under chaos", f"{n / elapsed:.0f} prompts/s")
    m = cfg.chaos_alone_prompts
    report.row(
        f"A alone (no failover), {m} prompts: answered; after a rerun",
        f"{alone_first['ok']}/{m} in {alone_elapsed:.1f} s; "
        f"{alone_first['ok'] + alone_again['ok']}/{m}",
    )
    report.data = {
        "summary": summary,
        "elapsed": elapsed,
        "calm_elapsed": calm_elapsed,
        "alone": {"first": alone_first, "again": alone_again, "elapsed": alone_elapsed},
    }
    return report


# --------------------------------------------------------------------------- budget


def bench_budget(cfg: Config, root: Path) -> Report:
    report = Report("budget")
    rpm, n = cfg.budget_rpm, cfg.budget_prompts
    minimum = budget_minimum(n, rpm)
    with FaultServerProcess(text=TEXT, model=MODEL, rpm=rpm) as server:
        work = Workspace(root, "budget", [server.base_url], provider_extra=f"rpm = {rpm}")
        work.write_input(n)
        summary, elapsed = work.batch()
        batch_outcomes = chat_outcomes(server)
        server.reset()
        shell = _shell_loop(root, server, rpm, cfg.shell_prompts)
        server.reset()
        sdk = _sdk_pool(server, n)
    throttled = batch_outcomes["rate_limited"]
    report.row(
        f"batch: {n} prompts, server and client rpm {rpm}",
        f"{elapsed:.1f} s (minimum {minimum:.0f} s: {elapsed / minimum:.3f}x)"
        if minimum
        else f"{elapsed:.1f} s",
        "<= 1.10x minimum",
        elapsed <= 1.10 * minimum if minimum else None,
    )
    report.row("batch: server-side 429s", str(throttled), "0", throttled == 0)
    report.row("batch: answered", f"{summary['ok']}/{n}", str(n), summary["ok"] == n)
    per_prompt = shell["elapsed"] / shell["prompts"]
    shell_n = max(per_prompt * n, minimum)
    report.row(
        f"shell loop of qwen-dev ask: {shell['prompts']} prompts",
        f"{shell['elapsed']:.1f} s ({per_prompt:.2f} s each), {shell['failed']} failed, "
        f"{shell['throttled']} 429s",
    )
    report.row(
        f"shell loop scaled to {n} prompts / batch",
        f"{shell_n:.0f} s / {elapsed:.0f} s = {shell_n / elapsed:.2f}x",
    )
    report.row(
        f"openai SDK, 8 threads: {n} prompts",
        f"{sdk['elapsed']:.1f} s, {sdk['ok']} ok, {sdk['failed']} failed, "
        f"{sdk['throttled']} server-side 429s",
    )
    report.row(
        "openai SDK / batch: time; answered",
        f"{sdk['elapsed'] / elapsed:.2f}x; {sdk['ok']}/{n} vs {summary['ok']}/{n}",
    )
    report.data = {
        "batch": {"elapsed": elapsed, "minimum": minimum, "summary": summary},
        "shell": shell,
        "sdk": sdk,
    }
    return report


def _shell_loop(root: Path, server: FaultServerProcess, rpm: int, count: int) -> dict[str, Any]:
    """``while read p; do qwen-dev ask ...; done``: one process per prompt, in sequence."""
    work = Workspace(root, "shell", [server.base_url], provider_extra=f"rpm = {rpm}")
    prompts = work.folder / "prompts.txt"
    prompts.write_text("".join(f"question {i}\n" for i in range(count)), encoding="utf-8")
    ask = shlex.join([*qwen_dev(), "ask", "--no-stream", "--config", str(work.config)])
    # < /dev/null: ask appends piped stdin to the prompt, and would eat the loop's input.
    loop = (
        f'failed=0; while IFS= read -r p; do {ask} "$p" < /dev/null > /dev/null 2>&1 || '
        f"failed=$((failed+1)); done < {shlex.quote(str(prompts))}; echo $failed"
    )
    started = time.perf_counter()
    done = subprocess.run(
        ["bash", "-c", loop], env=work.env(), capture_output=True, text=True, check=True
    )
    elapsed = time.perf_counter() - started
    outcomes = chat_outcomes(server)
    if sum(outcomes.values()) < count:
        raise BenchError(f"the shell loop sent {sum(outcomes.values())} of {count} prompts")
    return {
        "prompts": count,
        "elapsed": elapsed,
        "failed": int(done.stdout.strip() or 0),
        "throttled": outcomes["rate_limited"],
    }


def _sdk_pool(server: FaultServerProcess, count: int) -> dict[str, Any]:
    """The openai SDK (its default retries, which honour Retry-After) in 8 threads."""
    import openai

    client = openai.OpenAI(base_url=server.base_url, api_key="x", timeout=120)

    def ask(i: int) -> bool:
        try:
            client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": f"question {i}"}]
            )
        except openai.OpenAIError:
            return False
        return True

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(ask, range(count)))
    elapsed = time.perf_counter() - started
    client.close()
    outcomes = chat_outcomes(server)
    return {
        "elapsed": elapsed,
        "ok": answers.count(True),
        "failed": answers.count(False),
        "throttled": outcomes["rate_limited"],
    }


# --------------------------------------------------------------------------- kill


def bench_kill(cfg: Config, root: Path) -> Report:
    report = Report("kill")
    n, concurrency = cfg.kill_prompts, cfg.kill_concurrency
    with FaultServerProcess(text=TEXT, model=MODEL, default=Outcome.ok(delay=0.01)) as server:
        work = Workspace(root, "kill", [server.base_url])
        work.write_input(n)
        args = work.batch_args("--concurrency", str(concurrency))
        child = subprocess.Popen(
            [*qwen_dev(), "batch", *args],
            env=work.env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            lines_at_kill = _kill_at(child, work.output, n // 2)
        finally:
            if child.poll() is None:
                child.kill()
            child.wait()
        summary, _ = work.batch("--concurrency", str(concurrency))
        outcomes = chat_outcomes(server)
    ok_ids = Counter(r["id"] for r in work.results() if r["ok"])
    once = set(ok_ids) == {f"p{i}" for i in range(n)} and set(ok_ids.values()) == {1}
    sent_ok = outcomes["ok"]
    report.row(f"{n} prompts, SIGKILL at line", f"{lines_at_kill}")
    report.row("resume: skipped, answered", f"{summary['skipped']}, {summary['ok']}")
    report.row("every id answered exactly once", "yes" if once else "NO", "yes", once)
    report.row(
        "successful requests the server saw",
        str(sent_ok),
        f"<= {n + concurrency} (total + concurrency)",
        sent_ok <= n + concurrency,
    )
    report.data = {"lines_at_kill": lines_at_kill, "summary": summary, "outcomes": outcomes}
    return report


def _kill_at(child: subprocess.Popen[bytes], output: Path, lines: int) -> int:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise BenchError("the batch ended before it could be killed")
        if output.exists():
            count = output.read_bytes().count(b"\n")
            if count >= lines:
                child.send_signal(signal.SIGKILL)
                return count
        time.sleep(0.005)
    raise BenchError("the batch never reached half way")


# --------------------------------------------------------------------------- memory


def bench_memory(cfg: Config, root: Path) -> Report:
    report = Report("memory")
    peaks: dict[int, dict[str, float]] = {}
    with FaultServerProcess(text=TEXT, model=MODEL) as server:
        for count in (cfg.memory_small, cfg.memory_large):
            server.reset()
            work = Workspace(root, f"memory-{count}", [server.base_url])
            work.write_input(count, cfg.prompt_chars)
            peaks[count] = _child_peak(work)
            peaks[count]["input_mb"] = work.input.stat().st_size / 2**20
            answered = sum(1 for r in work.results() if r["ok"])
            if answered != count:
                raise BenchError(f"memory run answered {answered} of {count}")
    small, large = peaks[cfg.memory_small], peaks[cfg.memory_large]
    growth = large["peak_rss_mb"] / small["peak_rss_mb"] - 1
    for count, peak in peaks.items():
        report.row(
            f"{count:,} prompts ({peak['input_mb']:.1f} MB input): peak RSS",
            f"{peak['peak_rss_mb']:.1f} MB in {peak['elapsed']:.1f} s",
        )
    report.row(
        f"{cfg.memory_large:,} vs {cfg.memory_small:,} prompts",
        f"+{large['peak_rss_mb'] - small['peak_rss_mb']:.1f} MB ({100 * growth:+.1f}%) for "
        f"+{large['input_mb'] - small['input_mb']:.1f} MB of input",
        "< +10%",
        growth < 0.10,
    )
    report.data = {str(k): v for k, v in peaks.items()}
    return report


def _child_peak(work: Workspace) -> dict[str, float]:
    """Run the batch in a fresh interpreter that reports its own peak RSS at exit."""
    report = work.folder / "peak.json"
    command = [sys.executable, str(SCRIPT), "--child", str(report), "--", *work.batch_args()]
    started = time.perf_counter()
    done = subprocess.run(command, env=work.env(), capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise BenchError(f"memory child exited {done.returncode}: {done.stderr[-2000:]}")
    peak: dict[str, float] = json.loads(report.read_text(encoding="utf-8"))
    return peak | {"elapsed": elapsed}


def child_main(report: Path, argv: list[str]) -> None:
    """Inside the child: ``qwen-dev batch ARGV`` in this process, then its peak RSS."""
    import atexit

    def write_peak() -> None:
        report.write_text(json.dumps(peak_rss_mb()), encoding="utf-8")

    atexit.register(write_peak)
    sys.argv = ["qwen-dev", "batch", *argv]
    from qwen_dev_cli.cli import main as cli_main

    cli_main()


def peak_rss_mb() -> dict[str, float]:
    """Peak RSS in MiB: ``VmHWM`` (since exec) where it exists, else ``ru_maxrss``."""
    peak = {"ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peak["vm_hwm_mb"] = int(line.split()[1]) / 1024
    peak["peak_rss_mb"] = peak.get("vm_hwm_mb", peak["ru_maxrss_mb"])
    return peak


# --------------------------------------------------------------------------- main

BENCHMARKS: dict[str, Callable[[Config, Path], Report]] = {
    "chaos": bench_chaos,
    "budget": bench_budget,
    "kill": bench_kill,
    "memory": bench_memory,
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small counts (CI smoke run)")
    parser.add_argument("--only", metavar="NAME", help=", ".join(BENCHMARKS))
    parser.add_argument("--json", metavar="PATH", help="write every number to this file")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--child", metavar="REPORT", help=argparse.SUPPRESS)
    parser.add_argument("rest", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.only and args.only not in BENCHMARKS:
        parser.error(f"--only takes one of {', '.join(BENCHMARKS)}")
    return args


def machine() -> dict[str, Any]:
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "nproc": os.cpu_count(),
        "git": _git("rev-parse", "--short", "HEAD"),
        "uncommitted": _git("status", "--porcelain", "--", "qwen_dev_cli").splitlines(),
    }


def _git(*args: str) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return ""
    return done.stdout.strip()


@contextlib.contextmanager
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as folder:
        yield Path(folder)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        child_main(Path(args.child), args.rest)
        return 0
    cfg = QUICK if args.quick else FULL
    names = [args.only] if args.only else list(BENCHMARKS)
    info = machine()
    print(f"bench_batch: {'quick' if args.quick else 'full'} run, {', '.join(names)}")
    print(f"python {info['python']}, {info['nproc']} CPUs, {info['platform']}, {info['date']}")
    dirty = f", {len(info['uncommitted'])} uncommitted file(s) in qwen_dev_cli"
    print(f"git {info['git'] or '?'}{dirty if info['uncommitted'] else ''}")
    reports: list[Report] = []
    started = time.perf_counter()
    try:
        with scratch() as root:
            for name in names:
                t0 = time.perf_counter()
                reports.append(BENCHMARKS[name](cfg, root))
                print(f"  {name}: {time.perf_counter() - t0:.1f} s", flush=True)
    except KeyboardInterrupt:
        print("\ninterrupted; servers stopped", file=sys.stderr)
        return 130
    runtime = time.perf_counter() - started
    print()
    print_table(reports)
    verdicts = [row.passed for report in reports for row in report.rows if row.passed is not None]
    print(f"{verdicts.count(True)} of {len(verdicts)} targets met; {runtime:.1f} s in all")
    if args.json:
        results = {r.name: {"rows": [vars(row) for row in r.rows], "data": r.data} for r in reports}
        out = {"machine": info, "quick": args.quick, "runtime_s": runtime, "results": results}
        Path(args.json).write_text(json.dumps(out, indent=2, default=str) + "\n")
    return 1 if args.strict and not all(verdicts) else 0


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        raise SystemExit(main())
