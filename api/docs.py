"""Interactive API documentation served from installed assets, never from a CDN.

Swagger UI and ReDoc ship as static files inside the ``fastapi-offline`` package; they are mounted at
``/static/docs`` and the ``/docs`` and ``/redoc`` pages point at them. The pages are public, like the
OpenAPI document itself.

Each page is rendered once, here, and served as rendered; its Content-Security-Policy is :data:`PAGE_POLICY`
plus the hashes of the inline scripts it actually contains (:func:`api.security.inline_hashes`), so a
``fastapi``/``fastapi-offline`` upgrade that changes the inline code changes the hashes with it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib import resources

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles

from api.security import PAGE_POLICY, ContentSecurityPolicy, inline_hashes

STATIC_PREFIX = "/static/docs"


def page_policy(html: str) -> ContentSecurityPolicy:
    """Return :data:`PAGE_POLICY` allowing exactly the inline scripts of ``html``, and inline styles.

    Scripts are allowed by hash only. Styles cannot be: Swagger UI (React) writes ``style`` attributes and ReDoc
    (styled-components) inserts ``<style>`` elements at run time — blocked, ReDoc does not render at all — so
    ``style-src`` has ``'unsafe-inline'`` on these pages (a style runs no code; ADR 027).
    """
    return PAGE_POLICY.allowing("script-src", *inline_hashes(html)["script"]).allowing("style-src", "'unsafe-inline'")


def install_docs(app: FastAPI) -> dict[str, ContentSecurityPolicy]:
    """Mount the documentation assets and the ``/docs`` and ``/redoc`` pages on ``app``; return their policies."""
    static_dir = resources.files("fastapi_offline").joinpath("static")
    app.mount(STATIC_PREFIX, StaticFiles(directory=str(static_dir)), name="docs-static")
    openapi_url = app.openapi_url or "/openapi.json"
    redirect_url = "/docs/oauth2-redirect"
    pages = {
        "/docs": get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} — API",
            swagger_js_url=f"{STATIC_PREFIX}/swagger-ui-bundle.js",
            swagger_css_url=f"{STATIC_PREFIX}/swagger-ui.css",
            swagger_favicon_url=f"{STATIC_PREFIX}/favicon.png",
            oauth2_redirect_url=redirect_url,
        ),
        redirect_url: get_swagger_ui_oauth2_redirect_html(),
        "/redoc": get_redoc_html(
            openapi_url=openapi_url,
            title=f"{app.title} — API reference",
            redoc_js_url=f"{STATIC_PREFIX}/redoc.standalone.js",
            redoc_favicon_url=f"{STATIC_PREFIX}/favicon.png",
            with_google_fonts=False,
        ),
    }
    for path, page in pages.items():
        app.add_route(path, _serve(page.body), include_in_schema=False)
    return {path: page_policy(bytes(page.body).decode("utf-8")) for path, page in pages.items()}


def _serve(body: bytes | memoryview) -> Callable[[Request], Awaitable[Response]]:
    async def page(_request: Request) -> Response:
        return HTMLResponse(bytes(body))

    return page
