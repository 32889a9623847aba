"""RFC 9457 problem+json: one table from domain error to HTTP status, and the handlers.

Every error response of the API is ``application/problem+json`` with ``type`` (a stable URI built
from the error's slug), ``title``, ``status``, ``detail``, ``instance`` and, where the error has
them, extension members (``errors``, ``sequence``…), and ``request_id`` (the ``X-Request-ID`` of the answer, to
find the request's log lines). No stack trace ever reaches a client.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

from core.errors import (
    AuditChainBroken,
    AuthenticationFailed,
    Conflict,
    InternalError,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    ServiceUnavailable,
    ShanhaiError,
    TooManyRequests,
    UnsupportedMediaType,
)
from core.logs import request_id_var

PROBLEM_BASE = "urn:shanhai:problem:"
MEDIA_TYPE = "application/problem+json"
logger = logging.getLogger(__name__)

#: Domain error → HTTP status. Subclasses not listed inherit their nearest listed base's status.
STATUS_BY_ERROR: dict[type[ShanhaiError], int] = {
    AuthenticationFailed: 401,
    PermissionDenied: 403,
    NotFound: 404,
    Conflict: 409,
    PayloadTooLarge: 413,
    UnsupportedMediaType: 415,
    TooManyRequests: 429,
    InvalidInput: 422,
    AuditChainBroken: 409,
    ServiceUnavailable: 503,
    InternalError: 500,
    ShanhaiError: 400,
}

HTTP_SLUGS = {
    401: ("auth/authentication-failed", "Authentication required"),
    403: ("auth/permission-denied", "Permission denied"),
    404: ("core/not-found", "Not found"),
    405: ("http/method-not-allowed", "Method not allowed"),
    413: ("core/payload-too-large", "Payload too large"),
}


def status_for(error: ShanhaiError) -> int:
    """Return the HTTP status of a domain error (nearest class in the MRO)."""
    return status_of_class(type(error))


def status_of_class(error_class: type[ShanhaiError]) -> int:
    """Return the HTTP status of a domain error class (nearest class in the MRO)."""
    for cls in error_class.__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 500


def problem_response(
    request: Request,
    *,
    status: int,
    slug: str,
    title: str,
    detail: str,
    extensions: dict[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """Return a problem+json response."""
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
    }
    body.update(extensions or {})
    request_id = request_id_of(request)
    if request_id is not None:
        body["request_id"] = request_id
        headers = {**(headers or {}), "X-Request-ID": request_id}  # the server-error answer bypasses the middleware
    return JSONResponse(jsonable_encoder(body), status_code=status, media_type=MEDIA_TYPE, headers=headers)


def request_id_of(request: Request) -> str | None:
    """Return the id the request middleware gave this request (``None`` without the middleware)."""
    request_id = request.scope.get("state", {}).get("request_id") or request_id_var.get()
    return request_id if isinstance(request_id, str) else None


def _on_domain_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ShanhaiError)
    status = status_for(error)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    headers.update(error.headers())
    return problem_response(
        request,
        status=status,
        slug=error.slug,
        title=error.title,
        detail=error.detail,
        extensions=error.extensions(),
        headers=headers,
    )


def _on_validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    errors = [
        {
            "pointer": "/" + "/".join(str(part) for part in item.get("loc", ())),
            "reason": item.get("msg", ""),
            "kind": item.get("type", ""),
        }
        for item in error.errors()
    ]
    malformed = any(item["kind"] == "json_invalid" for item in errors)
    detail = "the request body is not valid JSON" if malformed else "the request does not match the schema"
    return problem_response(
        request,
        status=422,
        slug="core/malformed-json" if malformed else "core/invalid-request",
        title="Malformed JSON" if malformed else "Invalid request",
        detail=detail,
        extensions={"errors": errors},
    )


def _on_http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    if isinstance(error.__cause__, RecursionError):  # FastAPI's body parsing met a hostile nesting depth
        return problem_response(
            request,
            status=422,
            slug="core/malformed-json",
            title="Malformed JSON",
            detail="the request body nests too deeply to be decoded",
        )
    slug, title = HTTP_SLUGS.get(error.status_code, (f"http/{error.status_code}", "HTTP error"))
    detail = error.detail if isinstance(error.detail, str) else title
    return problem_response(
        request, status=error.status_code, slug=slug, title=title, detail=detail, headers=error.headers
    )


def _on_integrity_error(request: Request, error: Exception) -> JSONResponse:
    # A uniqueness race lost to a concurrent transaction (the service's own check passed before the
    # other transaction committed). The transaction was rolled back, so nothing was written.
    logger.info("integrity error on %s %s: %s", request.method, request.url.path, error)
    return problem_response(
        request,
        status=409,
        slug="core/conflict",
        title="Conflict",
        detail="the request conflicts with a concurrent change; nothing was written, retry the request",
    )


def new_reference() -> str:
    """Return a fresh reference id for an unexpected error (it goes in the log and in the problem)."""
    return uuid.uuid4().hex


def _on_unexpected(request: Request, error: Exception) -> JSONResponse:
    reference = new_reference()
    logger.error("unhandled error on %s %s [reference %s]", request.method, request.url.path, reference, exc_info=error)
    internal = InternalError("the server could not complete the request; it has been logged", reference)
    return _on_domain_error(request, internal)


def install(app: FastAPI) -> None:
    """Register the problem handlers on ``app``."""
    app.add_exception_handler(ShanhaiError, _on_domain_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(IntegrityError, _on_integrity_error)
    app.add_exception_handler(Exception, _on_unexpected)
