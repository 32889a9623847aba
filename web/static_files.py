"""The pages' static files: served under ``/static/web/``, addressed by content so browsers keep them.

A page names each asset with :func:`static_url`, which appends ``?v=`` and the first 16 hex digits of the file's
SHA-256. An answer to such a URL is the same bytes for as long as the URL exists, so it is sent
``Cache-Control: public, max-age=31536000, immutable``: MapLibre GL JS (≈ 800 kB) and ECharts are fetched once,
not on every page. A request without the version, or with a stale one (a page rendered before an upgrade), is
answered ``public, no-cache``: the browser keeps the file and revalidates it by its ETag (a 304, no body).

Static files are the same for everyone, so :class:`api.security.SecurityHeaders` leaves an answer marked
``public`` alone instead of adding ``no-store`` when the request carried a session cookie.

ES modules that import a vendored library take its versioned URL from the page (a ``data-module`` attribute) and
``import()`` it, so the library is cached like the rest.
"""

from __future__ import annotations

import hashlib
import os
from functools import cache
from os import PathLike
from pathlib import Path
from typing import Final
from urllib.parse import parse_qs

from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

STATIC_DIR: Final = Path(__file__).parent / "static"
STATIC_PREFIX: Final = "/static/web"
IMMUTABLE: Final = "public, max-age=31536000, immutable"
REVALIDATE: Final = "public, no-cache"


def digest(relative: str) -> str:
    """Return the first 16 hex digits of the SHA-256 of the static file at ``relative``.

    The file is read again only when its size or modification time changes (an edit during development).

    Raises:
        FileNotFoundError: No such static file (a template names an asset that is not shipped).
    """
    path = (STATIC_DIR / relative).resolve()
    if STATIC_DIR.resolve() not in path.parents:
        raise FileNotFoundError(relative)
    stat = path.stat()
    return _digest(path, stat.st_size, stat.st_mtime_ns)


@cache
def _digest(path: Path, _size: int, _mtime_ns: int) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def static_url(relative: str) -> str:
    """Return the content-addressed URL of a static file, e.g. ``/static/web/css/shanhai.css?v=1f2e…``."""
    return f"{STATIC_PREFIX}/{relative}?v={digest(relative)}"


class WebStatic(StaticFiles):
    """Static files with ``.mjs`` as JavaScript and the cache policy of the module docstring."""

    def file_response(
        self, full_path: PathLike[str] | str, stat_result: os.stat_result, scope: Scope, status_code: int = 200
    ) -> Response:
        """Serve a file: JavaScript type on ``.mjs``; immutable when the URL's version is the file's digest."""
        response = super().file_response(full_path, stat_result, scope, status_code)
        if str(full_path).endswith(".mjs"):
            response.headers["content-type"] = "text/javascript; charset=utf-8"
        asked = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("v", [""])[0]
        relative = Path(full_path).resolve().relative_to(STATIC_DIR.resolve()).as_posix()
        response.headers["cache-control"] = IMMUTABLE if asked and asked == digest(relative) else REVALIDATE
        return response
