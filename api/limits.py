"""ASGI middleware that bounds request bodies before they are buffered.

A declared ``Content-Length`` over the limit is refused at once; a chunked body is counted as it
streams and refused as soon as it passes the limit (the route sees an HTTP 413 while reading its
body). Either way the client gets a 413 problem+json and nothing is written.
"""

from __future__ import annotations

from fastapi import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import problem_response


class BodySizeLimit:
    """Refuse request bodies larger than ``max_bytes``."""

    def __init__(self, app: ASGIApp, max_bytes: int, file_max_bytes: int, file_path_suffixes: tuple[str, ...]) -> None:
        self.app = app
        self.default_max_bytes = max_bytes
        self.file_max_bytes = file_max_bytes
        self.file_path_suffixes = file_path_suffixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass small requests through; answer 413 to large ones."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        is_file = str(scope.get("path", "")).endswith(self.file_path_suffixes)
        max_bytes = self.file_max_bytes if is_file else self.default_max_bytes
        detail = f"the request body exceeds the limit of {max_bytes} bytes"
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_bytes:
            response = problem_response(
                Request(scope),
                status=413,
                slug="core/payload-too-large",
                title="Payload too large",
                detail=detail,
                extensions={"max_bytes": max_bytes},
            )
            await response(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    # FastAPI re-raises its own HTTPException from body parsing; the problem handler renders it.
                    raise HTTPException(status_code=413, detail=detail)
            return message

        await self.app(scope, counting_receive, send)
