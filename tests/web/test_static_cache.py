"""The pages' static files are content-addressed: kept by browsers across pages, even with a session cookie."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from web.static_files import IMMUTABLE, REVALIDATE, digest, static_url


def test_a_page_names_its_assets_by_content_and_they_are_kept_even_with_a_cookie(client: TestClient) -> None:
    client.cookies.set("shanhai_csrf", "x" * 32)
    page = client.get("/")
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"  # the page: never kept
    urls = set(re.findall(r'(?:href|src|data-module)="(/static/web/[^"]+)"', page.text))
    assert {u.split("?")[0] for u in urls} >= {
        "/static/web/css/shanhai.css",
        "/static/web/vendor/htmx/htmx.min.js",
        "/static/web/js/map.mjs",
        "/static/web/vendor/maplibre-gl/maplibre-gl.mjs",
        "/static/web/vendor/echarts/echarts.esm.min.mjs",
    }
    for url in urls:
        answer = client.get(url.replace("&amp;", "&"))
        assert answer.status_code == 200, url
        assert answer.headers["Cache-Control"] == IMMUTABLE, url
        assert "etag" in answer.headers


def test_an_unversioned_or_stale_url_is_revalidated_not_kept_blindly(client: TestClient) -> None:
    client.cookies.set("shanhai_csrf", "x" * 32)
    bare = client.get("/static/web/css/shanhai.css")
    stale = client.get("/static/web/css/shanhai.css?v=0000000000000000")
    assert bare.headers["Cache-Control"] == stale.headers["Cache-Control"] == REVALIDATE
    again = client.get("/static/web/css/shanhai.css", headers={"If-None-Match": bare.headers["etag"]})
    assert again.status_code == 304


def test_the_version_is_the_files_digest() -> None:
    assert static_url("css/shanhai.css") == f"/static/web/css/shanhai.css?v={digest('css/shanhai.css')}"
    assert re.fullmatch(r"[0-9a-f]{16}", digest("vendor/maplibre-gl/maplibre-gl.mjs"))
