"""A fault-injecting OpenAI-compatible HTTP server, for tests and benchmarks.

Speaks real HTTP/1.1 over real loopback sockets (stdlib asyncio only), so the client
under test exercises its whole stack: connection pool, keep-alive, chunked SSE, timeouts.
It is a development tool of qwen-dev-cli, not part of the shipped package.

Each ``POST /v1/chat/completions`` consumes the next scripted :class:`Outcome` (FIFO),
else a random one drawn from the :class:`ChaosMix`, else the server's ``default``.

In-process use::

    async with FaultServer(text="hi there") as srv:
        srv.script(Outcome.rate_limited(retry_after="1"), Outcome.ok())
        ...  # point a client at srv.base_url
        assert [r.outcome for r in srv.requests] == ["status", "ok"]

Separate process (benchmarks)::

    python -m faultserver --port 0 --rpm 600 --chaos '{"p429": 0.1}' --seed 1
    # prints "READY <port>", serves until SIGTERM/SIGINT

or ``with FaultServerProcess(rpm=600) as proc: ...`` and control it over HTTP via
``/_control/script``, ``/_control/reset``, ``/_control/requests``, ``/_control/config``
and ``/_control/stats`` (or the helper methods of :class:`FaultServerProcess`).

Token accounting is deterministic: prompt_tokens = characters of all message contents // 4
(at least 1); completion_tokens = whitespace-separated words of the answer text plus
len(arguments) // 4 per tool call (at least 1). Against ``tpm`` each request is charged
prompt_tokens + its ``max_tokens``/``max_completion_tokens`` (0 when absent).

With ``context_window`` set, a request whose prompt_tokens plus its ``max_tokens`` (0 when
absent) exceed it is refused as a real server does: 400 ``context_length_exceeded``,
"This model's maximum context length is N tokens..." (recorded as that outcome; the
script is not consumed).

The modules, bottom up:

- :mod:`.http11`: HTTP/1.1 over asyncio streams (keep-alive, chunked, RST);
- :mod:`.plans`: :class:`Outcome` and :class:`ChaosMix`, what a request gets;
- :mod:`.accounting`: token counts and the server-side RPM/TPM window;
- :mod:`.completions`: the OpenAI payloads and SSE framing;
- :mod:`.responder`: one outcome played on one connection;
- :mod:`.server`: :class:`FaultServer`, routes, script, request log;
- :mod:`.control`: the ``/_control/*`` API;
- :mod:`.process`, :mod:`.cli`: :class:`FaultServerProcess` and ``python -m faultserver``.
"""

from __future__ import annotations

from .accounting import count_completion_tokens, count_prompt_tokens
from .plans import KINDS, ChaosMix, Outcome
from .process import FaultServerProcess
from .server import DEFAULT_TEXT, FaultServer, RecordedRequest

__all__ = [
    "DEFAULT_TEXT",
    "KINDS",
    "ChaosMix",
    "FaultServer",
    "FaultServerProcess",
    "Outcome",
    "RecordedRequest",
    "count_completion_tokens",
    "count_prompt_tokens",
]
