"""What the composition root mounts for the pages: the routers, the static files, and the prefixes they cover.

Static files are served under ``/static/web/`` (``/static/docs`` is the API documentation's): the site's CSS and
ES modules, and the vendored MapLibre GL JS, ECharts and htmx (``web/static/vendor/manifest.json``). Nothing
is fetched from elsewhere. ``.mjs`` is served as JavaScript whatever the machine's MIME table says.
"""

from __future__ import annotations

import os
from os import PathLike
from pathlib import Path
from typing import Final

from fastapi import APIRouter, FastAPI
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from web.routes import account, bureau, registry, report_new, reports, verify

STATIC_DIR: Final = Path(__file__).parent / "static"
STATIC_PREFIX: Final = "/static/web"
PAGE_ROUTERS: Final[tuple[APIRouter, ...]] = (
    registry.router,
    verify.router,
    account.router,
    reports.router,
    bureau.router,
    report_new.router,
)


class WebStatic(StaticFiles):
    """Static files with ``.mjs`` as ``text/javascript`` (ES modules must be served as JavaScript)."""

    def file_response(
        self, full_path: PathLike[str] | str, stat_result: os.stat_result, scope: Scope, status_code: int = 200
    ) -> Response:
        """Serve a file; force the JavaScript type on ``.mjs``."""
        response = super().file_response(full_path, stat_result, scope, status_code)
        if str(full_path).endswith(".mjs"):
            response.headers["content-type"] = "text/javascript; charset=utf-8"
        return response


def install_web(app: FastAPI) -> None:
    """Mount the pages' routers and their static files on ``app``."""
    app.mount(STATIC_PREFIX, WebStatic(directory=STATIC_DIR), name="web_static")
    for router in PAGE_ROUTERS:
        app.include_router(router)
