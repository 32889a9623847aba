"""What the composition root mounts for the pages: the routers, the static files, and the prefixes they cover.

Static files are served under ``/static/web/`` (``/static/docs`` is the API documentation's): the site's CSS and
ES modules, and the vendored MapLibre GL JS, ECharts and htmx (``web/static/vendor/manifest.json``). Nothing
is fetched from elsewhere; :mod:`web.static_files` says how they are addressed and cached.
"""

from __future__ import annotations

from typing import Final

from fastapi import APIRouter, FastAPI

from web.routes import (
    account,
    admin,
    audit,
    bureau,
    desks,
    evidence,
    flows,
    gep,
    holdings,
    market,
    operator,
    registry,
    report_new,
    reports,
    review,
    verify,
)
from web.static_files import STATIC_DIR, STATIC_PREFIX, WebStatic

__all__ = ["FILE_PAGE_SUFFIXES", "PAGE_ROUTERS", "STATIC_PREFIX", "install_web"]
#: Pages that take files (plot files, evidence): the body-size limit of file uploads applies to them, as to the
#: API's upload routes, instead of the limit of ordinary requests.
FILE_PAGE_SUFFIXES: Final = ("/upload", "/upload/columns", "/evidence")

PAGE_ROUTERS: Final[tuple[APIRouter, ...]] = (
    registry.router,
    verify.router,
    account.router,
    reports.router,
    bureau.router,
    report_new.router,
    evidence.router,
    review.router,
    holdings.router,
    audit.router,
    admin.router,
    flows.router,
    operator.router,
    market.router,
    desks.router,
    gep.router,
)


def install_web(app: FastAPI) -> None:
    """Mount the pages' routers and their static files on ``app``."""
    app.mount(STATIC_PREFIX, WebStatic(directory=STATIC_DIR), name="web_static")
    for router in PAGE_ROUTERS:
        app.include_router(router)
