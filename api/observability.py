"""The request middleware: a request id, the access log line and the HTTP metrics, in pure ASGI (ADR 029).

Pure ASGI, not ``BaseHTTPMiddleware``: answers pass through message by message, so a Server-Sent Events stream
(``/api/v1/market/…/stream``) is never buffered. For every HTTP request it

* takes the request id from ``X-Request-ID`` (when it is 1–128 visible ASCII characters) or makes one, keeps it
  in :data:`core.logs.request_id_var` and ``scope["state"]["request_id"]`` (problem bodies read it there) and
  returns it as ``X-Request-ID``;
* counts the request and observes its latency by method, **route template** (``/api/v1/projects/{project_id}``,
  never the raw path: one series per route, not per id) and status; an unmatched path is ``<unmatched>``;
* logs one ``http.access`` record with ``method``, ``route``, ``status`` and ``latency_ms``.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.logs import request_id_var
from core.metrics import metrics

HEADER = "X-Request-ID"
UNMATCHED = "<unmatched>"
_VALID_ID = re.compile(r"[!-~]{1,128}")
access_log = logging.getLogger("shanhai.access")


def accepted_request_id(value: str | None) -> str:
    """Return the client's request id when it is safe to echo and log, else a new one (32 hex digits)."""
    if value is not None and _VALID_ID.fullmatch(value):
        return value
    return uuid.uuid4().hex


def route_template(scope: Scope) -> str:
    """Return the path template of the route that answered ``scope`` (set by the router), or ``<unmatched>``."""
    route = scope.get("route")
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED


class RequestContext:
    """Give each HTTP request an id, and record its metrics and access log line when it ends."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the request with its id set; echo the id; count and time it."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope.get("headers", [])}
        request_id = accepted_request_id(sent.get(HEADER.lower()))
        scope.setdefault("state", {})["request_id"] = request_id
        request_id_var.set(request_id)  # not reset: the server-error handler outside this middleware reads it too
        started = time.perf_counter()
        status = 500
        header = (HEADER.lower().encode("latin-1"), request_id.encode("latin-1"))

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = list(message.get("headers", []))
                if not any(key.lower() == header[0] for key, _ in headers):
                    headers.append(header)
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed_s = time.perf_counter() - started
            method, route = str(scope.get("method", "")), route_template(scope)
            recorded = metrics()
            recorded.http_requests.labels(method=method, route=route, status=str(status)).inc()
            recorded.http_request_duration_s.labels(method=method, route=route).observe(elapsed_s)
            access_log.info(
                "%s %s %s",
                method,
                route,
                status,
                extra={"method": method, "route": route, "status": status, "latency_ms": round(elapsed_s * 1e3, 3)},
            )
