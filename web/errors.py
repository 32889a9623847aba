"""Friendly error pages for people: the same domain errors the API answers as problem+json, as HTML.

The composition root sends an error here when the request was for a page (:func:`is_page_request`). A page that
needs a login redirects to ``/login?next=…`` (with "your session has ended" when it has); every other error is a
page in the person's language stating what happened and what to do, with the status of the API's mapping.
Unexpected errors show only a reference that is also in the server log.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from urllib.parse import quote

from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from access import permissions
from access.deps import LoginRequired
from core.errors import ShanhaiError, TooManyRequests
from web.pages import render

logger = logging.getLogger("shanhai.web")
#: Paths that belong to the pages even when no route matched (a 404 under them is a page, not a problem).
PAGE_PREFIXES: tuple[str, ...] = (
    "/registry",
    "/verify",
    "/reports",
    "/login",
    "/logout",
    "/lang",
    "/projects",
    "/evidence",
)
PAGE_PREFIXES += ("/market", "/auctions", "/block-trades")  # the market screen and its desks (ADR 042)


def is_page_request(request: Request) -> bool:
    """Return whether the request went (or was going) to a page rather than to the JSON API."""
    name = getattr(request.scope.get("route"), "name", "")
    if name:
        return permissions.is_page(name)
    path = request.url.path
    return path == "/" or any(path == p or path.startswith(p + "/") for p in PAGE_PREFIXES)


def page_error(request: Request, error: Exception, status_for: Callable[[ShanhaiError], int]) -> Response:
    """Return the page for ``error`` (a redirect to the login form when a login is needed)."""
    if isinstance(error, LoginRequired):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
    reference = None
    if isinstance(error, ShanhaiError):
        status, kind, detail = status_for(error), error.slug, error.detail
    elif isinstance(error, RequestValidationError):
        status, kind, detail = 422, "core/invalid-input", None
    elif isinstance(error, HTTPException):
        status, kind, detail = error.status_code, "core/not-found" if error.status_code == 404 else "http", None
    else:
        reference = uuid.uuid4().hex
        logger.error("unhandled error on page %s [reference %s]", request.url.path, reference, exc_info=error)
        status, kind, detail = 500, "core/internal", None
    principal = getattr(request.state, "person", None)
    context = {"status": status, "kind": kind, "detail": detail, "reference": reference}
    response = render(request, "error.html", context, principal=principal, status_code=status)
    if isinstance(error, TooManyRequests):
        response.headers["Retry-After"] = str(error.retry_after_seconds)
    return response
