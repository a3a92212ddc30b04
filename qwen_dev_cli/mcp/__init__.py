"""Tools from the user's Model Context Protocol servers (docs/architecture.md section 11).

A layer between the tools and the front ends: ``core`` never imports it, and the
official ``mcp`` SDK is imported only when a server is started.

- :mod:`.expand`: ``${VAR}`` and ``${VAR:-default}`` in a server's settings.
- :mod:`.names`: ``mcp__<server>__<tool>``, sanitised, at most 64 characters, unique.
- :mod:`.schemas`: a server's JSON schemas made acceptable to every provider.
- :mod:`.results`: a tool result as bounded text for the model.
- :mod:`.http`, :mod:`.breaker`: what an HTTP server sends bounded, retries, its breaker.
- :mod:`.messages`: why a server's message cannot be read, the same for every transport.
- :mod:`.server`: one server's connection, started in the background.
- :mod:`.servers`: every configured server, their tools as registry sources.
"""

from __future__ import annotations

from .servers import McpServers

__all__ = ["McpServers"]
