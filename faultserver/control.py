"""``/_control/*``: script, reconfigure, reset and inspect a server that runs in
another process (:class:`~faultserver.process.FaultServerProcess` is its client).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .http11 import HttpConnection, HttpRequest, JsonDict, error_body, send_json
from .plans import ChaosMix

if TYPE_CHECKING:
    from .server import FaultServer


class ControlApi:
    """``/_control/*``: drive a server that runs in another process."""

    def __init__(self, server: FaultServer) -> None:
        self._server = server
        self._handlers: dict[tuple[str, str], Callable[[Any], Any]] = {
            ("POST", "/_control/script"): self._script,
            ("POST", "/_control/reset"): self._reset,
            ("GET", "/_control/requests"): self._requests,
            ("POST", "/_control/config"): self._config,
            ("GET", "/_control/config"): lambda _body: server.config_json(),
            ("GET", "/_control/stats"): lambda _body: server.stats_json(),
        }

    async def handle(self, conn: HttpConnection, req: HttpRequest) -> bool:
        handler = self._handlers.get((req.method, req.path))
        if handler is None:
            message = f"no control route {req.method} {req.path}"
            return await send_json(conn, req, 404, error_body(message, "not_found_error"))
        try:
            result = handler(json.loads(req.body) if req.body else None)
        except (ValueError, TypeError, KeyError) as exc:
            payload = error_body(f"bad control request: {exc}", "invalid_request_error")
            return await send_json(conn, req, 400, payload)
        return await send_json(conn, req, 200, result)

    def _script(self, body: Any) -> JsonDict:
        items = body if isinstance(body, list) else [body]
        self._server.script(*items)
        return {"scripted": len(self._server.scripted)}

    def _reset(self, _body: Any) -> JsonDict:
        self._server.reset()
        return {"reset": True}

    def _requests(self, _body: Any) -> list[JsonDict]:
        return [r.to_json() for r in self._server.requests]

    def _config(self, body: Any) -> JsonDict:
        if not isinstance(body, dict):
            raise TypeError("config body must be a JSON object")
        changes: JsonDict = {}
        for key in ("default", "rpm", "tpm", "text", "context_window"):
            if key in body:
                changes[key] = body[key]
        if "chaos" in body:
            changes["chaos"] = ChaosMix.from_json(body["chaos"]) if body["chaos"] else None
        self._server.configure(**changes)
        return self._server.config_json()
