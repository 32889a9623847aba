"""What the composition root mounts for the pages: the routers, the static files, and the prefixes they cover.

Static files are served under ``/static/web/`` (``/static/docs`` is the API documentation's): the site's CSS and
ES modules, and the vendored MapLibre GL JS, ECharts and htmx (``web/static/vendor/manifest.json``). Nothing
is fetched from elsewhere; :mod:`web.static_files` says how they are addressed and cached.
"""

from __future__ import annotations

from typing import Final

from fastapi import APIRouter, FastAPI

from web.routes import account, bureau, registry, report_new, reports, verify
from web.static_files import STATIC_DIR, STATIC_PREFIX, WebStatic

__all__ = ["PAGE_ROUTERS", "STATIC_PREFIX", "install_web"]

PAGE_ROUTERS: Final[tuple[APIRouter, ...]] = (
    registry.router,
    verify.router,
    account.router,
    reports.router,
    bureau.router,
    report_new.router,
)


def install_web(app: FastAPI) -> None:
    """Mount the pages' routers and their static files on ``app``."""
    app.mount(STATIC_PREFIX, WebStatic(directory=STATIC_DIR), name="web_static")
    for router in PAGE_ROUTERS:
        app.include_router(router)
