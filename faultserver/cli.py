"""``python -m faultserver``: serve until SIGTERM or SIGINT, printing ``READY <port>``
once listening::

    python -m faultserver --port 0 --rpm 600 --chaos '{"p429": 0.1}' --seed 1
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
from collections.abc import Sequence

from .plans import OK, ChaosMix, Outcome
from .server import DEFAULT_TEXT, FaultServer


def cli_args(
    text: str | None,
    model: str | None,
    rpm: int | None,
    tpm: int | None,
    default: Outcome | None,
    chaos: ChaosMix | None,
    require_api_key: str | None,
) -> list[str]:
    args: list[str] = []
    options: dict[str, str | int | None] = {
        "--text": text,
        "--model": model,
        "--rpm": rpm,
        "--tpm": tpm,
        "--require-api-key": require_api_key,
        "--default": json.dumps(default.to_json()) if default else None,
        "--chaos": json.dumps(chaos.to_json()) if chaos else None,
    }
    for flag, value in options.items():
        if value is not None:
            args += [flag, str(value)]
    return args


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m faultserver",
        description="A fault-injecting OpenAI-compatible HTTP server for tests and benchmarks.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--rpm", type=int)
    parser.add_argument("--tpm", type=int)
    parser.add_argument("--chaos", help='JSON, e.g. {"p429": 0.1, "p503": 0.05, "preset": 0.01}')
    parser.add_argument("--seed", type=int)
    parser.add_argument("--text", default=DEFAULT_TEXT)
    parser.add_argument("--model", default="fault-model")
    parser.add_argument("--default", help='JSON outcome, e.g. {"kind": "status", "status": 503}')
    parser.add_argument("--require-api-key")
    parser.add_argument("--context-window", type=int)
    return parser.parse_args(argv)


async def _serve_until_signalled(args: argparse.Namespace) -> None:
    chaos = ChaosMix.from_json(json.loads(args.chaos), seed=args.seed) if args.chaos else None
    server = FaultServer(
        text=args.text,
        model=args.model,
        rpm=args.rpm,
        tpm=args.tpm,
        default=json.loads(args.default) if args.default else OK,
        chaos=chaos,
        require_api_key=args.require_api_key,
        host=args.host,
        port=args.port,
        context_window=args.context_window,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await server.start()
    try:
        print(f"READY {server.port}", flush=True)
        await stop.wait()
    finally:
        await server.stop()


def main(argv: Sequence[str] | None = None) -> int:
    asyncio.run(_serve_until_signalled(_parse_args(argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
