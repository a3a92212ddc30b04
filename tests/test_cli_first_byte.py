"""A provider that never starts answering costs `first_byte_timeout`, not `timeout`,
before `qwen-dev ask` fails over: a real process against two fault servers."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from faultserver import FaultServer, Outcome
from tests.test_cli_ask import qwen_dev

pytestmark = pytest.mark.slow  # A real `qwen-dev` process.


async def test_ask_fails_over_from_a_hung_provider_at_the_first_byte_deadline(
    tmp_path: Path,
) -> None:
    async with FaultServer() as alpha, FaultServer() as beta:
        alpha.configure(default=Outcome.hang())
        beta.script(Outcome.ok("beta answered"))
        config = tmp_path / "c.toml"
        config.write_text(
            f"""
provider_order = ["alpha", "beta"]

[providers.alpha]
base_url = "{alpha.base_url}"
model = "alpha-m"
timeout = 60.0
first_byte_timeout = 0.5

[providers.beta]
base_url = "{beta.base_url}"
model = "beta-m"

[retry]
max_retries = 0
""",
            encoding="utf-8",
        )
        # alpha's whole timeout (60 s) would overrun this bound; its deadline does not.
        run = await asyncio.wait_for(
            qwen_dev("ask", "--json", "--config", str(config), "hello"), 30
        )
    assert run.code == 0, run.err
    answer = run.json()
    assert (answer["text"], answer["provider"], answer["attempts"]) == ("beta answered", "beta", 2)
    assert answer["metrics"]["failovers"] == 1
